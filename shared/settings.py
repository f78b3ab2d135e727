"""Settings, resolved once at the edge (CLI, Lambda, Modal) and passed inward.

Every field reads from an environment variable ``VIDLUXE_<FIELD>``; the defaults are the embedded
ones, so a plain install needs no configuration: everything lives under one data home directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDLUXE_", extra="ignore")

    home: Path = Field(default=Path(".vidluxe"), description="Data home: objects, task DB, cache.")

    object_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = Field(default=None, description="R2, MinIO or another S3-compatible API.")
    s3_region: str | None = None

    task_store: Literal["sqlite", "postgres"] = "sqlite"
    database_url: str | None = Field(default=None, description="postgresql://... for the postgres backend.")

    cache: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"

    style_provider: Literal["local", "blora"] = "local"
    image_provider: Literal["procedural", "replicate-flux", "nano-banana"] = "procedural"
    image_api_key: SecretStr | None = Field(default=None, description="Replicate or Google API key.")

    max_workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "tasks.sqlite3"

    @property
    def cache_path(self) -> Path:
        return self.home / "cache.sqlite3"
