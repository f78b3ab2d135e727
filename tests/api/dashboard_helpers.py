"""Seeding the cost dashboard's tests: tenant-owned videos and cost entries with known figures, written
directly through the stores of a running service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.cli.serve import LocalService
from shared.storage.costs import CostEntry
from shared.storage.tasks import TaskRecord, TaskStatus
from shared.storage.videos import VideoRecord

DAY0 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def seed_video(
    service: LocalService,
    tenant_id: str,
    task_id: str,
    *,
    day: int,
    status: TaskStatus,
    duration: float | None,
    costs: dict[str, float],
) -> None:
    """A video created on ``DAY0 + day`` days with one cost entry per stage in ``costs`` (stage -> USD,
    as CPU time at $0.0001 a second)."""
    assert service.services is not None
    services = service.services
    at = DAY0 + timedelta(days=day)
    output = {"duration_seconds": duration} if duration is not None else None
    services.runtime.tasks.create_task(
        TaskRecord(task_id=task_id, pipeline="enhance", status=status, output=output, created_at=at, updated_at=at)
    )
    services.videos.videos.create(
        VideoRecord(task_id=task_id, tenant_id=tenant_id, pipeline="enhance", request_hash="seeded",
                    upload_keys=[f"uploads/{task_id}/source.mp4"], content_type="video/mp4", max_bytes=1,
                    upload_expires_at=at, created_at=at)
    )
    assert services.runtime.costs is not None
    services.runtime.costs.store.record([
        CostEntry(task_id=task_id, stage=stage, run="0" * 16, provider="aws_lambda", resource="cpu_seconds",
                  quantity=usd / 0.0001, unit="CPU-second", unit_price_usd=0.0001, amount_usd=usd,
                  price_version="2026-11", recorded_at=at + timedelta(minutes=5))
        for stage, usd in costs.items()
    ])
