"""The ObjectStore contract, run against every backend: local files, and S3 (moto's server on loopback)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.errors import NotFoundError, StorageKeyError
from shared.storage.local_objects import LocalObjectStore
from shared.storage.objects import ObjectStore
from shared.storage.s3_objects import S3ObjectStore

BAD_KEYS = [
    "",
    "../x",
    "a/../../x",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a/./b",
    ".",
    "..",
    "a/",
    "a\\b",
    "..\\x",
    "a b",
    "a/b?c",
    "x" * 1025,
]


@pytest.fixture(params=["local", "s3", "s3-prefixed", "s3-three-buckets"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalObjectStore(tmp_path / "objects")
    elif request.param == "s3-three-buckets":
        client, buckets = request.getfixturevalue("s3_client"), request.getfixturevalue("s3_buckets")
        yield S3ObjectStore(
            client, buckets["artifacts"], uploads_bucket=buckets["uploads"], outputs_bucket=buckets["outputs"]
        )
    else:
        client = request.getfixturevalue("s3_client")
        bucket = request.getfixturevalue("s3_bucket")
        yield S3ObjectStore(client, bucket, prefix="tenant/a" if request.param == "s3-prefixed" else "")


# ------------------------------------------------------------------------------------------ contract


def test_put_and_get_bytes(store: ObjectStore) -> None:
    store.put_bytes("tasks/t1/input.mp4", b"\x00\x01video", content_type="video/mp4")
    assert store.get_bytes("tasks/t1/input.mp4") == b"\x00\x01video"
    assert store.exists("tasks/t1/input.mp4")


def test_overwrite_replaces_the_whole_object(store: ObjectStore) -> None:
    store.put_bytes("k.json", b"a much longer first version")
    store.put_bytes("k.json", b"short")
    assert store.get_bytes("k.json") == b"short"


def test_empty_object(store: ObjectStore) -> None:
    store.put_bytes("empty", b"")
    assert store.exists("empty")
    assert store.get_bytes("empty") == b""


def test_missing_key(store: ObjectStore) -> None:
    assert not store.exists("nope/missing.bin")
    with pytest.raises(NotFoundError):
        store.get_bytes("nope/missing.bin")
    with pytest.raises(NotFoundError), store.local_copy("nope/missing.bin"):
        pass


def test_size_in_bytes(store: ObjectStore) -> None:
    store.put_bytes("tasks/t1/out.bin", b"\x00" * 1234)
    store.put_bytes("empty", b"")
    assert store.size("tasks/t1/out.bin") == 1234
    assert store.size("empty") == 0
    with pytest.raises(NotFoundError):
        store.size("tasks/t1/missing.bin")
    with pytest.raises(NotFoundError):
        store.size("tasks/t1")  # a folder is not an object


def test_a_folder_is_not_an_object(store: ObjectStore) -> None:
    store.put_bytes("dir/file", b"x")
    assert not store.exists("dir")
    with pytest.raises(NotFoundError):
        store.get_bytes("dir")
    store.delete("dir")  # not an object: nothing happens
    assert store.get_bytes("dir/file") == b"x"


def test_delete(store: ObjectStore) -> None:
    store.put_bytes("a/b.txt", b"x")
    store.delete("a/b.txt")
    assert not store.exists("a/b.txt")
    with pytest.raises(NotFoundError):
        store.get_bytes("a/b.txt")
    store.delete("a/b.txt")  # missing: not an error
    store.delete("never/was")


def test_put_file(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "scratch.bin"
    source.write_bytes(b"file contents")
    store.put_file("out/result.bin", source, content_type="application/octet-stream")
    assert store.get_bytes("out/result.bin") == b"file contents"
    assert source.read_bytes() == b"file contents"  # the caller's file is left alone


def test_put_file_larger_than_the_multipart_threshold(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024)  # boto3 switches to multipart above 8 MiB
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    store.put_file("big/video.mp4", source)
    assert store.get_bytes("big/video.mp4") == data


def test_put_file_missing_source(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file("k", tmp_path / "does-not-exist")
    assert not store.exists("k")


def test_list_keys(store: ObjectStore) -> None:
    for key in ["b/2", "a/1", "a/10", "a/sub/x", "ab", "c"]:
        store.put_bytes(key, b"x")
    assert store.list_keys("") == ["a/1", "a/10", "a/sub/x", "ab", "b/2", "c"]
    assert store.list_keys("a/") == ["a/1", "a/10", "a/sub/x"]
    assert store.list_keys("a") == ["a/1", "a/10", "a/sub/x", "ab"]
    assert store.list_keys("a/1") == ["a/1", "a/10"]
    assert store.list_keys("a/sub") == ["a/sub/x"]
    assert store.list_keys("zzz") == []
    assert store.list_keys("zzz/") == []


def test_list_keys_after_delete(store: ObjectStore) -> None:
    store.put_bytes("d/1", b"x")
    store.put_bytes("d/2", b"x")
    store.delete("d/1")
    assert store.list_keys("d/") == ["d/2"]


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", "a/../b", "a\\", "/"])
def test_list_keys_rejects_unsafe_prefixes(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(StorageKeyError):
        store.list_keys(prefix)


def test_local_copy(store: ObjectStore) -> None:
    store.put_bytes("media/clip.mp4", b"frames")
    with store.local_copy("media/clip.mp4") as path:
        assert path.is_file()
        assert path.read_bytes() == b"frames"
        assert path.suffix == ".mp4"


def test_uri(store: ObjectStore) -> None:
    uri = store.uri("tasks/t1/out.mp4")
    assert uri.endswith("/tasks/t1/out.mp4")
    assert uri.startswith(("file:///", "s3://"))


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_method_rejects_unsafe_keys(store: ObjectStore, key: str, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.write_bytes(b"x")
    calls: list[Any] = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_file(key, source),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.uri(key),
    ]
    for call in calls:
        with pytest.raises(StorageKeyError):
            call()
    with pytest.raises(StorageKeyError), store.local_copy(key):
        pass


def test_keys_with_every_allowed_character(store: ObjectStore) -> None:
    key = "A-Z_a.z/0=9+x@y,z/.hidden"
    store.put_bytes(key, b"ok")
    assert store.get_bytes(key) == b"ok"
    assert store.list_keys("A-Z") == [key]


def test_concurrent_writers_and_readers(store: ObjectStore) -> None:
    """Readers racing writers always see one whole version."""
    versions = [bytes([i]) * (256 * 1024) for i in range(1, 6)]
    store.put_bytes("race", versions[0])
    errors: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            for _ in range(4):
                for version in versions:
                    store.put_bytes("race", version)
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                assert store.get_bytes("race") in versions
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    writers = [threading.Thread(target=write) for _ in range(2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors
    assert store.list_keys("") == ["race"]
