"""A tenant's cost reports (the dashboard's queries) on SQLite and PostgreSQL: only the tenant's videos,
filters by creation date and status, totals by stage, provider, resource and day, the costliest first."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.errors import NotFoundError
from shared.storage.cost_reports import CostFilter, CostReports
from shared.storage.costs import CostEntry, CostStore
from shared.storage.sql import SqlDatabase
from shared.storage.sql_tasks import SqlTaskStore
from shared.storage.tasks import TaskRecord, TaskStatus
from shared.storage.videos import VideoRecord, VideoStore

NOV = datetime(2026, 11, 1, tzinfo=UTC)



def seed(database: SqlDatabase, clock: Any) -> CostReports:
    """Tenant A: three videos on Nov 1, 2 and 3 (the second failed, no output); tenant B: one, costlier."""
    tasks, videos, costs = SqlTaskStore(database, clock), VideoStore(database), CostStore(database)

    def video(task_id: str, tenant: str, day: int, status: TaskStatus, duration: float | None) -> None:
        at = NOV + timedelta(days=day - 1, hours=12)
        output = None if duration is None else {"duration_seconds": duration, "final_key": "k"}
        tasks.create_task(TaskRecord(task_id=task_id, pipeline="enhance", status=status, output=output,
                                     created_at=at, updated_at=at))
        videos.create(VideoRecord(task_id=task_id, tenant_id=tenant, pipeline="enhance", request_hash="h",
                                  upload_keys=[], content_type="video/mp4", max_bytes=1, upload_expires_at=at,
                                  created_at=at))

    def cost(task_id: str, stage: str, provider: str, resource: str, amount: float, day: int) -> None:
        costs.record([CostEntry(task_id=task_id, stage=stage, provider=provider, resource=resource,
                                quantity=amount * 1000, unit="unit", unit_price_usd=0.001, amount_usd=amount,
                                price_version="2026-11", recorded_at=NOV + timedelta(days=day - 1, hours=13))])

    video("tsk_a1", "ten_a", 1, TaskStatus.SUCCEEDED, 30.0)
    video("tsk_a2", "ten_a", 2, TaskStatus.FAILED, None)
    video("tsk_a3", "ten_a", 3, TaskStatus.SUCCEEDED, 10.0)
    video("tsk_b1", "ten_b", 2, TaskStatus.SUCCEEDED, 20.0)
    cost("tsk_a1", "render_chunk", "aws_lambda", "cpu_seconds", 0.30, 1)
    cost("tsk_a1", "generate_assets", "replicate-flux", "provider_call:replicate-flux", 0.006, 1)
    cost("tsk_a1", "delivery", "aws_s3", "egress_gb", 0.004, 2)  # downloaded the next day
    cost("tsk_a2", "render_chunk", "aws_lambda", "cpu_seconds", 0.05, 2)
    cost("tsk_a3", "render_chunk", "aws_lambda", "cpu_seconds", 0.10, 3)
    cost("tsk_b1", "render_chunk", "modal", "gpu_seconds:T4", 9.99, 2)
    return CostReports(database)


def test_videos_newest_first_with_totals_and_cost_per_second(database: SqlDatabase, clock: Any) -> None:
    reports = seed(database, clock)
    videos = reports.videos("ten_a", CostFilter())
    assert [(v.task_id, v.total_usd) for v in videos] == [("tsk_a3", 0.1), ("tsk_a2", 0.05), ("tsk_a1", 0.31)]
    assert [v.status for v in videos] == [TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SUCCEEDED]
    assert [v.duration_seconds for v in videos] == [10.0, None, 30.0]
    assert [v.usd_per_second for v in videos] == [pytest.approx(0.01), None, pytest.approx(0.31 / 30)]
    assert videos[0].created_at == NOV + timedelta(days=2, hours=12)
    assert [v.task_id for v in reports.videos("ten_a", CostFilter(), limit=1)] == ["tsk_a3"]


def test_overview_breaks_the_total_down(database: SqlDatabase, clock: Any) -> None:
    overview = seed(database, clock).overview("ten_a", CostFilter())
    assert (overview.videos, overview.total_usd) == (3, 0.46)
    assert [(line.name, line.total_usd) for line in overview.by_stage] == [
        ("render_chunk", 0.45), ("generate_assets", 0.006), ("delivery", 0.004)]
    assert [(line.name, line.total_usd) for line in overview.by_provider] == [
        ("aws_lambda", 0.45), ("replicate-flux", 0.006), ("aws_s3", 0.004)]
    cpu = overview.by_resource[0]
    assert (cpu.name, cpu.quantity, cpu.unit, cpu.total_usd) == ("cpu_seconds", pytest.approx(450), "unit", 0.45)
    assert overview.daily == [(date(2026, 11, 1), 0.306), (date(2026, 11, 2), 0.054), (date(2026, 11, 3), 0.1)]


def test_filters_by_creation_day_and_status(database: SqlDatabase, clock: Any) -> None:
    reports = seed(database, clock)
    failed = CostFilter(statuses=(TaskStatus.FAILED,))
    assert [v.task_id for v in reports.videos("ten_a", failed)] == ["tsk_a2"]
    assert reports.overview("ten_a", failed).total_usd == 0.05
    first_two = CostFilter(since=NOV, until=NOV + timedelta(days=2))
    assert [v.task_id for v in reports.videos("ten_a", first_two)] == ["tsk_a2", "tsk_a1"]
    overview = reports.overview("ten_a", first_two)
    # a video's later costs (a delivery the next day) stay with it: the filter is on the video
    assert (overview.videos, overview.total_usd) == (2, 0.36)
    both = CostFilter(since=NOV + timedelta(days=1), statuses=(TaskStatus.SUCCEEDED, TaskStatus.FAILED))
    assert [v.task_id for v in reports.videos("ten_a", both)] == ["tsk_a3", "tsk_a2"]
    nothing = CostFilter(since=NOV + timedelta(days=30))
    assert reports.videos("ten_a", nothing) == [] and reports.overview("ten_a", nothing).daily == []
    assert reports.overview("ten_a", nothing).total_usd == 0


def test_most_expensive_first(database: SqlDatabase, clock: Any) -> None:
    reports = seed(database, clock)
    assert [v.task_id for v in reports.most_expensive("ten_a", CostFilter(), limit=2)] == ["tsk_a1", "tsk_a3"]


def test_another_tenants_videos_and_costs_are_never_read(database: SqlDatabase, clock: Any) -> None:
    reports = seed(database, clock)
    assert "tsk_b1" not in [v.task_id for v in reports.videos("ten_a", CostFilter())]
    assert "tsk_b1" not in [v.task_id for v in reports.most_expensive("ten_a", CostFilter())]
    assert all(line.name != "modal" for line in reports.overview("ten_a", CostFilter()).by_provider)
    assert reports.video("ten_b", "tsk_b1").total_usd == 9.99
    with pytest.raises(NotFoundError):
        reports.video("ten_a", "tsk_b1")
    with pytest.raises(NotFoundError):
        reports.video("ten_a", "tsk_missing")
    assert reports.overview("ten_nobody", CostFilter()).videos == 0
