"""The task store over SQL: one implementation over a :class:`~shared.storage.sql.SqlDatabase`.

:class:`SqlTaskStore` works on any database (SQLite embedded, PostgreSQL cloud) and can share it with
other stores (tenants, the webhook outbox, costs). :class:`SqliteTaskStore` and
:class:`PostgresTaskStore` open a database of their own and close it with the store.

Every write is committed before the method returns, so a process killed right after a call loses
nothing; the store is safe to share between threads (see :mod:`shared.storage.sql`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import NotFoundError
from shared.storage.sql import (
    PostgresDatabase,
    ReadPlan,
    Rollback,
    SqlDatabase,
    SqliteDatabase,
    Transaction,
    dump_json,
    load_json,
    run_plan,
)
from shared.storage.tasks import (
    ResourceUsage,
    StageReport,
    StageRunStatus,
    TaskRecord,
    TaskStatus,
    TransitionRecord,
)

if TYPE_CHECKING:
    from shared.clock import Clock

# The task store's tables, a template for SqlDatabase.create_schema. ``tasks.last_seq`` is the last
# transition seq handed out.
_DDL = """
CREATE TABLE IF NOT EXISTS {tasks} (
    id {identity},
    task_id TEXT NOT NULL UNIQUE,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    input {json} NOT NULL,
    output {json},
    current_stage TEXT,
    error_code TEXT,
    error_message TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at {timestamp} NOT NULL,
    updated_at {timestamp} NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_created_at_idx ON {tasks} (created_at);
CREATE INDEX IF NOT EXISTS tasks_status_created_at_idx ON {tasks} (status, created_at);
CREATE TABLE IF NOT EXISTS {transitions} (
    task_id TEXT NOT NULL REFERENCES {tasks} (task_id),
    seq INTEGER NOT NULL,
    position TEXT NOT NULL,
    state_name TEXT NOT NULL,
    state_type TEXT NOT NULL,
    output {json} NOT NULL,
    next_state TEXT,
    recorded_at {timestamp} NOT NULL,
    PRIMARY KEY (task_id, position),
    UNIQUE (task_id, seq)
);
CREATE TABLE IF NOT EXISTS {stage_runs} (
    id {identity},
    task_id TEXT NOT NULL REFERENCES {tasks} (task_id),
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at {timestamp} NOT NULL,
    ended_at {timestamp} NOT NULL,
    duration_seconds {float} NOT NULL,
    input_hash TEXT NOT NULL,
    usage {json} NOT NULL,
    error_code TEXT,
    error_message TEXT
);
CREATE INDEX IF NOT EXISTS stage_runs_task_started_idx ON {stage_runs} (task_id, started_at)
"""

TASK_COLUMNS = (
    "task_id, pipeline, status, input, output, current_stage, error_code, error_message, "
    "created_at, updated_at"
)
"""The ``tasks`` columns :func:`task_from_row` reads, in its order (for stores that join ``tasks``)."""
_TRANSITION_COLUMNS = "task_id, seq, position, state_name, state_type, output, next_state, recorded_at"
_STAGE_RUN_COLUMNS = (
    "task_id, stage, status, attempt, started_at, ended_at, duration_seconds, input_hash, usage, "
    "error_code, error_message"
)


def task_from_row(database: SqlDatabase, row: Sequence[Any]) -> TaskRecord:
    """A task from the values of :data:`TASK_COLUMNS`."""
    return TaskRecord(
        task_id=row[0],
        pipeline=row[1],
        status=TaskStatus(row[2]),
        input=load_json(row[3]),
        output=load_json(row[4]),
        current_stage=row[5],
        error_code=row[6],
        error_message=row[7],
        created_at=database.load_timestamp(row[8]),
        updated_at=database.load_timestamp(row[9]),
    )


class SqlTaskStore:
    """The TaskStore over a SQL database, identical for every dialect.

    ``owns_database``: close the database with the store (a store sharing one with others does not).
    """

    def __init__(self, database: SqlDatabase, clock: Clock, *, owns_database: bool = False) -> None:
        """Create the tables if missing; raises the driver's error if the database cannot be reached."""
        self._db = database
        self._clock = clock
        self._owns_database = owns_database
        self._tasks = database.table("tasks")
        self._transitions = database.table("transitions")
        self._stage_runs = database.table("stage_runs")
        database.create_schema(_DDL)

    @property
    def database(self) -> SqlDatabase:
        return self._db

    def close(self) -> None:
        if self._owns_database:
            self._db.close()

    # -- rows

    def _task_from_row(self, row: Sequence[Any]) -> TaskRecord:
        return task_from_row(self._db, row)

    def _transition_from_row(self, row: Sequence[Any]) -> TransitionRecord:
        return TransitionRecord(
            task_id=row[0],
            seq=row[1],
            position=row[2],
            state_name=row[3],
            state_type=row[4],
            output=load_json(row[5]),
            next_state=row[6],
            recorded_at=self._db.load_timestamp(row[7]),
        )

    def _stage_run_from_row(self, row: Sequence[Any]) -> StageReport:
        return StageReport(
            task_id=row[0],
            stage=row[1],
            status=StageRunStatus(row[2]),
            attempt=row[3],
            started_at=self._db.load_timestamp(row[4]),
            ended_at=self._db.load_timestamp(row[5]),
            duration_seconds=row[6],
            input_hash=row[7],
            usage=ResourceUsage.model_validate(load_json(row[8])),
            error_code=row[9],
            error_message=row[10],
        )

    def _select_task(self, tx: Transaction, task_id: str) -> TaskRecord:
        rows = tx.query(f"SELECT {TASK_COLUMNS} FROM {self._tasks} WHERE task_id = ?", (task_id,))
        if not rows:
            raise NotFoundError(f"No task with id {task_id!r}.")
        return self._task_from_row(rows[0])

    def _require_task(self, tx: Transaction, task_id: str) -> None:
        if not tx.query(f"SELECT 1 FROM {self._tasks} WHERE task_id = ?", (task_id,)):
            raise NotFoundError(f"No task with id {task_id!r}.")

    # -- TaskStore

    def create_task(self, task: TaskRecord) -> TaskRecord:
        """Insert ``task``; if the id exists already, return the stored task unchanged."""
        data = task.model_dump(mode="json")
        with self._db.transaction(write=True) as tx:
            tx.execute(
                f"INSERT INTO {self._tasks} ({TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (task_id) DO NOTHING",
                (
                    task.task_id,
                    task.pipeline,
                    TaskStatus(task.status).value,
                    dump_json(data["input"]),
                    None if task.output is None else dump_json(data["output"]),
                    task.current_stage,
                    task.error_code,
                    task.error_message,
                    self._db.dump_timestamp(task.created_at),
                    self._db.dump_timestamp(task.updated_at),
                ),
            )
            return self._select_task(tx, task.task_id)

    def get_task(self, task_id: str) -> TaskRecord:
        """Raises NotFoundError for an unknown id."""
        with self._db.transaction(write=False) as tx:
            return self._select_task(tx, task_id)

    def list_tasks(self, *, limit: int = 50, status: TaskStatus | None = None) -> list[TaskRecord]:
        """Most recently created first (ties: most recently inserted first).

        Raises ValueError if ``limit`` < 0.
        """
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}.")
        where, params = "", []
        if status is not None:
            where, params = "WHERE status = ? ", [TaskStatus(status).value]
        sql = f"SELECT {TASK_COLUMNS} FROM {self._tasks} {where}ORDER BY created_at DESC, id DESC LIMIT ?"
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, (*params, limit))
        return [self._task_from_row(row) for row in rows]

    def update_task(
        self,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        current_stage: str | None = None,
        output: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        clear_error: bool = False,
    ) -> TaskRecord:
        """Set the given fields (None leaves a field as it is) and bump updated_at to the clock's now.

        ``clear_error`` sets error_code and error_message to NULL, except one given in the same call.
        Raises NotFoundError for an unknown id.
        """
        assignments: list[tuple[str, Any]] = [("updated_at", self._db.dump_timestamp(self._clock.now()))]
        if status is not None:
            assignments.append(("status", TaskStatus(status).value))
        if current_stage is not None:
            assignments.append(("current_stage", current_stage))
        if output is not None:
            assignments.append(("output", dump_json(output)))
        if error_code is not None or clear_error:
            assignments.append(("error_code", error_code))
        if error_message is not None or clear_error:
            assignments.append(("error_message", error_message))
        sets = ", ".join(f"{column} = ?" for column, _ in assignments)
        with self._db.transaction(write=True) as tx:
            changed = tx.execute(
                f"UPDATE {self._tasks} SET {sets} WHERE task_id = ?",
                (*(value for _, value in assignments), task_id),
            )
            if not changed:
                raise NotFoundError(f"No task with id {task_id!r}.")
            return self._select_task(tx, task_id)

    def update_status_if(
        self,
        task_id: str,
        *,
        expected: Collection[TaskStatus],
        status: TaskStatus,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> TaskRecord | None:
        """Set ``status`` (and bump updated_at) only if the task's status is one of ``expected``.

        One UPDATE ... WHERE status IN (...): of concurrent callers, one wins. ``error_code`` and
        ``error_message`` are set with it (NULL when not given). Returns the updated task, or None when
        its status was not expected. Raises NotFoundError for an unknown id.
        """
        wanted = [TaskStatus(s).value for s in expected]
        if not wanted:
            return None
        marks = ", ".join("?" for _ in wanted)
        with self._db.transaction(write=True) as tx:
            changed = tx.execute(
                f"UPDATE {self._tasks} SET status = ?, error_code = ?, error_message = ?, updated_at = ? "
                f"WHERE task_id = ? AND status IN ({marks})",
                (
                    TaskStatus(status).value,
                    error_code,
                    error_message,
                    self._db.dump_timestamp(self._clock.now()),
                    task_id,
                    *wanted,
                ),
            )
            task = self._select_task(tx, task_id)
        return task if changed else None

    def record_transition(self, transition: TransitionRecord) -> None:
        """Persist a completed state; recording the same (task_id, position) twice keeps the first.

        The store assigns ``seq`` (1, 2, 3, ... per task, in recording order; the given seq is ignored).
        Raises NotFoundError for an unknown task id.
        """
        output = dump_json(transition.model_dump(mode="json")["output"])
        try:
            with self._db.transaction(write=True) as tx:
                # Locks the task's row (PostgreSQL) or the database (SQLite): one recorder per task at a time.
                if not tx.execute(
                    f"UPDATE {self._tasks} SET last_seq = last_seq + 1 WHERE task_id = ?",
                    (transition.task_id,),
                ):
                    raise NotFoundError(f"No task with id {transition.task_id!r}.")
                seq = tx.query(f"SELECT last_seq FROM {self._tasks} WHERE task_id = ?", (transition.task_id,))
                inserted = tx.execute(
                    f"INSERT INTO {self._transitions} ({_TRANSITION_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, position) DO NOTHING",
                    (
                        transition.task_id,
                        seq[0][0],
                        transition.position,
                        transition.state_name,
                        transition.state_type,
                        output,
                        transition.next_state,
                        self._db.dump_timestamp(transition.recorded_at),
                    ),
                )
                if not inserted:
                    raise Rollback  # already recorded: give the seq back
        except Rollback:
            return

    def get_transition(self, task_id: str, position: str) -> TransitionRecord | None:
        """The transition at ``position``, or None if none was recorded.

        Raises NotFoundError for an unknown task id.
        """
        with self._db.transaction(write=False) as tx:
            self._require_task(tx, task_id)
            rows = tx.query(
                f"SELECT {_TRANSITION_COLUMNS} FROM {self._transitions} WHERE task_id = ? AND position = ?",
                (task_id, position),
            )
        return self._transition_from_row(rows[0]) if rows else None

    def list_transitions(self, task_id: str) -> list[TransitionRecord]:
        """In the order they were recorded. Raises NotFoundError for an unknown task id."""
        with self._db.transaction(write=False) as tx:
            self._require_task(tx, task_id)
            return run_plan(self.transitions_plan(task_id), tx.query)

    def transitions_plan(self, task_id: str) -> ReadPlan[list[TransitionRecord]]:
        """:meth:`list_transitions` as a read plan, for a task known to exist (an unknown one has none)."""
        rows = yield (
            f"SELECT {_TRANSITION_COLUMNS} FROM {self._transitions} WHERE task_id = ? ORDER BY seq",
            (task_id,),
        )
        return [self._transition_from_row(row) for row in rows]

    def first_run_started_plan(self, task_id: str) -> ReadPlan[datetime | None]:
        """When the task's earliest stage run started (None before its first): what the status's ETA
        needs of :meth:`list_stage_runs`, without reading every run."""
        rows = yield ("SELECT " + self.first_run_started_scalar.format(task_id="?"), (task_id,))
        return self.load_first_run_started(rows[0][0] if rows else None)

    @property
    def first_run_started_scalar(self) -> str:
        """:meth:`first_run_started_plan` as a scalar subquery for another query (``{task_id}``: the
        task id's column); its value goes through :meth:`load_first_run_started`."""
        return f"(SELECT MIN(started_at) FROM {self._stage_runs} WHERE task_id = {{task_id}})"

    def load_first_run_started(self, value: Any) -> datetime | None:
        return None if value is None else self._db.load_timestamp(value)

    def record_stage_run(self, report: StageReport) -> None:
        """Append one stage run. Raises NotFoundError for an unknown task id."""
        usage = dump_json(report.usage.model_dump(mode="json"))
        with self._db.transaction(write=True) as tx:
            self._require_task(tx, report.task_id)
            tx.execute(
                f"INSERT INTO {self._stage_runs} ({_STAGE_RUN_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report.task_id,
                    report.stage,
                    StageRunStatus(report.status).value,
                    report.attempt,
                    self._db.dump_timestamp(report.started_at),
                    self._db.dump_timestamp(report.ended_at),
                    report.duration_seconds,
                    report.input_hash,
                    usage,
                    report.error_code,
                    report.error_message,
                ),
            )

    def list_stage_runs(self, task_id: str) -> list[StageReport]:
        """In the order they started (ties: recording order). Raises NotFoundError for an unknown task id."""
        with self._db.transaction(write=False) as tx:
            self._require_task(tx, task_id)
            rows = tx.query(
                f"SELECT {_STAGE_RUN_COLUMNS} FROM {self._stage_runs} "
                "WHERE task_id = ? ORDER BY started_at, id",
                (task_id,),
            )
        return [self._stage_run_from_row(row) for row in rows]

    def ping(self) -> None:
        """Raise (the driver's error) if the database cannot be reached."""
        self._db.ping()

    def __enter__(self) -> SqlTaskStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SqliteTaskStore(SqlTaskStore):
    """The embedded task store in a SQLite file of its own (see :class:`SqliteDatabase`)."""

    def __init__(self, path: Path, clock: Clock, *, busy_timeout: float = 30.0) -> None:
        """Open (creating the file, its directory and the schema if missing).

        Raises OSError if the directory cannot be created, sqlite3.Error if the file is not a usable
        database.
        """
        database = SqliteDatabase(path, busy_timeout=busy_timeout)
        try:
            super().__init__(database, clock, owns_database=True)
        except BaseException:
            database.close()
            raise
        self._path = path

    @property
    def path(self) -> Path:
        return self._path


class PostgresTaskStore(SqlTaskStore):
    """The cloud task store on a PostgreSQL database of its own (see :class:`PostgresDatabase`)."""

    def __init__(
        self, dsn: str, clock: Clock, *, schema: str | None = None, pool_size: int = 4, prepared_statements: bool = True
    ) -> None:
        """Connect and create the schema if missing.

        Raises ValueError for a schema name outside ``[a-z_][a-z0-9_]*`` or a pool_size < 1, and
        psycopg.OperationalError if the database cannot be reached.
        """
        database = PostgresDatabase(dsn, schema=schema, pool_size=pool_size, prepared_statements=prepared_statements)
        try:
            super().__init__(database, clock, owns_database=True)
        except BaseException:
            database.close()
            raise
        self._schema = schema

    @property
    def schema(self) -> str | None:
        return self._schema
