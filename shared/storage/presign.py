"""Presigned upload and download URLs: the protocol, and the local store's own HMAC-signed URLs.

A client uploads straight into the object store with a URL valid for one key, one content type, a
size limit and a short time; it downloads outputs the same way. The S3 backend asks boto3 for a
presigned POST (its policy carries ``content-length-range``) and presigned GETs
(:mod:`shared.storage.s3_presign`). The local store has no server of its own: :class:`LocalPresigner`
signs URLs that ``vidluxe serve`` checks and serves (``PUT /v1/uploads/{key}``, ``GET /v1/files/{key}``).

A local signature is HMAC-SHA256, keyed by the service's URL signing key, over the method, the key,
the expiry (Unix seconds), the content type, the size limit and the download file name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Literal, Protocol
from urllib.parse import quote, urlencode

from pydantic import BaseModel, Field

from shared.errors import PermissionDeniedError
from shared.storage.objects import validate_key

UPLOAD_ROUTE = "/v1/uploads/"
DOWNLOAD_ROUTE = "/v1/files/"


class UploadTarget(BaseModel):
    """How to upload one file: send it with ``method`` to ``url``.

    PUT (local store): the raw bytes as the body, with ``headers``. POST (S3): a multipart form with
    ``fields`` first and the file last, as the field ``file``.
    """

    method: Literal["PUT", "POST"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    expires_at: datetime
    max_bytes: int
    content_type: str


class Presigner(Protocol):
    def upload(self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime) -> UploadTarget:
        """A target valid for ``key`` until ``expires_at``; raises StorageKeyError for an unsafe key."""
        ...

    def download(self, key: str, *, expires_at: datetime, filename: str | None = None) -> str:
        """A GET URL for ``key`` valid until ``expires_at``, saved as ``filename`` by browsers."""
        ...


class UrlSigner:
    """HMAC-SHA256 signatures of (method, key, expiry, content type, size limit, file name)."""

    def __init__(self, secret: bytes) -> None:
        """Raises ValueError for a key shorter than 16 bytes."""
        if len(secret) < 16:
            raise ValueError("A URL signing key needs at least 16 bytes.")
        self._secret = secret

    def sign(
        self, method: str, key: str, expires: int, *, content_type: str = "", max_bytes: int = 0, filename: str = ""
    ) -> str:
        message = "\n".join((method.upper(), key, str(expires), content_type, str(max_bytes), filename))
        digest = hmac.new(self._secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def verify(
        self,
        signature: str,
        method: str,
        key: str,
        expires: int,
        *,
        now: datetime,
        content_type: str = "",
        max_bytes: int = 0,
        filename: str = "",
    ) -> None:
        """Raises PermissionDeniedError (BAD_SIGNATURE, URL_EXPIRED) unless the signature is right and
        ``now`` is before the expiry."""
        expected = self.sign(method, key, expires, content_type=content_type, max_bytes=max_bytes, filename=filename)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise PermissionDeniedError(
                "The URL's signature does not match this request (its method, content type or size limit "
                "differ from the signed ones, or the URL was altered).",
                code="BAD_SIGNATURE",
            )
        if now.timestamp() >= expires:
            raise PermissionDeniedError(
                f"The URL expired at {datetime.fromtimestamp(expires, UTC).isoformat()}; ask for a new one.",
                code="URL_EXPIRED",
            )


class LocalPresigner:
    """URLs served by ``vidluxe serve`` at ``base_url`` for the local object store."""

    def __init__(self, signer: UrlSigner, base_url: str) -> None:
        self._signer = signer
        self._base = base_url.rstrip("/")

    @property
    def signer(self) -> UrlSigner:
        return self._signer

    def upload(self, key: str, *, content_type: str, max_bytes: int, expires_at: datetime) -> UploadTarget:
        validate_key(key)
        expires = int(expires_at.timestamp())
        signature = self._signer.sign("PUT", key, expires, content_type=content_type, max_bytes=max_bytes)
        query = urlencode({"expires": expires, "max_bytes": max_bytes, "signature": signature})
        return UploadTarget(
            method="PUT",
            url=f"{self._base}{UPLOAD_ROUTE}{quote(key)}?{query}",
            headers={"Content-Type": content_type},
            expires_at=datetime.fromtimestamp(expires, UTC),
            max_bytes=max_bytes,
            content_type=content_type,
        )

    def download(self, key: str, *, expires_at: datetime, filename: str | None = None) -> str:
        validate_key(key)
        expires = int(expires_at.timestamp())
        signature = self._signer.sign("GET", key, expires, filename=filename or "")
        params: dict[str, str | int] = {"expires": expires, "signature": signature}
        if filename:
            params["filename"] = filename
        return f"{self._base}{DOWNLOAD_ROUTE}{quote(key)}?{urlencode(params)}"
