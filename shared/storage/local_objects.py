"""The embedded object store: one file per key under a root directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from shared.errors import NotFoundError, StorageKeyError
from shared.storage._validation import validate_prefix
from shared.storage.objects import validate_key

# Temporary files are named ``.<name>~<random>.tmp``: '~' is not allowed in a key, so a temporary file can
# never be mistaken for an object (``list_keys`` only reports paths that are valid keys).
_TMP_SEPARATOR = "~"
_CHUNK = 1024 * 1024

ObjectCreatedListener = Callable[[str], object]
"""Called with the key after an object was written (the local counterpart of S3's ObjectCreated event)."""


class LocalObjectStore:
    """Objects as files under ``root`` (created if missing).

    Writes are atomic: the data goes to a temporary file in the target's directory, is fsynced, then
    renamed over the target with :func:`os.replace`, so a reader sees the old object or the new one, never
    a partial one. Content types are not stored locally (nothing reads them back).

    Every method validates its key with :func:`validate_key` and checks that the resolved path stays
    inside ``root`` (a symlink under the root cannot be used to escape it); both raise
    :class:`StorageKeyError`.

    Listeners added with :meth:`add_listener` are called with the key after each write is in place:
    the object-created event that starts a task when its upload lands.
    """

    def __init__(self, root: Path) -> None:
        """Raises OSError if ``root`` cannot be created."""
        root.mkdir(parents=True, exist_ok=True)
        self._root = root.resolve(strict=True)
        self._listeners: list[ObjectCreatedListener] = []
        self._listeners_lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str) -> Path:
        """The file for ``key``; raises StorageKeyError for an unsafe key or one resolving outside root."""
        validate_key(key)
        path = self._root / key
        resolved = path.resolve()
        if not resolved.is_relative_to(self._root):
            raise StorageKeyError(
                f"Object key {key!r} resolves outside the store's root (through a symlink)."
            )
        return path

    def add_listener(self, listener: ObjectCreatedListener) -> None:
        """Call ``listener(key)`` after every write of an object (in the writing thread).

        A listener's exception propagates to the writer, after the object is in place.
        """
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: ObjectCreatedListener) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _created(self, key: str) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(key)

    def _target(self, key: str) -> Path:
        """The file for a new object ``key``, its directory created."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageKeyError(f"Object key {key!r} conflicts with an existing object above it.") from exc
        if path.is_dir():
            raise StorageKeyError(f"Object key {key!r} conflicts with existing objects under it.")
        return path

    def staging_file(self) -> tuple[int, Path]:
        """A new empty temporary file on the store's file system, for :meth:`move_in`: (open fd, path).

        Its name is never a valid key, so ``list_keys`` never reports it. The caller closes the fd and
        moves the file in, or deletes it.
        """
        staging = self._root / ".staging~"
        staging.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=staging, prefix="upload~", suffix=".tmp")
        return fd, Path(name)

    def move_in(self, key: str, path: Path) -> None:
        """Make the file at ``path`` (from :meth:`staging_file`) the object ``key``: fsync, then rename.

        No copy, so a 2 GB upload is written once. Raises StorageKeyError for an unsafe key,
        FileNotFoundError if ``path`` does not exist.
        """
        target = self._target(key)
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(path, target)
        _fsync_directory(target.parent)
        self._created(key)

    def _write_atomically(self, key: str, source: BinaryIO | bytes) -> None:
        path = self._target(key)
        fd, tmp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}{_TMP_SEPARATOR}", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as tmp:
                if isinstance(source, bytes):
                    tmp.write(source)
                else:
                    shutil.copyfileobj(source, tmp, _CHUNK)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        _fsync_directory(path.parent)
        self._created(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write ``data`` under ``key`` atomically. Raises StorageKeyError for an unsafe key."""
        self._write_atomically(key, bytes(data))

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Copy the file at ``path`` under ``key`` atomically.

        Raises StorageKeyError for an unsafe key, FileNotFoundError if ``path`` does not exist.
        """
        with open(path, "rb") as source:
            self._write_atomically(key, source)

    def get_bytes(self, key: str) -> bytes:
        """Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFoundError(f"No object under key {key!r}.") from exc

    def exists(self, key: str) -> bool:
        """Raises StorageKeyError for an unsafe key."""
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        """Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key."""
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError(f"No object under key {key!r}.")
        return path.stat().st_size

    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error. Raises StorageKeyError for an unsafe key."""
        path = self._path(key)
        if path.is_dir():
            return
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()

    def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``, sorted. Raises StorageKeyError for an unsafe prefix."""
        validate_prefix(prefix)
        directory = prefix.rpartition("/")[0]
        start = self._path(directory) if directory else self._root
        if not start.is_dir():
            return []
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start):  # does not follow directory symlinks
            for filename in filenames:
                full = Path(dirpath) / filename
                key = full.relative_to(self._root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    self._path(key)  # skips temporary files, foreign names and escaping symlinks
                except StorageKeyError:
                    continue
                if full.is_file():
                    keys.append(key)
        return sorted(keys)

    @contextlib.contextmanager
    def _local_copy(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError(f"No object under key {key!r}.")
        yield path

    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """The object's own file (do not modify it).

        Raises NotFoundError when the key does not exist, StorageKeyError for an unsafe key.
        """
        return self._local_copy(key)

    def uri(self, key: str) -> str:
        """``file:///...`` for ``key``. Raises StorageKeyError for an unsafe key."""
        return self._path(key).as_uri()


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
