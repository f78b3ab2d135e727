"""The cloud object store: S3 or any S3-compatible API (Cloudflare R2, MinIO) through boto3."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.errors import ConfigurationError, NotFoundError, StorageKeyError
from shared.storage._validation import validate_prefix
from shared.storage.objects import validate_key

if TYPE_CHECKING:
    from shared.settings import Settings

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_missing(exc: Any) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", "")) in _MISSING_CODES


class S3ObjectStore:
    """Objects under ``s3://bucket/prefix``.

    ``client`` is a boto3 S3 client (its ``endpoint_url`` selects S3, R2 or MinIO). ``prefix`` is a folder
    inside the bucket: ``"tenant-a"`` and ``"tenant-a/"`` both store key ``k`` at ``tenant-a/k``.
    Every method validates its key with :func:`validate_key` (raising :class:`StorageKeyError`); errors
    other than a missing key propagate as botocore's ``ClientError``.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        """Raises ConfigurationError for an empty bucket name.

        Raises StorageKeyError if ``prefix`` is not a valid key (after removing surrounding '/').
        """
        if not bucket:
            raise ConfigurationError("S3ObjectStore needs a bucket name.")
        self._client = client
        self._bucket = bucket
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self._prefix = f"{prefix}/" if prefix else ""

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        """Build a boto3 client from ``settings`` (endpoint URL, region; credentials from the environment).

        Raises ConfigurationError if ``VIDLUXE_S3_BUCKET`` is not set.
        """
        if not settings.s3_bucket:
            raise ConfigurationError(
                "The S3 object store needs a bucket: set VIDLUXE_S3_BUCKET "
                "(and VIDLUXE_S3_ENDPOINT_URL for R2 or MinIO)."
            )
        import boto3
        from botocore.config import Config

        # Signature V4 always: boto3 still presigns with V2 in some regions (us-east-1, eu-west-1), which
        # S3 refuses on buckets created since mid-2020 and R2 never accepts.
        client = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region or None,
            config=Config(signature_version="s3v4"),
        )
        return cls(client, settings.s3_bucket, settings.s3_prefix)

    @property
    def client(self) -> Any:
        """The boto3 S3 client (for presigning, :mod:`shared.storage.s3_presign`)."""
        return self._client

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    def _key(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Raises StorageKeyError for an unsafe key."""
        extra = {"ContentType": content_type} if content_type else {}
        self._client.put_object(Bucket=self._bucket, Key=self._key(key), Body=bytes(data), **extra)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Upload ``path`` (multipart above boto3's threshold, 8 MiB by default).

        Raises StorageKeyError for an unsafe key, FileNotFoundError if ``path`` does not exist.
        """
        full_key = self._key(key)
        if not Path(path).is_file():
            raise FileNotFoundError(f"No file to upload at {path}.")
        extra = {"ContentType": content_type} if content_type else None
        self._client.upload_file(str(path), self._bucket, full_key, ExtraArgs=extra)

    def get_bytes(self, key: str) -> bytes:
        """Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key."""
        full_key = self._key(key)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=full_key)
        except ClientError as exc:
            if _is_missing(exc):
                raise NotFoundError(f"No object at {self.uri(key)}.") from exc
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        """Raises StorageKeyError for an unsafe key."""
        try:
            self._client.head_object(Bucket=self._bucket, Key=self._key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        """Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key."""
        try:
            response = self._client.head_object(Bucket=self._bucket, Key=self._key(key))
        except ClientError as exc:
            if _is_missing(exc):
                raise NotFoundError(f"No object at {self.uri(key)}.") from exc
            raise
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error. Raises StorageKeyError for an unsafe key."""
        self._client.delete_object(Bucket=self._bucket, Key=self._key(key))

    def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``, sorted (all pages). Raises StorageKeyError for an unsafe prefix.

        Objects in the bucket whose names are not valid keys (written by other tools) are left out.
        """
        validate_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self._prefix) :]
                try:
                    validate_key(key)
                except StorageKeyError:
                    continue
                keys.append(key)
        return sorted(keys)

    @contextlib.contextmanager
    def _local_copy(self, key: str) -> Iterator[Path]:
        full_key = self._key(key)
        suffix = PurePosixPath(key).suffix  # keep the extension: ffmpeg guesses formats from it
        with tempfile.NamedTemporaryFile(prefix="vidluxe-", suffix=suffix, delete=False) as tmp:
            path = Path(tmp.name)
            try:
                self._client.download_fileobj(self._bucket, full_key, tmp)
            except ClientError as exc:
                tmp.close()
                path.unlink(missing_ok=True)
                if _is_missing(exc):
                    raise NotFoundError(f"No object at {self.uri(key)}.") from exc
                raise
            except BaseException:
                tmp.close()
                path.unlink(missing_ok=True)
                raise
        try:
            os.chmod(path, 0o400)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """Download the object to a temporary file, removed when the context exits.

        Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key.
        """
        return self._local_copy(key)

    def uri(self, key: str) -> str:
        """``s3://bucket/prefix/key``. Raises StorageKeyError for an unsafe key."""
        return f"s3://{self._bucket}/{self._key(key)}"
