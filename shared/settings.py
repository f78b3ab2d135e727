"""Settings, resolved once at the edge (CLI, Lambda, Modal) and passed inward.

Every field reads from an environment variable ``VIDLUXE_<FIELD>``; the defaults are the embedded
ones, so a plain install needs no configuration: everything lives under one data home directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.costs.assumptions import CostAssumptions

Renderer = Literal["ffmpeg", "remotion"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDLUXE_", extra="ignore")

    home: Path = Field(default=Path(".vidluxe"), description="Data home: objects, task DB, cache.")

    object_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = Field(
        default=None, description="The S3 store's bucket: artifacts, and uploads and outputs unless set apart."
    )
    s3_uploads_bucket: str | None = Field(default=None, description="Clients' uploads (uploads/...), if apart.")
    s3_outputs_bucket: str | None = Field(default=None, description="The runs that hold deliverables, if apart.")
    s3_prefix: str = ""
    s3_endpoint_url: str | None = Field(default=None, description="R2, MinIO or another S3-compatible API.")
    s3_region: str | None = None

    task_store: Literal["sqlite", "postgres", "supabase"] = "sqlite"
    database_url: str | None = Field(default=None, description="postgresql://... for the postgres backend.")
    database_prepared_statements: bool = Field(
        default=True,
        description="Server-side prepared statements for the queries the service repeats (a poll's costs "
        "PostgreSQL a third of its CPU unprepared); false behind a transaction-mode pooler that cannot carry "
        "them (Supabase's on port 6543, PgBouncer before 1.21).",
    )
    # The supabase task store speaks HTTP (PostgREST) instead of holding connections; the vendor's own
    # variable names are read too, after the VIDLUXE_ ones.
    supabase_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VIDLUXE_SUPABASE_URL", "supabase_url"),
        description="https://<project>.supabase.co (also read from SUPABASE_URL).",
    )
    supabase_service_role_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("VIDLUXE_SUPABASE_SERVICE_ROLE_KEY", "supabase_service_role_key"),
        description="The service_role key (bypasses row-level security; also read from SUPABASE_SERVICE_ROLE_KEY).",
    )

    cache: Literal["local", "redis", "upstash"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    upstash_redis_rest_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VIDLUXE_UPSTASH_REDIS_REST_URL", "upstash_redis_rest_url"),
        description="The upstash cache's REST URL (also read from UPSTASH_REDIS_REST_URL).",
    )
    upstash_redis_rest_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("VIDLUXE_UPSTASH_REDIS_REST_TOKEN", "upstash_redis_rest_token"),
        description="The upstash cache's REST token (also read from UPSTASH_REDIS_REST_TOKEN).",
    )

    style_provider: Literal["local", "blora"] = "local"
    image_provider: Literal["procedural", "replicate-flux", "nano-banana"] = "procedural"
    image_api_key: SecretStr | None = Field(default=None, description="Replicate or Google API key.")

    # Who draws the CompositionSpec: ffmpeg (shared/media/render.py) or the Remotion composition on
    # Remotion Lambda (remotion/, shared/providers/remotion.py).
    renderer: Renderer = "ffmpeg"
    remotion_function_name: str | None = Field(default=None, description="The deployed Remotion Lambda function.")
    remotion_serve_url: str | None = Field(default=None, description="The Remotion site (remotion/) on S3.")
    remotion_region: str | None = Field(default=None, description="AWS region of the Remotion function and site.")

    price_version: str | None = Field(
        default=None, description="The cost ledger's price table (infra/prices/<version>.toml); default: the newest."
    )
    prices_dir: Path | None = Field(default=None, description="Where price tables live (default: infra/prices).")
    cost_assumptions: CostAssumptions = Field(
        default_factory=CostAssumptions, description="Where runs are taken to run, for pricing (JSON)."
    )

    max_workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    @property
    def ffmpeg_threads(self) -> int:
        """Threads for each ffmpeg a stage runs: the cores shared among the ``max_workers`` stages that run
        at once. By default as many chunks render at once as there are cores, so each decoder and x264
        get one thread: frame threading would hold a set of frame buffers per thread (measured at
        1080x1920: ~120 MB more per chunk) for no more throughput once every core is busy anyway."""
        return max(1, (os.cpu_count() or 1) // self.max_workers)

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "tasks.sqlite3"

    @property
    def cache_path(self) -> Path:
        return self.home / "cache.sqlite3"
