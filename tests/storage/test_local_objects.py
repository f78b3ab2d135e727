"""What only the local object store does: files on disk, symlink containment, atomic replacement."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from shared.errors import NotFoundError, StorageKeyError
from shared.storage.local_objects import LocalObjectStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root)


def files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def test_creates_its_root(root: Path) -> None:
    LocalObjectStore(root / "deeper")
    assert (root / "deeper").is_dir()


def test_objects_are_plain_files_under_root(store: LocalObjectStore, root: Path) -> None:
    store.put_bytes("a/b/c.txt", b"hello", content_type="text/plain")
    assert (root / "a" / "b" / "c.txt").read_bytes() == b"hello"
    assert files_under(root) == ["a/b/c.txt"]  # no temp or content-type files left beside it


def test_local_copy_yields_the_stored_file(store: LocalObjectStore, root: Path) -> None:
    store.put_bytes("v/in.mp4", b"x")
    with store.local_copy("v/in.mp4") as path:
        assert path == root.resolve() / "v" / "in.mp4"
    assert path.exists()  # the object itself: not removed on exit


def test_uri_is_a_file_uri(store: LocalObjectStore, root: Path) -> None:
    assert store.uri("a/b.mp4") == (root.resolve() / "a" / "b.mp4").as_uri()
    assert store.uri("a/b.mp4").startswith("file:///")


def test_symlinked_directory_cannot_escape_root(store: LocalObjectStore, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(outside, root / "link")
    with pytest.raises(StorageKeyError):
        store.get_bytes("link/secret")
    with pytest.raises(StorageKeyError):
        store.put_bytes("link/planted", b"x")
    with pytest.raises(StorageKeyError):
        store.delete("link/secret")
    with pytest.raises(StorageKeyError):
        store.exists("link/secret")
    with pytest.raises(StorageKeyError), store.local_copy("link/secret"):
        pass
    with pytest.raises(StorageKeyError):
        store.list_keys("link/")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"
    assert store.list_keys("") == []


def test_symlinked_file_cannot_escape_root(store: LocalObjectStore, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "passwd"
    outside.write_bytes(b"root:x:0:0")
    os.symlink(outside, root / "passwd")
    with pytest.raises(StorageKeyError):
        store.get_bytes("passwd")
    with pytest.raises(StorageKeyError):
        store.put_bytes("passwd", b"overwritten")
    assert outside.read_bytes() == b"root:x:0:0"
    assert store.list_keys("") == []


def test_symlink_inside_root_is_allowed(store: LocalObjectStore, root: Path) -> None:
    store.put_bytes("real/file", b"x")
    os.symlink(root / "real", root / "alias")
    assert store.get_bytes("alias/file") == b"x"


def test_failed_write_leaves_nothing_behind(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data partly written, then the write fails: no partial object, no temp file, old value intact."""
    store.put_bytes("k.bin", b"old value")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        store.put_bytes("k.bin", b"new value that never lands")
    with pytest.raises(OSError, match="No space"):
        store.put_bytes("fresh.bin", b"never")
    monkeypatch.undo()
    assert store.get_bytes("k.bin") == b"old value"
    assert not store.exists("fresh.bin")
    assert files_under(root) == ["k.bin"]


def test_failure_mid_copy_leaves_nothing_behind(
    store: LocalObjectStore, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "big"
    source.write_bytes(b"y" * (3 * 1024 * 1024))
    seen_partial: list[int] = []

    def half_copy(src: Any, dst: Any, length: int = 0) -> None:
        dst.write(src.read(1024 * 1024))
        dst.flush()
        seen_partial.append(len(files_under(root)))
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(shutil, "copyfileobj", half_copy)
    with pytest.raises(OSError, match="Input/output"):
        store.put_file("big.bin", source)
    monkeypatch.undo()
    assert seen_partial == [1]  # the partial data existed, but only as a temp file...
    assert store.list_keys("") == []  # ...which was never visible as an object
    assert not store.exists("big.bin")
    assert files_under(root) == []


def test_temp_files_are_never_listed(store: LocalObjectStore, root: Path) -> None:
    store.put_bytes("a/x", b"x")
    (root / "a" / ".x~abc123.tmp").write_bytes(b"partial")  # as left by a crash mid-write
    (root / "a" / "bad name").write_bytes(b"foreign")
    assert store.list_keys("") == ["a/x"]


def test_key_conflicting_with_a_file_or_folder(store: LocalObjectStore) -> None:
    store.put_bytes("a", b"file")
    with pytest.raises(StorageKeyError):
        store.put_bytes("a/b", b"x")
    store.put_bytes("d/e", b"x")
    with pytest.raises(StorageKeyError):
        store.put_bytes("d", b"x")
    with pytest.raises(NotFoundError):
        store.get_bytes("a/b")
    assert not store.exists("a/b")
    store.delete("a/b")
