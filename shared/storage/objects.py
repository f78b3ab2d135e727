"""The object-store interface: artifacts are read and written by key, never by a caller's path."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from shared.errors import StorageKeyError

_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9._=+@,-]+$")
MAX_KEY_LENGTH = 1024


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise :class:`StorageKeyError`.

    Safe means: non-empty, relative, '/'-separated segments of ``[A-Za-z0-9._=+@,-]`` with no empty,
    ``.`` or ``..`` segment, so no backend can be made to read or write outside its bucket or home.
    """
    if not isinstance(key, str) or not key:
        raise StorageKeyError("An object key must be a non-empty string.")
    if len(key) > MAX_KEY_LENGTH:
        raise StorageKeyError(f"Object key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}.")
    if key.startswith("/") or "\\" in key:
        raise StorageKeyError(f"Object key {key!r} must be relative and use '/' as separator.")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise StorageKeyError(f"Object key {key!r} has an empty, '.' or '..' segment.")
        if not _KEY_SEGMENT.match(segment):
            raise StorageKeyError(
                f"Object key {key!r} has characters outside [A-Za-z0-9._=+@,-] in segment {segment!r}."
            )
    return key


class ObjectStore(Protocol):
    """Where stages read and write artifacts. Writes are atomic: a reader sees all of an object or none."""

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Upload a local file (the caller's scratch file) under ``key``."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Raises NotFoundError when the key does not exist."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """The object's size in bytes. Raises NotFoundError when the key does not exist."""
        ...

    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a key prefix, not necessarily ending in '/'), sorted."""
        ...

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local, read-only file holding the object, for tools such as ffmpeg that need a path.

        The local backend yields its own file; remote backends download to a temporary file that is
        removed on exit. Raises NotFoundError when the key does not exist.
        """
        ...

    def uri(self, key: str) -> str:
        """A human-readable location (file:///..., s3://bucket/key) for reports and logs."""
        ...

