"""The shared SQL engine: several stores over one database, DDL templates, timestamps, rollback."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.storage.sql import Rollback, SqlDatabase, SqliteDatabase, dump_json, load_json
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
