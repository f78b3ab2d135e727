"""The Cache contract, run against every backend: the local SQLite cache, the real Redis, and Upstash's
REST API (the upstash-redis SDK against a loopback stand-in of the REST API over the same Redis).

TTLs run out on the fake clock for the local cache and in real time (1 s) for Redis and Upstash.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.storage.cache import Cache, get_json, set_json
from shared.storage.local_cache import LocalCache
from shared.storage.redis_cache import RedisCache
from shared.storage.upstash_cache import UpstashCache


@dataclass
class CacheUnderTest:
    cache: Cache
    advance: Callable[[float], None]  # let this many seconds pass, as the backend sees time


@pytest.fixture(
    params=["local", pytest.param("redis", marks=pytest.mark.redis), pytest.param("upstash", marks=pytest.mark.redis)]
)
def subject(request: pytest.FixtureRequest, tmp_path: Path, clock: Any) -> Iterator[CacheUnderTest]:
    if request.param == "local":
        local = LocalCache(tmp_path / "cache" / "cache.sqlite3", clock)
        yield CacheUnderTest(local, clock.advance)
        local.close()
    elif request.param == "upstash":
        server = request.getfixturevalue("upstash_rest")
        namespace = request.getfixturevalue("redis_namespace")
        upstash = UpstashCache.from_url(server.url, server.token, namespace=namespace)
        yield CacheUnderTest(upstash, time.sleep)
        upstash.close()
    else:
        client = request.getfixturevalue("redis_client")
        namespace = request.getfixturevalue("redis_namespace")
        yield CacheUnderTest(RedisCache(client, namespace=namespace), time.sleep)


def test_set_get(subject: CacheUnderTest) -> None:
    subject.cache.set("stage:matting:abc", b"\x00\xffvalue", ttl_seconds=60)
    assert subject.cache.get("stage:matting:abc") == b"\x00\xffvalue"


def test_missing_key(subject: CacheUnderTest) -> None:
    assert subject.cache.get("never-set") is None


def test_overwrite(subject: CacheUnderTest) -> None:
    subject.cache.set("k", b"one", ttl_seconds=60)
    subject.cache.set("k", b"two", ttl_seconds=60)
    assert subject.cache.get("k") == b"two"


def test_empty_value_is_not_absent(subject: CacheUnderTest) -> None:
    subject.cache.set("k", b"", ttl_seconds=60)
    assert subject.cache.get("k") == b""


def test_delete(subject: CacheUnderTest) -> None:
    subject.cache.set("k", b"v", ttl_seconds=60)
    subject.cache.delete("k")
    assert subject.cache.get("k") is None
    subject.cache.delete("k")  # missing: not an error


def test_expiry(subject: CacheUnderTest) -> None:
    subject.cache.set("short", b"v", ttl_seconds=1)
    subject.cache.set("long", b"v", ttl_seconds=3600)
    assert subject.cache.get("short") == b"v"
    subject.advance(1.2)
    assert subject.cache.get("short") is None
    assert subject.cache.get("long") == b"v"


def test_setting_again_renews_the_ttl(subject: CacheUnderTest) -> None:
    subject.cache.set("k", b"old", ttl_seconds=1)
    subject.cache.set("k", b"new", ttl_seconds=3600)
    subject.advance(1.2)
    assert subject.cache.get("k") == b"new"


@pytest.mark.parametrize("ttl", [0, -1, 1.5, True])
def test_ttl_must_be_a_positive_int(subject: CacheUnderTest, ttl: Any) -> None:
    with pytest.raises(ValueError):
        subject.cache.set("k", b"v", ttl_seconds=ttl)
    assert subject.cache.get("k") is None


def test_json_helpers(subject: CacheUnderTest) -> None:
    set_json(subject.cache, "doc", {"b": [1, 2], "a": "ü"}, ttl_seconds=60)
    assert get_json(subject.cache, "doc") == {"a": "ü", "b": [1, 2]}
    assert get_json(subject.cache, "absent") is None


def test_keys_are_opaque_strings(subject: CacheUnderTest) -> None:
    keys = ["with space", "colon:separated:key", "../../etc", "ünïcode", "*", "a" * 500]
    for i, key in enumerate(keys):
        subject.cache.set(key, str(i).encode(), ttl_seconds=60)
    assert [subject.cache.get(key) for key in keys] == [str(i).encode() for i in range(len(keys))]


def test_concurrent_use_from_threads(subject: CacheUnderTest) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                subject.cache.set(f"{n}:{i}", f"{n}-{i}".encode(), ttl_seconds=60)
                assert subject.cache.get(f"{n}:{i}") == f"{n}-{i}".encode()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_ping(subject: CacheUnderTest) -> None:
    subject.cache.ping()


# ------------------------------------------------------------------------------------ local only


def rows(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        count: int = connection.execute("SELECT count(*) FROM cache").fetchone()[0]
    return count


def test_local_expiry_boundary(tmp_path: Path, clock: Any) -> None:
    cache = LocalCache(tmp_path / "c.sqlite3", clock)
    cache.set("k", b"v", ttl_seconds=10)
    clock.advance(9.999)
    assert cache.get("k") == b"v"
    clock.advance(0.001)
    assert cache.get("k") is None  # visible while now < set time + ttl


def test_local_expired_entries_are_purged_lazily(tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "c.sqlite3"
    cache = LocalCache(path, clock)
    cache.set("a", b"v", ttl_seconds=1)
    cache.set("b", b"v", ttl_seconds=1)
    cache.set("c", b"v", ttl_seconds=100)
    clock.advance(5)
    assert rows(path) == 3  # invisible already, but still there
    assert cache.get("a") is None
    assert rows(path) == 2  # a get that finds an expired entry deletes it
    cache.set("d", b"v", ttl_seconds=100)
    assert rows(path) == 2  # every set purges whatever has expired (b)
    assert cache.get("c") == b"v"


def test_local_cache_survives_reopening(tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "deep" / "c.sqlite3"
    first = LocalCache(path, clock)
    first.set("k", b"v", ttl_seconds=60)
    first.close()
    second = LocalCache(path, clock)
    assert second.get("k") == b"v"
    second.close()
    with pytest.raises(sqlite3.ProgrammingError):
        second.get("k")


# ------------------------------------------------------------------------------------ redis only


@pytest.mark.redis
def test_redis_keys_are_namespaced_and_expire_server_side(redis_client: Any, redis_namespace: str) -> None:
    one = RedisCache(redis_client, namespace=redis_namespace + "one:")
    two = RedisCache(redis_client, namespace=redis_namespace + "two:")
    one.set("k", b"1", ttl_seconds=30)
    two.set("k", b"2", ttl_seconds=30)
    assert (one.get("k"), two.get("k")) == (b"1", b"2")
    assert redis_client.get(redis_namespace + "one:k") == b"1"
    assert 0 < redis_client.ttl(redis_namespace + "one:k") <= 30
    one.delete("k")
    assert two.get("k") == b"2"


@pytest.mark.redis
def test_redis_from_url(redis_client: Any, redis_namespace: str) -> None:
    kwargs = redis_client.connection_pool.connection_kwargs
    cache = RedisCache.from_url(
        f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}", namespace=redis_namespace
    )
    try:
        cache.ping()
        cache.set("k", b"v", ttl_seconds=30)
        assert redis_client.get(redis_namespace + "k") == b"v"
        assert cache.namespace == redis_namespace
    finally:
        cache.close()


@pytest.mark.redis
def test_redis_client_decoding_responses_still_gives_bytes(redis_client: Any, redis_namespace: str) -> None:
    import redis

    kwargs = redis_client.connection_pool.connection_kwargs
    decoding = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs["db"], decode_responses=True)
    try:
        cache = RedisCache(decoding, namespace=redis_namespace)
        cache.set("k", "ü".encode(), ttl_seconds=30)
        assert cache.get("k") == "ü".encode()
    finally:
        decoding.close()
