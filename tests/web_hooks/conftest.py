"""Fixtures for the webhook tests: a settable clock, a real HTTP receiver on loopback, PostgreSQL.

The receiver is a ThreadingHTTPServer on 127.0.0.1 that answers from a script (status, headers) and
records every request. PostgreSQL tests need the server at VIDLUXE_TEST_DATABASE_URL (default
127.0.0.1:5432, user postgres, db test); VIDLUXE_TEST_SKIP_SERVICES=1 turns its absence into skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from webhook_helpers import DatabaseFactory, FakeClock, QuietHTTPServer, Receiver, make_handler, serve

from shared.storage.sql import PostgresDatabase, SqlDatabase, SqliteDatabase

POSTGRES_URL = os.environ.get("VIDLUXE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = QuietHTTPServer(("127.0.0.1", 0), make_handler(state))
    yield from serve(state, server)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc})."
        if os.environ.get("VIDLUXE_TEST_SKIP_SERVICES") == "1":
            pytest.skip(message)
        pytest.fail(f"{message} Start it, or set VIDLUXE_TEST_SKIP_SERVICES=1 to skip these tests.")
    return POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema name for one test, dropped afterwards."""
    import psycopg

    schema = f"vidluxe_hooks_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# ------------------------------------------------------------------------------------- databases


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Opens a new connection to one database (a SQLite file, or a PostgreSQL schema) on each call:
    two calls are two "processes" sharing it. Every database opened is closed afterwards."""
    opened: list[SqlDatabase] = []
    if request.param == "sqlite":
        path = tmp_path / "tasks.sqlite3"

        def factory() -> SqlDatabase:
            opened.append(SqliteDatabase(path))
            return opened[-1]

    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")

        def factory() -> SqlDatabase:
            opened.append(PostgresDatabase(url, schema=schema))
            return opened[-1]

    try:
        yield factory
    finally:
        for database in opened:
            database.close()


@pytest.fixture
def database(open_database: DatabaseFactory) -> SqlDatabase:
    return open_database()
