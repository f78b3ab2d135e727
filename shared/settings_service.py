"""Settings of the HTTP service (``vidluxe serve``, the API Lambda), resolved once at the edge.

Like :class:`shared.settings.Settings`, every field reads ``VIDLUXE_<FIELD>``; the defaults suit a
local ``vidluxe serve``. Lists (``VIDLUXE_CORS_ORIGINS``) are JSON or comma-separated.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GIB = 1024**3


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDLUXE_", extra="ignore")

    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the service at, for signed upload and download links "
        "(default: http://HOST:PORT of vidluxe serve).",
    )
    url_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for the local store's signed URLs (default: a random key kept in "
        "<home>/url-signing.key).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser."
    )
    upload_max_bytes: int = Field(default=2 * GIB, ge=1)
    upload_expires_seconds: int = Field(default=15 * 60, ge=1, le=7 * 24 * 3600)
    download_expires_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, description="Largest JSON request body.")
    webhook_secret_grace_seconds: int = Field(default=24 * 3600, ge=0)
    webhooks_allow_private: bool = Field(
        default=False,
        description="Development only: webhook URLs may be plain http and reach loopback or private addresses.",
    )
    webhooks_retry_scale: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Development and benchmarks only: multiplies every wait of the webhook retry schedule "
        "(0.01: 5 s, 5 min, 30 min become 0.05 s, 3 s, 18 s), so retries are seen without waiting real minutes.",
    )
    dashboard_session_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for the /dashboard session cookie (default: a random key kept in "
        "<home>/dashboard-session.key; set it where the home is not shared or not writable, as on Lambda).",
    )
    dashboard_session_seconds: int = Field(
        default=12 * 3600, ge=60, le=30 * 24 * 3600, description="How long a dashboard sign-in lasts."
    )
    runner_workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    state_machine_arns: dict[str, str] = Field(
        default_factory=dict,
        description='On AWS: pipeline name -> Step Functions state machine ARN, as JSON ({"enhance": "arn:..."}).',
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
