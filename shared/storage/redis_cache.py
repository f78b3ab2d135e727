"""The cloud cache: Redis (or a Redis-compatible service such as Upstash over rediss://)."""

from __future__ import annotations

import redis

from shared.storage._validation import check_ttl


class RedisCache:
    """Entries are Redis strings under ``namespace + key``, set with ``SET ... EX ttl_seconds``.

    The client must return bytes (``decode_responses=False``, redis-py's default). Connection failures
    propagate as ``redis.exceptions.ConnectionError``.
    """

    def __init__(self, client: redis.Redis, namespace: str = "vidluxe:") -> None:
        self._client = client
        self._namespace = namespace

    @classmethod
    def from_url(cls, url: str, namespace: str = "vidluxe:") -> RedisCache:
        """Build a client for ``redis://`` or ``rediss://`` ``url`` (no connection is made yet).

        Raises ValueError for a malformed URL.
        """
        return cls(redis.Redis.from_url(url), namespace)

    @property
    def namespace(self) -> str:
        return self._namespace

    def _name(self, key: str) -> str:
        return self._namespace + key

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        value = self._client.get(self._name(key))
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store ``value`` for ``ttl_seconds``. Raises ValueError if ttl_seconds is not an int >= 1."""
        self._client.set(self._name(key), bytes(value), ex=check_ttl(ttl_seconds))

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        self._client.delete(self._name(key))

    def ping(self) -> None:
        """Raise (redis.exceptions.ConnectionError) if Redis cannot be reached."""
        self._client.ping()

    def close(self) -> None:
        self._client.close()
