"""Fixtures every test folder may use."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("VIDLUXE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A DSN of the test PostgreSQL whose search_path is a fresh schema (dropped afterwards), so tests
    never see each other's rows. Skipped when PostgreSQL is down and VIDLUXE_TEST_SKIP_SERVICES=1."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("VIDLUXE_TEST_SKIP_SERVICES") == "1":
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        raise
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The VIDLUXE_* variables of one task-store backend (and the home); PostgreSQL in a fresh schema."""
    env = {"VIDLUXE_HOME": str(tmp_path / "home"), "VIDLUXE_TASK_STORE": request.param}
    if request.param == "postgres":
        env["VIDLUXE_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    return env
