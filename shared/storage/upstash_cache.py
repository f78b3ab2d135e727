"""The serverless cache: Upstash Redis over its REST API, through the ``upstash-redis`` SDK.

A Lambda keeps no connection pool: every call is one HTTPS POST of a Redis command as a JSON array
(``["SET", key, value, "EX", 60]``) with ``Authorization: Bearer <token>``, answered with
``{"result": ...}`` or ``{"error": "..."}``. The commands are the ones :class:`RedisCache` sends
(``SET ... EX ttl``, ``GET``, ``DEL``, ``PING``), so TTLs expire on the server in the same way.

The REST API carries JSON strings, not bytes, so a value is stored as the base64 text of its bytes.
The default namespace (``vidluxe:b64:``) keeps these entries apart from a :class:`RedisCache`'s raw
ones when both reach the same Upstash database (over REST and over ``rediss://``).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from shared.storage._validation import check_ttl

if TYPE_CHECKING:
    from upstash_redis import Redis

DEFAULT_NAMESPACE = "vidluxe:b64:"


class UpstashCache:
    """Entries are Redis strings under ``namespace + key`` holding base64 text, set with ``EX ttl``.

    Errors propagate from the SDK: ``upstash_redis.errors.UpstashError`` for an answer with an
    ``error`` (a wrong token: ``WRONGPASS ...``), ``httpx.HTTPError`` when the endpoint cannot be reached
    (after the client's retries).
    """

    def __init__(self, client: Redis, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._client = client
        self._namespace = namespace

    @classmethod
    def from_url(
        cls,
        url: str,
        token: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        retries: int = 1,
        retry_interval: float = 0.5,
    ) -> UpstashCache:
        """A client for the database's REST URL and token (UPSTASH_REDIS_REST_URL and _TOKEN in the
        Upstash console); no request is made yet.

        ``retries``: how often the SDK sends a request again after a network error, ``retry_interval``
        seconds apart (the SDK's own default waits 3 s, long for a Lambda). Raises ValueError when the
        URL is not http(s) or the token is empty.
        """
        from upstash_redis import Redis

        if not url.startswith(("https://", "http://")):
            raise ValueError(f"The Upstash REST URL must start with https://, not {url!r}.")
        if not token:
            raise ValueError("The Upstash REST token is empty.")
        client = Redis(
            url.rstrip("/"),
            token,
            rest_retries=retries,
            rest_retry_interval=retry_interval,
            allow_telemetry=False,
        )
        return cls(client, namespace)

    @property
    def namespace(self) -> str:
        return self._namespace

    def _name(self, key: str) -> str:
        return self._namespace + key

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired.

        Raises ValueError when the entry is not base64 text (written by something else than this class).
        """
        try:
            # The SDK decodes the answer's base64 as UTF-8 text: raw bytes fail there already.
            value = self._client.get(self._name(key))
            if value is None:
                return None
            return base64.b64decode(value, validate=True)
        except (binascii.Error, UnicodeDecodeError, TypeError) as exc:
            raise ValueError(
                f"Cache entry {self._name(key)!r} is not base64 text: it was not written by UpstashCache "
                "(a RedisCache on the same database writes raw bytes; give them different namespaces)."
            ) from exc

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store ``value`` for ``ttl_seconds``. Raises ValueError if ttl_seconds is not an int >= 1."""
        text = base64.b64encode(bytes(value)).decode("ascii")
        self._client.set(self._name(key), text, ex=check_ttl(ttl_seconds))

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        self._client.delete(self._name(key))

    def ping(self) -> None:
        """Raise (UpstashError, httpx.HTTPError) if the database cannot be reached with this token."""
        self._client.ping()

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # the SDK leaves close() unannotated
