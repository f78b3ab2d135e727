"""The runtime: the side-effect implementations one process works with, built once at the edge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from shared.clock import Clock, SystemClock
from shared.costs.ledger import CostLedger, CostRecordingTaskStore, build_cost_ledger
from shared.settings import Settings
from shared.storage.cache import Cache
from shared.storage.factory import build_cache, build_object_store, build_task_store
from shared.storage.objects import ObjectStore
from shared.storage.sql import SqlDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import TaskStore


class ProgressKind(StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True)
class ProgressEvent:
    task_id: str
    stage: str
    kind: ProgressKind
    fraction: float = 0.0  # 0..1 within the stage
    reused: bool = False
    unit: str = ""  # which run of the stage (its input hash): a Map runs one stage many times


ProgressSink = Callable[[ProgressEvent], None]


def _ignore_progress(event: ProgressEvent) -> None:
    return None


@dataclass
class Runtime:
    settings: Settings
    objects: ObjectStore
    tasks: TaskStore
    cache: Cache
    clock: Clock = field(default_factory=SystemClock)
    on_progress: ProgressSink = _ignore_progress
    costs: CostLedger | None = None  # prices every stage run ``tasks`` records (None: no price table)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Clock | None = None, database: SqlDatabase | None = None
    ) -> Runtime:
        """The configured stores; the task store over ``database`` when given (shared with other stores,
        closed by its owner, not by :meth:`close`).

        Where the task store is in a SQL database and a price table is found
        (:func:`shared.costs.ledger.build_cost_ledger`), it is wrapped so that every recorded stage run
        is priced into the cost ledger, in the same database. A task store without one (supabase, over
        HTTP) records no costs.
        """
        from shared.pipeline.report import DELIVERABLES  # here: the report module imports this one

        clock = clock or SystemClock()
        objects = build_object_store(settings)
        tasks = build_task_store(settings, clock, database=database)
        try:
            sql = database if database is not None else tasks.database if isinstance(tasks, SqlTaskStore) else None
            costs = None
            if sql is not None:
                costs = build_cost_ledger(settings, sql, objects, clock, output_fields=DELIVERABLES)
            cache = build_cache(settings, clock)
        except BaseException:
            tasks.close()
            raise
        return cls(
            settings=settings,
            objects=objects,
            tasks=tasks if costs is None else CostRecordingTaskStore(tasks, costs),
            cache=cache,
            clock=clock,
            costs=costs,
        )

    def close(self) -> None:
        self.tasks.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
