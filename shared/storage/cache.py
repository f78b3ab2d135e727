"""The content-hash cache: small values (JSON documents, asset keys) with a time to live."""

from __future__ import annotations

import json
from typing import Any, Protocol


class Cache(Protocol):
    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    def delete(self, key: str) -> None: ...

    def ping(self) -> None:
        """Raise if the cache cannot be reached."""
        ...


def get_json(cache: Cache, key: str) -> Any | None:
    raw = cache.get(key)
    return None if raw is None else json.loads(raw)


def set_json(cache: Cache, key: str, value: Any, ttl_seconds: int) -> None:
    cache.set(key, json.dumps(value, separators=(",", ":"), sort_keys=True).encode(), ttl_seconds)
