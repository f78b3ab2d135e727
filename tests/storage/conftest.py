"""Fixtures for the storage contract suites: every backend of each interface, behind one fixture.

PostgreSQL and Redis tests need the real services (CI has them). When a service is down those tests
fail, unless VIDLUXE_TEST_SKIP_SERVICES=1, which turns the failure into a skip. VIDLUXE_TEST_DATABASE_URL
and VIDLUXE_TEST_REDIS_URL point the tests at other servers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest

from shared.storage.sql import PostgresDatabase, SqlDatabase, SqliteDatabase

POSTGRES_URL = os.environ.get("VIDLUXE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VIDLUXE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_unavailable(name: str, url: str, error: BaseException) -> NoReturn:
    message = f"{name} at {url} is not reachable ({type(error).__name__}: {error})."
    if os.environ.get("VIDLUXE_TEST_SKIP_SERVICES") == "1":
        pytest.skip(message)
    pytest.fail(f"{message} Start it, or set VIDLUXE_TEST_SKIP_SERVICES=1 to skip these tests.")


class FakeClock:
    """A settable clock: ``sleep`` and ``advance`` move time forward without waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ----------------------------------------------------------------------------------------------- S3


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    bucket = f"vidluxe-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_buckets(s3_client: Any) -> dict[str, str]:
    """Three new buckets, as the AWS stack has them: key class -> bucket."""
    run = uuid.uuid4().hex[:12]
    buckets = {kind: f"vidluxe-test-{run}-{kind}" for kind in ("uploads", "artifacts", "outputs")}
    for bucket in buckets.values():
        s3_client.create_bucket(Bucket=bucket)
    return buckets


# ---------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_url() -> str:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        service_unavailable("PostgreSQL", POSTGRES_URL, exc)
    return POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema name for one test; the schema (created by the store) is dropped afterwards."""
    import psycopg

    schema = f"vidluxe_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlDatabase]:
    """One shared SQL database (the engine several stores create their tables in), on each backend."""
    db: SqlDatabase
    if request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "vidluxe.sqlite3")
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")
        db = PostgresDatabase(url, schema=schema)
    try:
        yield db
    finally:
        db.close()


# --------------------------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        service_unavailable("Redis", REDIS_URL, exc)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_namespace(redis_client: Any) -> Iterator[str]:
    """A namespace unique to one test; its keys are deleted afterwards."""
    namespace = f"vidluxe-test:{uuid.uuid4().hex}:"
    try:
        yield namespace
    finally:
        keys = list(redis_client.scan_iter(match=f"{namespace}*"))
        if keys:
            redis_client.delete(*keys)


@pytest.fixture(scope="session")
def upstash_rest(redis_client: Any) -> Iterator[Any]:
    """A loopback stand-in for Upstash's REST API over the real Redis (see upstash_rest_fake.py)."""
    from upstash_rest_fake import upstash_rest_server

    with upstash_rest_server(REDIS_URL) as server:
        yield server


@pytest.fixture(scope="session")
def supabase_database(postgres_url: str) -> Iterator[str]:
    """The DSN of a fresh database made Supabase-like (supabase_shim.py) with the migrations of
    infra/supabase/migrations applied, for the session; dropped afterwards."""
    from supabase_shim import apply_migrations, supabase_like_database

    with supabase_like_database(postgres_url) as dsn:
        apply_migrations(dsn)
        yield dsn


@pytest.fixture(scope="session")
def postgrest(supabase_database: str) -> Iterator[Any]:
    """A loopback stand-in for Supabase's REST API over the migrated database (see postgrest_fake.py)."""
    from postgrest_fake import postgrest_server

    with postgrest_server(supabase_database) as server:
        yield server


@pytest.fixture
def supabase_tables(supabase_database: str) -> str:
    """The migrated database with the task store's tables emptied (the contract suite's ids repeat)."""
    import psycopg

    with psycopg.connect(supabase_database, autocommit=True) as connection:
        # DELETE: much faster than TRUNCATE on tables this small.
        for table in ("transitions", "stage_runs", "cost_entries", "videos", "tasks"):
            connection.execute(f"DELETE FROM public.{table}")
    return supabase_database
