"""Everything the HTTP service works with, built once at the edge from the settings.

One SQL database holds the task store, tenants, video records (and the webhook outbox, costs), so a
``vidluxe serve`` uses one SQLite file or one PostgreSQL DSN. The object store decides how uploads and
downloads are presigned: the local store by the service's own HMAC key (served by ``vidluxe serve``),
S3 by boto3.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

from shared.clock import Clock, SystemClock
from shared.errors import ConfigurationError
from shared.pipeline.runtime import Runtime
from shared.service.videos import UploadLimits, VideoService, WebhookUrlCheck
from shared.settings import Settings
from shared.settings_service import ServiceSettings
from shared.storage.factory import build_database
from shared.storage.local_objects import LocalObjectStore
from shared.storage.presign import LocalPresigner, Presigner, UrlSigner
from shared.storage.sql import SqlDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tenants import TenantStore
from shared.storage.videos import VideoStore
from web_hooks.events import TaskEventSink


@dataclass
class Services:
    settings: Settings
    service_settings: ServiceSettings
    database: SqlDatabase
    runtime: Runtime
    tenants: TenantStore
    videos: VideoService
    url_signer: UrlSigner | None = None  # the local store's (None on S3)
    local_objects: LocalObjectStore | None = None
    extras: dict[str, object] = field(default_factory=dict)  # what other components hang on the app

    @classmethod
    def build(
        cls,
        settings: Settings,
        service_settings: ServiceSettings,
        *,
        base_url: str,
        clock: Clock | None = None,
        database: SqlDatabase | None = None,
        events: TaskEventSink | None = None,
        check_webhook_url: WebhookUrlCheck | None = None,
    ) -> Services:
        """Open the stores (creating their tables). ``base_url`` is where clients reach the service
        (for the local store's signed URLs); ``database`` defaults to :func:`build_database`'s. Costs
        come from the runtime's cost ledger (none without a price table).

        Raises ConfigurationError for incomplete settings, the database driver's errors, OSError.
        """
        clock = clock or SystemClock()
        database = database or build_database(settings)
        try:
            runtime = Runtime.from_settings(settings, clock=clock, database=database)
            tenants = TenantStore(
                database, clock, rotation_grace=timedelta(seconds=service_settings.webhook_secret_grace_seconds)
            )
            video_store = VideoStore(database)
            signer: UrlSigner | None = None
            presigner: Presigner
            if settings.object_store == "s3":
                from shared.storage.s3_objects import S3ObjectStore
                from shared.storage.s3_presign import S3Presigner

                if not isinstance(runtime.objects, S3ObjectStore):
                    raise ConfigurationError("VIDLUXE_OBJECT_STORE=s3 built a store that is not S3ObjectStore.")

                presigner = S3Presigner(runtime.objects, clock)
            else:
                signer = UrlSigner(url_signing_key(settings, service_settings))
                presigner = LocalPresigner(signer, service_settings.public_url or base_url)
            videos = VideoService(
                runtime,
                tenants,
                video_store,
                presigner,
                limits=UploadLimits(
                    max_bytes=service_settings.upload_max_bytes,
                    expires_seconds=service_settings.upload_expires_seconds,
                    download_expires_seconds=service_settings.download_expires_seconds,
                ),
                task_store=SqlTaskStore(database, clock),  # runtime.tasks may wrap one; this reads the same tables
                costs=runtime.costs.store if runtime.costs is not None else None,
                events=events,
                check_webhook_url=check_webhook_url,
            )
        except BaseException:
            database.close()
            raise
        local = runtime.objects if isinstance(runtime.objects, LocalObjectStore) else None
        return cls(settings, service_settings, database, runtime, tenants, videos, signer, local)

    def close(self) -> None:
        self.runtime.close()
        self.database.close()


def url_signing_key(settings: Settings, service_settings: ServiceSettings) -> bytes:
    """VIDLUXE_URL_SIGNING_KEY, or a random key kept in ``<home>/url-signing.key`` (made on first use,
    readable by the owner only), so signed links survive a restart of ``vidluxe serve``."""
    return home_secret(settings, service_settings.url_signing_key, "url-signing.key")


def dashboard_session_key(settings: Settings, service_settings: ServiceSettings) -> bytes:
    """VIDLUXE_DASHBOARD_SESSION_KEY, or a random key kept in ``<home>/dashboard-session.key``, so
    dashboard sign-ins survive a restart of ``vidluxe serve``."""
    return home_secret(settings, service_settings.dashboard_session_key, "dashboard-session.key")


def home_secret(settings: Settings, configured: SecretStr | None, filename: str) -> bytes:
    """``configured``, or a random secret kept in ``<home>/<filename>`` (made on first use, readable by
    the owner only). Raises OSError when the home cannot be written."""
    if configured is not None:
        return configured.get_secret_value().encode()
    path = Path(settings.home) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_urlsafe(32).encode())
    return path.read_bytes().strip()
