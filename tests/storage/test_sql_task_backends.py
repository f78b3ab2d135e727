"""What differs between the two SQL task-store backends: files and WAL, schemas, pooled connections."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from shared.storage.sql_tasks import PostgresTaskStore, SqliteTaskStore
from shared.storage.tasks import TaskRecord, TransitionRecord

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def task(task_id: str = "t1") -> TaskRecord:
    return TaskRecord(task_id=task_id, pipeline="p", created_at=T0, updated_at=T0)


def transition(task_id: str, position: str) -> TransitionRecord:
    return TransitionRecord(
        task_id=task_id, position=position, state_name="S", state_type="Task", recorded_at=T0
    )


# ------------------------------------------------------------------------------------------- SQLite


def test_sqlite_uses_wal_and_creates_its_directory(tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "a" / "b" / "tasks.sqlite3"
    with SqliteTaskStore(path, clock) as store:
        store.create_task(task())
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tasks", "transitions", "stage_runs"} <= tables


def test_sqlite_not_a_database(tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "tasks.sqlite3"
    path.write_bytes(b"this is not a database file" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        SqliteTaskStore(path, clock)


# --------------------------------------------------------------------------------------- PostgreSQL


@pytest.mark.parametrize(
    "schema", ["Upper", "has-dash", "1starts_with_digit", 'x"; DROP TABLE tasks; --', ""]
)
def test_postgres_rejects_unsafe_schema_names(schema: str, clock: Any) -> None:
    with pytest.raises(ValueError):
        PostgresTaskStore("postgresql://unused", clock, schema=schema)


@pytest.mark.postgres
def test_postgres_tables_live_in_the_schema_with_native_types(
    postgres_url: str, postgres_schema: str, clock: Any
) -> None:
    with PostgresTaskStore(postgres_url, clock, schema=postgres_schema) as store:
        store.create_task(task())
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s",
            (postgres_schema,),
        ).fetchall()
        public = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_name IN ('tasks', 'transitions', 'stage_runs')"
        ).fetchone()
    types = {(table, column): data_type for table, column, data_type in rows}
    assert types[("tasks", "input")] == "jsonb"
    assert types[("tasks", "created_at")] == "timestamp with time zone"
    assert types[("transitions", "output")] == "jsonb"
    assert types[("stage_runs", "duration_seconds")] == "double precision"
    assert public == (0,)


@pytest.mark.postgres
def test_postgres_without_schema_uses_the_search_path(
    postgres_url: str, postgres_schema: str, clock: Any
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{postgres_schema}"')
    dsn = f"{postgres_url}?options={quote(f'-csearch_path={postgres_schema}')}"
    with PostgresTaskStore(dsn, clock) as store:
        store.create_task(task())
        assert store.schema is None
    with PostgresTaskStore(postgres_url, clock, schema=postgres_schema) as same:
        assert same.get_task("t1").task_id == "t1"


@pytest.mark.postgres
def test_postgres_recovers_from_dropped_connections(
    postgres_url: str, postgres_schema: str, clock: Any
) -> None:
    """The server drops pooled connections (restart, idle timeout): the next call reconnects."""
    app = f"vidluxe_test_{uuid.uuid4().hex[:8]}"
    store = PostgresTaskStore(f"{postgres_url}?application_name={app}", clock, schema=postgres_schema)
    try:
        store.create_task(task())
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (app,),
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        assert store.get_task("t1").task_id == "t1"
        store.record_transition(transition("t1", "a"))
        assert [t.seq for t in store.list_transitions("t1")] == [1]
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_pool_bounds_connections(postgres_url: str, postgres_schema: str, clock: Any) -> None:
    app = f"vidluxe_test_{uuid.uuid4().hex[:8]}"
    store = PostgresTaskStore(
        f"{postgres_url}?application_name={app}", clock, schema=postgres_schema, pool_size=2
    )
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            while not stop.is_set():
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
                ).fetchone()
                peak = max(peak, row[0] if row else 0)

    try:
        store.create_task(task())
        watcher = threading.Thread(target=watch)
        watcher.start()

        def work(n: int) -> None:
            for i in range(10):
                store.record_transition(transition("t1", f"{n}/{i}"))

        workers = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stop.set()
        watcher.join()
        assert len(store.list_transitions("t1")) == 80
        assert 1 <= peak <= 2
    finally:
        stop.set()
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone()
    assert row == (0,)  # close() closed them all
