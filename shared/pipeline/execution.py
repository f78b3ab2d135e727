"""Running a task: one execution of a pipeline's state machine on the embedded engine.

Every completed state is written to the task store (through :class:`TaskJournal`) before the next one
begins. Running a task again, after a crash or a failure, replays the recorded states instead of
executing them, so it continues from the last completed state and no finished stage is recomputed.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

import state_machines
from shared.asl import CompletedState, StateMachine, run_execution
from shared.errors import InvalidInputError, error_from_cause
from shared.pipeline.registry import StageRegistry
from shared.pipeline.runtime import Runtime
from shared.storage.tasks import TaskRecord, TaskStatus, TransitionRecord

log = structlog.get_logger("vidluxe.execution")


def new_task_id() -> str:
    # Also the execution name on Step Functions: at most 80 characters of [A-Za-z0-9_-].
    return f"tsk_{uuid.uuid4().hex}"


def execution_arn(pipeline: str, task_id: str) -> str:
    return f"arn:aws:states:local:000000000000:execution:{pipeline}:{task_id}"


def load_pipeline(pipeline: str, registry: StageRegistry) -> StateMachine:
    """Load and validate a shipped state machine; raises InvalidInputError for an unknown pipeline."""
    try:
        document = state_machines.definition(pipeline)
    except KeyError as exc:
        raise InvalidInputError(str(exc.args[0]), code="UNKNOWN_PIPELINE") from None
    machine = StateMachine.load(document)
    registry.validate(machine)
    return machine


def create_task(runtime: Runtime, pipeline: str, execution_input: dict[str, Any], task_id: str) -> TaskRecord:
    now = runtime.clock.now()
    return runtime.tasks.create_task(
        TaskRecord(task_id=task_id, pipeline=pipeline, input=execution_input, created_at=now, updated_at=now)
    )


class ExecutionCancelled(BaseException):
    """Raised at a state boundary when the task was cancelled: the execution stops there.

    A BaseException, so the engine's Retry/Catch never handle it and every branch stops.
    """


class ExecutionInterrupted(BaseException):
    """Raised at a state boundary when the process shuts down: the task stays running, to be resumed."""


class TaskJournal:
    """The engine's Journal over the task store: transitions are the crash-resume log.

    ``cancelled`` / ``interrupted``: when set, the next state to begin raises ExecutionCancelled /
    ExecutionInterrupted instead, so a running execution stops between states.
    """

    def __init__(
        self,
        runtime: Runtime,
        task_id: str,
        *,
        cancelled: threading.Event | None = None,
        interrupted: threading.Event | None = None,
    ):
        self._runtime = runtime
        self._task_id = task_id
        self._cancelled = cancelled
        self._interrupted = interrupted

    def lookup(self, position: str) -> CompletedState | None:
        record = self._runtime.tasks.get_transition(self._task_id, position)
        return None if record is None else CompletedState(output=record.output, next_state=record.next_state)

    def entered(self, position: str, state_name: str, state_type: str) -> None:
        if self._cancelled is not None and self._cancelled.is_set():
            raise ExecutionCancelled(self._task_id)
        if self._interrupted is not None and self._interrupted.is_set():
            raise ExecutionInterrupted(self._task_id)
        if state_type == "Task":
            self._runtime.tasks.update_task(self._task_id, current_stage=state_name)

    def record(
        self, position: str, state_name: str, state_type: str, output: Any, next_state: str | None
    ) -> None:
        self._runtime.tasks.record_transition(
            TransitionRecord(
                task_id=self._task_id,
                position=position,
                state_name=state_name,
                state_type=state_type,
                output=output,
                next_state=next_state,
                recorded_at=self._runtime.clock.now(),
            )
        )


def run_task(
    runtime: Runtime,
    registry: StageRegistry,
    task_id: str,
    *,
    cancelled: threading.Event | None = None,
    interrupted: threading.Event | None = None,
) -> TaskRecord:
    """Run a task's execution to its end, resuming from its journal; returns the final task record.

    A task that already succeeded is returned as it is. When ``cancelled`` is set, the execution stops
    before its next state and the task is recorded as cancelled (also if it is set by the time the
    execution ends). Raises NotFoundError for an unknown task, InvalidInputError (TASK_BUSY) when
    another process on this machine is running it right now, and ExecutionInterrupted when
    ``interrupted`` was set (the task stays running; running it again resumes it).
    """
    task = runtime.tasks.get_task(task_id)
    if task.status == TaskStatus.SUCCEEDED:
        return task
    machine = load_pipeline(task.pipeline, registry)
    with _exclusive(runtime.settings.home / "locks", task_id):
        if cancelled is not None and cancelled.is_set():
            return _cancelled(runtime, task_id)
        runtime.tasks.update_task(task_id, status=TaskStatus.RUNNING, clear_error=True)
        log.info("execution started", task_id=task_id, pipeline=task.pipeline)
        journal = TaskJournal(runtime, task_id, cancelled=cancelled, interrupted=interrupted)
        try:
            result = run_execution(
                machine,
                task.input,
                execution_id=execution_arn(task.pipeline, task_id),
                execution_name=task_id,
                state_machine_name=task.pipeline,
                invoke_task=registry.invoker(runtime),
                clock=runtime.clock,
                journal=journal,
                max_workers=runtime.settings.max_workers,
            )
        except ExecutionCancelled:
            return _cancelled(runtime, task_id)
        if cancelled is not None and cancelled.is_set():
            return _cancelled(runtime, task_id)
        if result.status == "SUCCEEDED":
            log.info("execution succeeded", task_id=task_id)
            return runtime.tasks.update_task(task_id, status=TaskStatus.SUCCEEDED, output=result.output)
        code, message = error_from_cause(result.error or "States.Runtime", result.cause)
        log.warning("execution failed", task_id=task_id, code=code, error=message)
        return runtime.tasks.update_task(task_id, status=TaskStatus.FAILED, error_code=code, error_message=message)


def _cancelled(runtime: Runtime, task_id: str) -> TaskRecord:
    log.info("execution cancelled", task_id=task_id)
    return runtime.tasks.update_task(task_id, status=TaskStatus.CANCELLED, clear_error=True)


@contextmanager
def _exclusive(lock_dir: Path, task_id: str) -> Iterator[None]:
    """Hold a per-task lock for this machine; the OS releases it if the process dies."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{task_id}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInputError(
                f"Task {task_id} is being run by another process; wait for it or stop it first.",
                code="TASK_BUSY",
            ) from None
        yield
    finally:
        os.close(fd)
