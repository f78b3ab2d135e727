"""The cost ledger's store: priced cost entries per task and stage run, in the shared SQL database.

An entry is one billed resource of one stage run (or of a task's delivery): what was used (``quantity``
of ``unit``), at which ``unit_price_usd`` of which price table version, and the ``amount_usd``. Entries
are written once and never updated, so a later price table changes no recorded figure. The table
references the task store's ``tasks``: build the task store on the database first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.storage.sql import ReadPlan, SqlDatabase, Transaction, utc

_DDL = """
CREATE TABLE IF NOT EXISTS {cost_entries} (
    id {identity},
    task_id TEXT NOT NULL REFERENCES {tasks} (task_id),
    stage TEXT NOT NULL,
    run TEXT NOT NULL,
    provider TEXT NOT NULL,
    resource TEXT NOT NULL,
    quantity {float} NOT NULL,
    unit TEXT NOT NULL,
    unit_price_usd {float} NOT NULL,
    amount_usd {float} NOT NULL,
    price_version TEXT NOT NULL,
    recorded_at {timestamp} NOT NULL,
    day TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cost_entries_task_idx ON {cost_entries} (task_id, stage);
CREATE INDEX IF NOT EXISTS cost_entries_day_idx ON {cost_entries} (day)
"""

_COLUMNS = (
    "task_id, stage, run, provider, resource, quantity, unit, unit_price_usd, amount_usd, price_version, "
    "recorded_at"
)


class CostEntry(BaseModel):
    """One priced resource of one stage run: ``amount_usd = quantity * unit_price_usd``."""

    task_id: str
    stage: str = Field(description="The stage, or `delivery` for the download of the outputs.")
    run: str = Field(default="", description="Which run of the stage (its input hash prefix): a Map runs many.")
    provider: str = Field(description="Who bills it: a price table section (aws_lambda, modal...) or a model API.")
    resource: str = Field(description="cpu_seconds, lambda_gb_seconds, gpu_seconds:<type>, provider_call:<name>...")
    quantity: float
    unit: str
    unit_price_usd: float
    amount_usd: float
    price_version: str
    recorded_at: datetime


class CostSummary(BaseModel):
    """A task's cost so far: what ``GET /v1/videos/{id}`` and the task.completed webhook carry."""

    total_usd: float
    by_stage: dict[str, float] = Field(description="Stage -> USD, in the order the stages were first billed.")
    price_versions: list[str] = Field(description="The price tables the entries were priced with.")


def round_usd(value: float) -> float:
    """Dollars to the micro-dollar: finer is noise from summing floats."""
    return round(value, 6) + 0.0  # + 0.0 turns -0.0 into 0.0


class CostStore:
    """Cost entries over a (shared) :class:`SqlDatabase` that holds the task store's ``tasks`` table."""

    def __init__(self, database: SqlDatabase) -> None:
        """Create the table if missing; raises the driver's error if the database cannot be reached."""
        self._db = database
        self._entries = database.table("cost_entries")
        database.create_schema(_DDL)

    @property
    def database(self) -> SqlDatabase:
        return self._db

    def _insert(self, tx: Transaction, entries: Iterable[CostEntry]) -> None:
        for entry in entries:
            recorded_at = utc(entry.recorded_at)
            tx.execute(
                f"INSERT INTO {self._entries} ({_COLUMNS}, day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.task_id,
                    entry.stage,
                    entry.run,
                    entry.provider,
                    entry.resource,
                    entry.quantity,
                    entry.unit,
                    entry.unit_price_usd,
                    entry.amount_usd,
                    entry.price_version,
                    self._db.dump_timestamp(recorded_at),
                    recorded_at.date().isoformat(),
                ),
            )

    def record(self, entries: Sequence[CostEntry]) -> None:
        """Append ``entries`` in one transaction. Raises the driver's integrity error for an unknown task."""
        if not entries:
            return
        with self._db.transaction(write=True) as tx:
            self._insert(tx, entries)

    def replace_stage(self, task_id: str, stage: str, entries: Sequence[CostEntry]) -> None:
        """Make ``entries`` the only entries of ``(task_id, stage)``, atomically: for figures computed
        once per task (the delivery), so recording them again does not count them twice."""
        if any(entry.task_id != task_id or entry.stage != stage for entry in entries):
            raise ValueError(f"replace_stage({task_id!r}, {stage!r}) got an entry of another task or stage.")
        with self._db.transaction(write=True) as tx:
            tx.execute(f"DELETE FROM {self._entries} WHERE task_id = ? AND stage = ?", (task_id, stage))
            self._insert(tx, entries)

    def entries(self, task_id: str) -> list[CostEntry]:
        """The task's entries in the order they were recorded (none for an unknown task)."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query(f"SELECT {_COLUMNS} FROM {self._entries} WHERE task_id = ? ORDER BY id", (task_id,))
        return [self._from_row(row) for row in rows]

    def summary(self, task_id: str) -> CostSummary:
        """The task's total and per-stage cost (zero while nothing was billed). One indexed query."""
        return self._db.read(self.summary_plan(task_id))

    @property
    def entries_version_scalar(self) -> str:
        """A scalar subquery (``{task_id}``: the task id's column) whose value changes whenever the
        task's entries do: their count and highest id (ids only grow; a replacement deletes and
        inserts, a deletion alone lowers the count)."""
        return (
            f"(SELECT COUNT(*) || ':' || COALESCE(MAX(id), 0) FROM {self._entries} WHERE task_id = {{task_id}})"
        )

    def summary_plan(self, task_id: str) -> ReadPlan[CostSummary]:
        """:meth:`summary` as a read plan."""
        rows = yield (
            f"SELECT stage, price_version, SUM(amount_usd), MIN(id) FROM {self._entries} WHERE task_id = ? "
            "GROUP BY stage, price_version ORDER BY MIN(id)",
            (task_id,),
        )
        by_stage: dict[str, float] = {}
        for stage, _, amount, _ in rows:
            by_stage[str(stage)] = by_stage.get(str(stage), 0.0) + float(amount)
        return CostSummary(
            total_usd=round_usd(sum(by_stage.values())),
            by_stage={stage: round_usd(amount) for stage, amount in by_stage.items()},
            price_versions=sorted({str(row[1]) for row in rows}),
        )

    def _from_row(self, row: Sequence[Any]) -> CostEntry:
        return CostEntry(
            task_id=row[0],
            stage=row[1],
            run=row[2],
            provider=row[3],
            resource=row[4],
            quantity=row[5],
            unit=row[6],
            unit_price_usd=row[7],
            amount_usd=row[8],
            price_version=row[9],
            recorded_at=self._db.load_timestamp(row[10]),
        )
