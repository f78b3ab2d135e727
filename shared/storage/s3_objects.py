"""The cloud object store: S3 or any S3-compatible API (Cloudflare R2, MinIO) through boto3.

One store, up to three buckets, chosen by the key (:func:`key_class`): a client's uploads, the runs that
hold a task's deliverables, and every other artifact. Each bucket gets its own retention, CORS and grants
on AWS (infra/aws/storage.yml); the same bucket for all three (the default) is the one-bucket setup of
``vidluxe serve`` on R2 or MinIO.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from shared.errors import ConfigurationError, NotFoundError, StorageKeyError
from shared.storage._validation import validate_prefix
from shared.storage.objects import validate_key

if TYPE_CHECKING:
    from shared.settings import Settings

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})

KeyClass = Literal["uploads", "artifacts", "outputs"]

# The stages whose runs hold a task's deliverables (shared/pipeline/report.py:DELIVERABLES): the final
# video (assemble, remotion_render; showcase_render for a showcase), and finalize's and showcase_preview's
# files. The whole run goes there, output.json included, so the commit point lives and expires beside
# the files it names.
OUTPUT_STAGES = frozenset({"assemble", "remotion_render", "finalize", "showcase_render", "showcase_preview"})


def key_class(key: str) -> KeyClass:
    """``uploads/...``: uploads; ``tasks/<task>/<stage>/...`` of an :data:`OUTPUT_STAGES` stage: outputs;
    any other key: artifacts. Decided by the first three segments."""
    segments = key.split("/", 3)
    if segments[0] == "uploads" and len(segments) > 1:
        return "uploads"
    if segments[0] == "tasks" and len(segments) > 3 and segments[2] in OUTPUT_STAGES:
        return "outputs"
    return "artifacts"


def prefix_class(prefix: str) -> KeyClass | None:
    """The class of every key that starts with ``prefix``, or None where keys of several classes may."""
    complete = prefix.split("/")[:-1]  # the segments a '/' ends
    if len(complete) >= 3 or (complete and complete[0] != "tasks"):
        return key_class(prefix + "x")  # the class of any key under it
    return None


def _is_missing(exc: Any) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code", "")) in _MISSING_CODES


class S3ObjectStore:
    """Objects under ``s3://<bucket of the key>/prefix``.

    ``client`` is a boto3 S3 client (its ``endpoint_url`` selects S3, R2 or MinIO). ``bucket`` holds the
    artifacts, and the uploads and outputs too unless ``uploads_bucket`` or ``outputs_bucket`` names
    another (:func:`key_class`). ``prefix`` is a folder inside each bucket: ``"tenant-a"`` and
    ``"tenant-a/"`` both store key ``k`` at ``tenant-a/k``. Every method validates its key with
    :func:`validate_key` (raising :class:`StorageKeyError`); errors other than a missing key propagate as
    botocore's ``ClientError``.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        uploads_bucket: str | None = None,
        outputs_bucket: str | None = None,
    ) -> None:
        """Raises ConfigurationError for an empty bucket name.

        Raises StorageKeyError if ``prefix`` is not a valid key (after removing surrounding '/').
        """
        if not bucket:
            raise ConfigurationError("S3ObjectStore needs a bucket name.")
        self._client = client
        self._buckets: dict[KeyClass, str] = {
            "uploads": uploads_bucket or bucket,
            "artifacts": bucket,
            "outputs": outputs_bucket or bucket,
        }
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
        return cls(
            client, settings.s3_bucket, settings.s3_prefix,
            uploads_bucket=settings.s3_uploads_bucket, outputs_bucket=settings.s3_outputs_bucket,
        )

    @property
    def client(self) -> Any:
        """The boto3 S3 client (for presigning, :mod:`shared.storage.s3_presign`)."""
        return self._client

    @property
    def prefix(self) -> str:
        return self._prefix

    def bucket_of(self, key: str) -> str:
        """The bucket that holds ``key`` (not validated: the upload trigger asks about any event's key)."""
        return self._buckets[key_class(key)]

    def location(self, key: str) -> tuple[str, str]:
        """(bucket, object name) of ``key``. Raises StorageKeyError for an unsafe key."""
        return self.bucket_of(key), self._prefix + validate_key(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Raises StorageKeyError for an unsafe key."""
        bucket, name = self.location(key)
        extra = {"ContentType": content_type} if content_type else {}
        self._client.put_object(Bucket=bucket, Key=name, Body=bytes(data), **extra)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Upload ``path`` (multipart above boto3's threshold, 8 MiB by default).

        Raises StorageKeyError for an unsafe key, FileNotFoundError if ``path`` does not exist.
        """
        bucket, name = self.location(key)
        if not Path(path).is_file():
            raise FileNotFoundError(f"No file to upload at {path}.")
        extra = {"ContentType": content_type} if content_type else None
        self._client.upload_file(str(path), bucket, name, ExtraArgs=extra)

    def get_bytes(self, key: str) -> bytes:
        """Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key."""
        bucket, name = self.location(key)
        try:
            response = self._client.get_object(Bucket=bucket, Key=name)
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
        bucket, name = self.location(key)
        try:
            self._client.head_object(Bucket=bucket, Key=name)
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        """Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key."""
        bucket, name = self.location(key)
        try:
            response = self._client.head_object(Bucket=bucket, Key=name)
        except ClientError as exc:
            if _is_missing(exc):
                raise NotFoundError(f"No object at {self.uri(key)}.") from exc
            raise
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error. Raises StorageKeyError for an unsafe key."""
        bucket, name = self.location(key)
        self._client.delete_object(Bucket=bucket, Key=name)

    def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``, sorted (all pages). Raises StorageKeyError for an unsafe prefix.

        Lists each bucket that may hold such keys (one when the prefix decides the class). Objects whose
        names are not valid keys (written by other tools), or that lie in a bucket their key does not
        route to, are left out.
        """
        validate_prefix(prefix)
        fixed = prefix_class(prefix)
        buckets = {self._buckets[fixed]} if fixed is not None else set(self._buckets.values())
        return sorted(key for bucket in buckets for key in self._list_bucket(bucket, prefix))

    def _list_bucket(self, bucket: str, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=self._prefix + prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self._prefix) :]
                try:
                    validate_key(key)
                except StorageKeyError:
                    continue
                if self.bucket_of(key) == bucket:
                    yield key

    @contextlib.contextmanager
    def _local_copy(self, key: str) -> Iterator[Path]:
        bucket, name = self.location(key)
        suffix = PurePosixPath(key).suffix  # keep the extension: ffmpeg guesses formats from it
        with tempfile.NamedTemporaryFile(prefix="vidluxe-", suffix=suffix, delete=False) as tmp:
            path = Path(tmp.name)
            try:
                self._client.download_fileobj(bucket, name, tmp)
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
        bucket, name = self.location(key)
        return f"s3://{bucket}/{name}"
