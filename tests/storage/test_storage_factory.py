"""build_object_store / build_task_store / build_cache choose the backend named in Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.errors import ConfigurationError
from shared.settings import Settings
from shared.storage.factory import build_cache, build_object_store, build_task_store
from shared.storage.local_cache import LocalCache
from shared.storage.local_objects import LocalObjectStore
from shared.storage.redis_cache import RedisCache
from shared.storage.s3_objects import S3ObjectStore
from shared.storage.sql_tasks import PostgresTaskStore, SqliteTaskStore


def test_local_backends_live_under_home(tmp_path: Path, clock: Any) -> None:
    home = tmp_path / "new" / "home"
    settings = Settings(home=home, object_store="local", task_store="sqlite", cache="local")

    objects = build_object_store(settings)
    assert isinstance(objects, LocalObjectStore)
    objects.put_bytes("a/b", b"x")
    assert (home / "objects" / "a" / "b").read_bytes() == b"x"

    tasks = build_task_store(settings, clock)
    assert isinstance(tasks, SqliteTaskStore)
    tasks.ping()
    tasks.close()
    assert (home / "tasks.sqlite3").is_file()

    cache = build_cache(settings, clock)
    assert isinstance(cache, LocalCache)
    cache.set("k", b"v", ttl_seconds=5)
    assert cache.get("k") == b"v"
    cache.close()
    assert (home / "cache.sqlite3").is_file()


def test_s3_without_bucket_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="VIDLUXE_S3_BUCKET"):
        build_object_store(Settings(object_store="s3", s3_bucket=None))


def test_s3_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(
        object_store="s3",
        s3_bucket="media",
        s3_prefix="env/prod",
        s3_endpoint_url="https://account.r2.cloudflarestorage.com",
        s3_region="auto",
    )
    store = build_object_store(settings)  # no request is made until the store is used
    assert isinstance(store, S3ObjectStore)
    assert store.uri("k") == "s3://media/env/prod/k"


def test_postgres_without_url_says_what_to_set(clock: Any) -> None:
    with pytest.raises(ConfigurationError, match="VIDLUXE_DATABASE_URL"):
        build_task_store(Settings(task_store="postgres", database_url=None), clock)


@pytest.mark.postgres
def test_postgres_backend(postgres_url: str, postgres_schema: str, clock: Any) -> None:
    url = f"{postgres_url}?options=-csearch_path%3D{postgres_schema}"
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{postgres_schema}"')
    store = build_task_store(Settings(task_store="postgres", database_url=url), clock)
    assert isinstance(store, PostgresTaskStore)
    store.ping()
    store.close()


def test_redis_with_bad_url_says_what_to_set(clock: Any) -> None:
    with pytest.raises(ConfigurationError, match="VIDLUXE_REDIS_URL"):
        build_cache(Settings(cache="redis", redis_url="not a url"), clock)
    with pytest.raises(ConfigurationError, match="VIDLUXE_REDIS_URL"):
        build_cache(Settings(cache="redis", redis_url=""), clock)


@pytest.mark.redis
def test_redis_backend(redis_client: Any, clock: Any) -> None:
    kwargs = redis_client.connection_pool.connection_kwargs
    settings = Settings(cache="redis", redis_url=f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}")
    cache = build_cache(settings, clock)
    assert isinstance(cache, RedisCache)
    cache.ping()
    assert cache.namespace == "vidluxe:"
    cache.close()
