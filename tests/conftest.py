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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The VIDLUXE_* variables of one task-store backend (and the home). PostgreSQL runs in a fresh schema
    (through the DSN's search_path, dropped afterwards), so tests never see each other's tasks."""
    env = {"VIDLUXE_HOME": str(tmp_path / "home"), "VIDLUXE_TASK_STORE": request.param}
    if request.param == "sqlite":
        yield env
        return
    import psycopg

    schema = f"test_backend_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("VIDLUXE_TEST_SKIP_SERVICES") == "1":
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        raise
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield {**env, "VIDLUXE_DATABASE_URL": f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"}
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
