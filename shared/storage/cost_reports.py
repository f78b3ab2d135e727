"""A tenant's costs, read for the dashboard: per-video totals and breakdowns over a filter.

Read-only queries over the tables of three stores in the shared database: ``videos`` (which tenant
owns a task), ``tasks`` (status, output) and ``cost_entries``. Every query starts from the tenant's
videos, so another tenant's tasks and costs are never read. Build the task, video and cost stores on
the database first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from shared.errors import NotFoundError
from shared.storage.costs import round_usd
from shared.storage.sql import SqlDatabase, load_json
from shared.storage.tasks import TaskStatus


@dataclass(frozen=True)
class CostFilter:
    """Which of a tenant's videos: created in ``[since, until)`` (either open), with one of ``statuses``
    (empty: any)."""

    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[TaskStatus, ...] = ()


class VideoCost(BaseModel):
    task_id: str
    pipeline: str
    status: TaskStatus
    created_at: datetime
    duration_seconds: float | None  # of the output video, where the pipeline reports it (enhance)
    total_usd: float

    @property
    def usd_per_second(self) -> float | None:
        if not self.duration_seconds:
            return None
        return self.total_usd / self.duration_seconds


class CostLine(BaseModel):
    """One row of a breakdown: a stage, provider or resource, with its total (and quantity, for a resource)."""

    name: str
    total_usd: float
    quantity: float | None = None
    unit: str | None = None


class CostOverview(BaseModel):
    videos: int
    total_usd: float
    by_stage: list[CostLine]
    by_provider: list[CostLine]
    by_resource: list[CostLine]
    daily: list[tuple[date, float]]  # days with costs, oldest first (UTC)


class CostReports:
    def __init__(self, database: SqlDatabase) -> None:
        self._db = database
        self._videos = database.table("videos")
        self._tasks = database.table("tasks")
        self._entries = database.table("cost_entries")

    def _where(self, tenant_id: str, flt: CostFilter) -> tuple[str, list[Any]]:
        where = ["v.tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if flt.since is not None:
            where.append("v.created_at >= ?")
            params.append(self._db.dump_timestamp(flt.since))
        if flt.until is not None:
            where.append("v.created_at < ?")
            params.append(self._db.dump_timestamp(flt.until))
        if flt.statuses:
            where.append(f"t.status IN ({', '.join('?' for _ in flt.statuses)})")
            params += [TaskStatus(status).value for status in flt.statuses]
        return " AND ".join(where), params

    def _video_rows(self, where: str, params: Sequence[Any], order: str, limit: int) -> list[VideoCost]:
        sql = (
            f"SELECT t.task_id, t.pipeline, t.status, v.created_at, t.output, "
            f"(SELECT COALESCE(SUM(c.amount_usd), 0) FROM {self._entries} c WHERE c.task_id = v.task_id) AS total "
            f"FROM {self._videos} v JOIN {self._tasks} t ON t.task_id = v.task_id "
            f"WHERE {where} ORDER BY {order} LIMIT ?"
        )
        with self._db.transaction(write=False) as tx:
            rows = tx.query(sql, (*params, limit))
        return [self._video_from_row(row) for row in rows]

    def _video_from_row(self, row: Sequence[Any]) -> VideoCost:
        output = load_json(row[4]) or {}
        duration = output.get("duration_seconds") if isinstance(output, dict) else None
        return VideoCost(
            task_id=row[0],
            pipeline=row[1],
            status=TaskStatus(row[2]),
            created_at=self._db.load_timestamp(row[3]),
            duration_seconds=float(duration) if isinstance(duration, int | float) and duration > 0 else None,
            total_usd=round_usd(float(row[5])),
        )

    def videos(self, tenant_id: str, flt: CostFilter, *, limit: int = 100) -> list[VideoCost]:
        """The tenant's videos matching ``flt`` with their total cost, newest first."""
        where, params = self._where(tenant_id, flt)
        return self._video_rows(where, params, "v.created_at DESC, v.id DESC", limit)

    def most_expensive(self, tenant_id: str, flt: CostFilter, *, limit: int = 5) -> list[VideoCost]:
        """The videos matching ``flt`` that cost most (ties: the newest first); videos that cost nothing
        are left out."""
        where, params = self._where(tenant_id, flt)
        videos = self._video_rows(where, params, "total DESC, v.created_at DESC, v.id DESC", limit)
        return [video for video in videos if video.total_usd > 0]

    def video(self, tenant_id: str, task_id: str) -> VideoCost:
        """One of the tenant's videos. Raises NotFoundError for an unknown task or another tenant's."""
        videos = self._video_rows("v.tenant_id = ? AND v.task_id = ?", (tenant_id, task_id), "v.id", 1)
        if not videos:
            raise NotFoundError(f"No video with id {task_id!r}.")
        return videos[0]

    def overview(self, tenant_id: str, flt: CostFilter) -> CostOverview:
        """Totals over every video matching ``flt``: by stage, provider, resource and UTC day."""
        where, params = self._where(tenant_id, flt)
        scope = (
            f"FROM {self._entries} c JOIN {self._videos} v ON v.task_id = c.task_id "
            f"JOIN {self._tasks} t ON t.task_id = v.task_id WHERE {where}"
        )
        with self._db.transaction(write=False) as tx:
            count = tx.query(
                f"SELECT COUNT(*) FROM {self._videos} v JOIN {self._tasks} t ON t.task_id = v.task_id WHERE {where}",
                params,
            )[0][0]
            stages = tx.query(f"SELECT c.stage, SUM(c.amount_usd) {scope} GROUP BY c.stage", params)
            providers = tx.query(f"SELECT c.provider, SUM(c.amount_usd) {scope} GROUP BY c.provider", params)
            resources = tx.query(
                f"SELECT c.resource, c.unit, SUM(c.quantity), SUM(c.amount_usd) {scope} GROUP BY c.resource, c.unit",
                params,
            )
            days = tx.query(f"SELECT c.day, SUM(c.amount_usd) {scope} GROUP BY c.day ORDER BY c.day", params)
        return CostOverview(
            videos=int(count),
            total_usd=round_usd(sum(float(row[1]) for row in stages)),
            by_stage=_lines(CostLine(name=row[0], total_usd=round_usd(float(row[1]))) for row in stages),
            by_provider=_lines(CostLine(name=row[0], total_usd=round_usd(float(row[1]))) for row in providers),
            by_resource=_lines(
                CostLine(name=row[0], unit=row[1], quantity=float(row[2]), total_usd=round_usd(float(row[3])))
                for row in resources
            ),
            daily=[(date.fromisoformat(row[0]), round_usd(float(row[1]))) for row in days],
        )


def _lines(lines: Iterable[CostLine]) -> list[CostLine]:
    """Most expensive first (ties by name), so every breakdown reads the same way."""
    return sorted(lines, key=lambda line: (-line.total_usd, line.name))
