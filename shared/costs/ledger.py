"""The cost ledger: every recorded stage run is priced and its cost entries stored, beside the run.

Stages know nothing of prices. The runtime composes :class:`CostRecordingTaskStore` around its task
store (:meth:`shared.pipeline.runtime.Runtime.from_settings`): when a StageReport is recorded, the
ledger measures what the run left in the object store, prices the report (:mod:`shared.costs.pricing`)
and appends the entries; when a task succeeds, it prices the delivery of its outputs. The same wrapper
runs under ``vidluxe enhance``, ``vidluxe serve`` and the stage Lambdas.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import structlog

from shared.clock import Clock
from shared.costs.assumptions import CostAssumptions
from shared.costs.prices import DEFAULT_PRICES_DIR, PriceTable, select_price_table
from shared.costs.pricing import (
    DELIVERY_STAGE,
    Priced,
    StoredOutput,
    price_delivery,
    price_stage_run,
)
from shared.errors import NotFoundError
from shared.settings import Settings
from shared.storage.costs import CostStore, CostSummary
from shared.storage.objects import ObjectStore
from shared.storage.sql import SqlDatabase
from shared.storage.tasks import (
    StageReport,
    StageRunStatus,
    TaskRecord,
    TaskStatus,
    TaskStore,
    TransitionRecord,
)

log = structlog.get_logger("vidluxe.costs")


class CostLedger:
    """Prices runs with one price table and records the entries in ``store``."""

    def __init__(
        self,
        store: CostStore,
        prices: PriceTable,
        objects: ObjectStore,
        clock: Clock,
        *,
        assumptions: CostAssumptions | None = None,
        output_fields: Collection[str] = (),
    ) -> None:
        """``output_fields``: the fields of a task's output that name the objects delivered to its owner."""
        self.store = store
        self.prices = prices
        self.assumptions = assumptions or CostAssumptions()
        self._objects = objects
        self._clock = clock
        self._output_fields = tuple(output_fields)

    def record_stage_run(self, report: StageReport) -> Priced:
        """Price one stage run and store its entries (a reused run stores nothing new and is billed no
        storage). Raises the store's errors."""
        stored = self._stored(report) if report.status == StageRunStatus.SUCCEEDED else None
        priced = price_stage_run(report, self.prices, self.assumptions, stored=stored)
        self._warn_unpriced(report.task_id, report.stage, priced)
        self.store.record(priced.entries)
        return priced

    def record_delivery(self, task: TaskRecord) -> Priced:
        """Price the download of a succeeded task's outputs; recording it again replaces the figures."""
        output = task.output or {}
        sizes: list[int] = []
        for name in self._output_fields:
            key = output.get(name)
            if isinstance(key, str) and key:
                try:
                    sizes.append(self._objects.size(key))
                except NotFoundError:
                    log.warning("delivered output missing; not priced", task_id=task.task_id, key=key)
        priced = price_delivery(task.task_id, sizes, self.prices, self.assumptions, at=self._clock.now())
        self.store.replace_stage(task.task_id, DELIVERY_STAGE, priced.entries)
        return priced

    def summary(self, task_id: str) -> CostSummary:
        return self.store.summary(task_id)

    def cost_document(self, task_id: str) -> dict[str, Any]:
        """``{total_usd, by_stage, price_versions}``: VideoService's ``cost_source``."""
        return self.summary(task_id).model_dump(mode="json")

    def _stored(self, report: StageReport) -> StoredOutput:
        # Every output of a run is keyed under its prefix (StageContext.prefix); output.json included.
        prefix = f"tasks/{report.task_id}/{report.stage}/{report.input_hash[:16]}/"
        keys = self._objects.list_keys(prefix)
        total = 0
        for key in keys:
            try:
                total += self._objects.size(key)
            except NotFoundError:
                continue  # deleted meanwhile
        return StoredOutput(bytes=total, objects=len(keys))

    @staticmethod
    def _warn_unpriced(task_id: str, stage: str, priced: Priced) -> None:
        if priced.unpriced:
            log.warning(
                "usage without a price: add it to the price table",
                task_id=task_id,
                stage=stage,
                resources=priced.unpriced,
            )


def build_cost_ledger(
    settings: Settings, database: SqlDatabase, objects: ObjectStore, clock: Clock, *, output_fields: Collection[str]
) -> CostLedger | None:
    """The ledger the settings ask for, over ``database``; None when there is no price table to price with.

    The tables are read from VIDLUXE_PRICES_DIR, by default ``infra/prices`` of a source checkout. When
    that default directory is absent (an installed wheel carries no infra/), costs are not recorded and a
    warning says so. Raises ConfigurationError for a table that is invalid, a VIDLUXE_PRICE_VERSION that
    does not exist, or a VIDLUXE_PRICES_DIR without tables; the database driver's errors.
    """
    directory = settings.prices_dir or DEFAULT_PRICES_DIR
    if settings.prices_dir is None and settings.price_version is None and not _has_tables(directory):
        log.warning("no price table: per-video costs are not recorded (set VIDLUXE_PRICES_DIR)",
                    looked_in=str(directory))
        return None
    prices = select_price_table(directory, settings.price_version)
    return CostLedger(
        CostStore(database), prices, objects, clock, assumptions=settings.cost_assumptions, output_fields=output_fields
    )


def _has_tables(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("*.toml"))


class CostRecordingTaskStore:
    """A TaskStore that prices what it records: stage runs as they are recorded, the delivery when a task
    succeeds. Everything else is passed to the wrapped store unchanged.

    Pricing comes after the wrapped store's write and never fails it: a video is not failed (nor its
    task.completed event lost) because its cost could not be recorded; the error is logged instead.
    """

    def __init__(self, inner: TaskStore, ledger: CostLedger) -> None:
        self.inner = inner
        self.ledger = ledger

    def record_stage_run(self, report: StageReport) -> None:
        self.inner.record_stage_run(report)
        try:
            self.ledger.record_stage_run(report)
        except Exception:
            log.exception("stage run not priced", task_id=report.task_id, stage=report.stage)

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
        task = self.inner.update_task(
            task_id,
            status=status,
            current_stage=current_stage,
            output=output,
            error_code=error_code,
            error_message=error_message,
            clear_error=clear_error,
        )
        if status == TaskStatus.SUCCEEDED:
            try:
                self.ledger.record_delivery(task)
            except Exception:
                log.exception("delivery not priced", task_id=task_id)
        return task

    # -- the rest of TaskStore, unchanged

    def create_task(self, task: TaskRecord) -> TaskRecord:
        return self.inner.create_task(task)

    def get_task(self, task_id: str) -> TaskRecord:
        return self.inner.get_task(task_id)

    def list_tasks(self, *, limit: int = 50, status: TaskStatus | None = None) -> list[TaskRecord]:
        return self.inner.list_tasks(limit=limit, status=status)

    def update_status_if(
        self,
        task_id: str,
        *,
        expected: Collection[TaskStatus],
        status: TaskStatus,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> TaskRecord | None:
        return self.inner.update_status_if(
            task_id, expected=expected, status=status, error_code=error_code, error_message=error_message
        )

    def record_transition(self, transition: TransitionRecord) -> None:
        self.inner.record_transition(transition)

    def get_transition(self, task_id: str, position: str) -> TransitionRecord | None:
        return self.inner.get_transition(task_id, position)

    def list_transitions(self, task_id: str) -> list[TransitionRecord]:
        return self.inner.list_transitions(task_id)

    def list_stage_runs(self, task_id: str) -> list[StageReport]:
        return self.inner.list_stage_runs(task_id)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()
