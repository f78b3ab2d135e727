"""The shared SQL engine: several stores over one database, DDL templates, timestamps, rollback."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.storage.sql import (
    PostgresDatabase,
    ReadPlan,
    Rollback,
    SqlDatabase,
    SqliteDatabase,
    dump_json,
    load_json,
)
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import TaskRecord

T0 = datetime(2025, 1, 1, tzinfo=UTC)

_NOTES_DDL = """
CREATE TABLE IF NOT EXISTS {notes} (
    id {identity},
    task_id TEXT NOT NULL REFERENCES {tasks} (task_id),
    body {json} NOT NULL,
    at {timestamp} NOT NULL,
    score {float} NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_task_idx ON {notes} (task_id)
"""



def test_stores_share_one_database_and_each_creates_its_tables(database: SqlDatabase, clock: Any) -> None:
    tasks = SqlTaskStore(database, clock)
    tasks.create_task(TaskRecord(task_id="t1", pipeline="p", created_at=T0, updated_at=T0))
    database.create_schema(_NOTES_DDL)
    database.create_schema(_NOTES_DDL)  # idempotent
    at = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=8)))
    with database.transaction(write=True) as tx:
        tx.execute(
            f"INSERT INTO {database.table('notes')} (task_id, body, at, score) VALUES (?, ?, ?, ?)",
            ("t1", dump_json({"a": [1, "é"]}), database.dump_timestamp(at), 0.5),
        )
    with database.transaction(write=False) as tx:
        rows = tx.query(f"SELECT body, at, score FROM {database.table('notes')}")
    assert load_json(rows[0][0]) == {"a": [1, "é"]}
    loaded = database.load_timestamp(rows[0][1])
    assert loaded == at and loaded.tzinfo == UTC
    assert rows[0][2] == 0.5

    tasks.close()  # a store over a shared database leaves it open
    database.ping()
    assert SqlTaskStore(database, clock).get_task("t1").task_id == "t1"


def test_a_raising_block_rolls_back(database: SqlDatabase, clock: Any) -> None:
    SqlTaskStore(database, clock)
    with pytest.raises(Rollback), database.transaction(write=True) as tx:
        tx.execute(
            f"INSERT INTO {database.table('tasks')} (task_id, pipeline, status, input, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ("t2", "p", "pending", "{}", database.dump_timestamp(T0), database.dump_timestamp(T0)),
        )
        raise Rollback
    with database.transaction(write=False) as tx:
        assert tx.query(f"SELECT count(*) FROM {database.table('tasks')}") == [(0,)]


def test_sqlite_foreign_keys_are_enforced(tmp_path: Path, clock: Any) -> None:
    with SqliteDatabase(tmp_path / "fk.sqlite3") as db:
        SqlTaskStore(db, clock)
        db.create_schema(_NOTES_DDL)
        with pytest.raises(sqlite3.IntegrityError), db.transaction(write=True) as tx:
            tx.execute(
                "INSERT INTO notes (task_id, body, at, score) VALUES (?, ?, ?, ?)",
                ("missing", "{}", db.dump_timestamp(T0), 1.0),
            )


def test_closed_database_refuses_transactions(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "c.sqlite3")
    db.close()
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):
        db.ping()


def _notes_plan(database: SqlDatabase, task_id: str) -> ReadPlan[tuple[int, list[float]]]:
    """Two dependent queries: the count decides whether the second one runs."""
    count = (yield (f"SELECT count(*) FROM {database.table('notes')} WHERE task_id = ?", (task_id,)))[0][0]
    if not count:
        return 0, []
    rows = yield (f"SELECT score FROM {database.table('notes')} WHERE task_id = ? ORDER BY score", (task_id,))
    return int(count), [row[0] for row in rows]


def _add_note(database: SqlDatabase, task_id: str, score: float) -> None:
    with database.transaction(write=True) as tx:
        tx.execute(
            f"INSERT INTO {database.table('notes')} (task_id, body, at, score) VALUES (?, ?, ?, ?)",
            (task_id, "{}", database.dump_timestamp(T0), score),
        )


def test_a_read_plan_answers_alike_from_a_thread_and_from_the_event_loop(database: SqlDatabase, clock: Any) -> None:
    tasks = SqlTaskStore(database, clock)
    tasks.create_task(TaskRecord(task_id="t1", pipeline="p", created_at=T0, updated_at=T0))
    database.create_schema(_NOTES_DDL)
    assert database.read(_notes_plan(database, "t1")) == (0, []) == asyncio.run(
        database.read_async(_notes_plan(database, "t1"))
    )
    _add_note(database, "t1", 2.5)
    _add_note(database, "t1", 0.5)

    async def twice() -> list[tuple[int, list[float]]]:
        # The second read on the same loop reuses what the first one opened.
        return [await database.read_async(_notes_plan(database, "t1")) for _ in range(2)]

    assert database.read(_notes_plan(database, "t1")) == (2, [0.5, 2.5])
    assert asyncio.run(twice()) == [(2, [0.5, 2.5])] * 2
    assert asyncio.run(twice()) == [(2, [0.5, 2.5])] * 2  # another event loop, its own connections
    with pytest.raises(ZeroDivisionError):
        asyncio.run(database.read_async(_failing_plan(database)))
    assert asyncio.run(database.read_async(_notes_plan(database, "t1"))) == (2, [0.5, 2.5])


def _failing_plan(database: SqlDatabase) -> ReadPlan[None]:
    yield (f"SELECT count(*) FROM {database.table('notes')}", ())
    raise ZeroDivisionError


def test_sqlite_loop_reads_neither_wait_for_nor_see_an_open_write(tmp_path: Path, clock: Any) -> None:
    with SqliteDatabase(tmp_path / "w.sqlite3", busy_timeout=5.0) as db:
        SqlTaskStore(db, clock).create_task(TaskRecord(task_id="t1", pipeline="p", created_at=T0, updated_at=T0))
        db.create_schema(_NOTES_DDL)
        _add_note(db, "t1", 1.0)
        with db.transaction(write=True) as tx:  # the writer holds the write lock (and the writers' connection)
            tx.execute(
                f"INSERT INTO {db.table('notes')} (task_id, body, at, score) VALUES (?, ?, ?, ?)",
                ("t1", "{}", db.dump_timestamp(T0), 2.0),
            )
            started = time.monotonic()
            assert asyncio.run(db.read_async(_notes_plan(db, "t1"))) == (1, [1.0])
            assert time.monotonic() - started < 1.0
        assert asyncio.run(db.read_async(_notes_plan(db, "t1"))) == (2, [1.0, 2.0])
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # the loop's connection only reads
            asyncio.run(db.read_async(_insert_plan(db)))
    with pytest.raises(sqlite3.ProgrammingError):
        asyncio.run(db.read_async(_notes_plan(db, "t1")))


def _insert_plan(database: SqlDatabase) -> ReadPlan[None]:
    yield (f"DELETE FROM {database.table('notes')}", ())


@pytest.mark.postgres
def test_postgres_loop_reads_replace_a_connection_the_server_dropped(
    postgres_url: str, postgres_schema: str, clock: Any
) -> None:
    import psycopg

    database = PostgresDatabase(postgres_url, schema=postgres_schema)
    try:
        SqlTaskStore(database, clock).create_task(TaskRecord(task_id="t1", pipeline="p", created_at=T0, updated_at=T0))
        database.create_schema(_NOTES_DDL)
        _add_note(database, "t1", 1.0)

        async def pid_then_read() -> tuple[int, tuple[int, list[float]], int]:
            first = await database.read_async(_backend_pid_plan())
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            await asyncio.sleep(0.2)
            read = await database.read_async(_notes_plan(database, "t1"))
            return first, read, await database.read_async(_backend_pid_plan())

        first, read, second = asyncio.run(pid_then_read())
        assert read == (1, [1.0]) and second != first
    finally:
        database.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(database.read_async(_backend_pid_plan()))


def _backend_pid_plan() -> ReadPlan[int]:
    rows = yield ("SELECT pg_backend_pid()", ())
    return int(rows[0][0])


@pytest.mark.postgres
@pytest.mark.parametrize("prepared", [True, False])
def test_postgres_prepares_repeated_queries_unless_told_not_to(postgres_url: str, prepared: bool) -> None:
    """A query run again and again is prepared on the server (planned once); not behind a
    transaction-mode pooler, which cannot carry prepared statements from one transaction to the next."""
    database = PostgresDatabase(postgres_url, pool_size=1, prepared_statements=prepared)
    try:

        async def poll_and_count() -> int:
            for _ in range(8):
                await database.read_async(_one_row())
            rows = await database.read_async(_prepared_count())
            return int(rows[0][0])

        async def both() -> tuple[int, int]:
            loop_count = await poll_and_count()
            with database.transaction(write=False) as tx:
                for _ in range(8):
                    tx.query("SELECT 1 + ?", (1,))
                thread_count = int(tx.query("SELECT count(*) FROM pg_prepared_statements")[0][0])
            return loop_count, thread_count

        loop_count, thread_count = asyncio.run(both())
        assert (loop_count >= 1, thread_count >= 1) == (prepared, prepared)
    finally:
        database.close()


def _one_row() -> Any:
    rows = yield ("SELECT 2 + ?", (2,))
    return rows


def _prepared_count() -> Any:
    rows = yield ("SELECT count(*) FROM pg_prepared_statements", ())
    return rows
