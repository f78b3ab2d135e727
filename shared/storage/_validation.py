"""Argument checks shared by several backends (not part of the public interface)."""

from __future__ import annotations

from shared.errors import StorageKeyError
from shared.storage.objects import validate_key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a safe key prefix for ``list_keys``, else raise :class:`StorageKeyError`.

    A prefix is ``""`` (everything), or a valid key optionally followed by one ``'/'``: ``"a/b"``,
    ``"a/b/"`` and ``"a/b-pa"`` (a partial last segment) are prefixes; ``"../"``, ``"/a"`` and ``"a//"``
    are not.
    """
    if not isinstance(prefix, str):
        raise StorageKeyError("A key prefix must be a string.")
    if prefix:
        validate_key(prefix.removesuffix("/"))
    return prefix


def check_ttl(ttl_seconds: int) -> int:
    """Return ``ttl_seconds`` if it is a whole number of seconds >= 1, else raise ValueError."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be an int >= 1, not {ttl_seconds!r}.")
    return ttl_seconds
