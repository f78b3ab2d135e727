"""The task store: tasks, their state-machine transitions, and stage runs.

The embedded backend is SQLite, the cloud backend PostgreSQL (Supabase's database); both share the
schema and behaviour in :mod:`shared.storage.sql_tasks`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field


class TaskStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"  # created by the API; its execution starts when the upload lands
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class TaskRecord(BaseModel):
    task_id: str
    pipeline: str
    status: TaskStatus = TaskStatus.PENDING
    input: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] | None = None
    current_stage: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime


class TransitionRecord(BaseModel):
    """One completed state of an execution, persisted before the next state begins.

    ``position`` identifies the state's visit uniquely within the execution (branch, map item and visit
    count included), so a resumed execution can replay it instead of running it again.
    """

    task_id: str
    seq: int = 0  # assigned by the store, in the order transitions were recorded
    position: str
    state_name: str
    state_type: str
    output: Any = None
    next_state: str | None = None
    recorded_at: datetime


class ResourceUsage(BaseModel):
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    gpu_type: str | None = None
    provider_calls: dict[str, int] = Field(default_factory=dict)


class StageRunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    REUSED = "reused"  # a finished output with the same input hash was found and returned
    FAILED = "failed"


class StageReport(BaseModel):
    """One run of one stage: what the cost ledger and report.json are built from."""

    task_id: str
    stage: str
    status: StageRunStatus
    attempt: int = 1
    started_at: datetime
    ended_at: datetime
    duration_seconds: float
    input_hash: str
    usage: ResourceUsage = Field(default_factory=ResourceUsage)
    error_code: str | None = None
    error_message: str | None = None


class TaskStore(Protocol):
    def create_task(self, task: TaskRecord) -> TaskRecord:
        """Insert ``task``; if the id exists already, return the stored task unchanged."""
        ...

    def get_task(self, task_id: str) -> TaskRecord:
        """Raises NotFoundError for an unknown id."""
        ...

    def list_tasks(self, *, limit: int = 50, status: TaskStatus | None = None) -> list[TaskRecord]:
        """Most recently created first."""
        ...

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
        """Set the given fields (None leaves a field as it is) and bump updated_at."""
        ...

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

        Atomic (compare-and-set): of concurrent callers expecting the same status, one wins. Returns
        the updated task, or None when its status was not expected. Raises NotFoundError for an
        unknown id.
        """
        ...

    def record_transition(self, transition: TransitionRecord) -> None:
        """Persist a completed state; recording the same (task_id, position) twice keeps the first."""
        ...

    def get_transition(self, task_id: str, position: str) -> TransitionRecord | None: ...

    def list_transitions(self, task_id: str) -> list[TransitionRecord]:
        """In the order they were recorded."""
        ...

    def record_stage_run(self, report: StageReport) -> None: ...

    def list_stage_runs(self, task_id: str) -> list[StageReport]:
        """In the order they started."""
        ...

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    def close(self) -> None: ...
