"""Presigned URLs of the S3 object store (S3, R2, MinIO): a POST policy for uploads, GETs for downloads.

A presigned PUT cannot limit the body's size; a presigned POST's policy can: ``content-length-range``
makes S3 refuse a larger (or empty) file, and the ``Content-Type`` condition any other type.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from shared.storage.presign import UploadTarget

if TYPE_CHECKING:
    from shared.clock import Clock
    from shared.storage.s3_objects import S3ObjectStore


class S3Presigner:
    """Presigned requests for the objects of one :class:`S3ObjectStore`: its client, and the bucket and
    name of each key (an upload's POST goes to the uploads bucket, a deliverable's GET to the outputs')."""

    def __init__(self, store: S3ObjectStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def _expires_in(self, expires_at: datetime) -> int:
        return max(1, math.ceil((expires_at - self._clock.now()).total_seconds()))

    def upload(self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime) -> UploadTarget:
        """Raises StorageKeyError for an unsafe key."""
        bucket, name = self._store.location(key)
        post = self._store.client.generate_presigned_post(
            Bucket=bucket,
            Key=name,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=self._expires_in(expires_at),
        )
        return UploadTarget(
            method="POST",
            url=str(post["url"]),
            fields={str(name): str(value) for name, value in post["fields"].items()},
            expires_at=expires_at,
            max_bytes=max_bytes,
            content_type=content_type,
        )

    def download(self, key: str, *, expires_at: datetime, filename: str | None = None) -> str:
        """Raises StorageKeyError for an unsafe key."""
        bucket, name = self._store.location(key)
        params = {"Bucket": bucket, "Key": name}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = self._store.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self._expires_in(expires_at)
        )
        return url
