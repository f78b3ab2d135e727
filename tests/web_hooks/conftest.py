"""Fixtures for the webhook tests: a settable clock, a real HTTP receiver on loopback, PostgreSQL.

The receiver is a ThreadingHTTPServer on 127.0.0.1 that answers from a script (status, headers) and
records every request. PostgreSQL tests need the server at VIDLUXE_TEST_DATABASE_URL (default
127.0.0.1:5432, user postgres, db test); VIDLUXE_TEST_SKIP_SERVICES=1 turns its absence into skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from webhook_helpers import FakeClock, Receiver, make_handler, serve

POSTGRES_URL = os.environ.get("VIDLUXE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
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
