"""The local runner of ``vidluxe serve``: task executions on a bounded pool of worker threads.

Each started task runs :func:`shared.pipeline.execution.run_task` (the embedded engine, resumable
from its journal) on one of ``workers`` threads; more tasks wait in the pool's queue. A task is
queued at most once at a time (its id names its execution). ``stop`` makes a queued or running task
stop before its next state (recorded as cancelled). ``shutdown`` interrupts running executions at
their next state boundary and leaves them ``running``; :meth:`recover` on the next start queues every
``pending`` or ``running`` task again, and the journal makes them continue where they stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from shared.errors import VidluxeError
from shared.pipeline.execution import ExecutionInterrupted, run_task
from shared.pipeline.registry import StageRegistry
from shared.pipeline.runtime import Runtime
from shared.storage.tasks import TaskRecord, TaskStatus

log = structlog.get_logger("vidluxe.runner")

TaskHook = Callable[[TaskRecord], None]


def _ignore(task: TaskRecord) -> None:
    return None


class LocalRunner:
    """Implements :class:`shared.service.executions.Executions` in this process."""

    def __init__(
        self,
        runtime: Runtime,
        registry: StageRegistry,
        *,
        workers: int,
        on_started: TaskHook = _ignore,
        on_finished: TaskHook = _ignore,
    ) -> None:
        """``on_started`` / ``on_finished`` are called in the worker thread with the task as it starts
        running / as it ended (succeeded, failed or cancelled); their errors are logged, not raised."""
        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}.")
        self._runtime = runtime
        self._registry = registry
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidluxe-runner")
        self._lock = threading.Lock()
        self._active: dict[str, threading.Event] = {}  # task id -> its cancel event, while queued or running
        self._futures: dict[str, Future[None]] = {}
        self._interrupted = threading.Event()
        self._on_started = on_started
        self._on_finished = on_finished
        self.workers = workers

    runs_callback_tasks = False  # the embedded engine: no Modal, nobody answers a task token

    def start(self, task: TaskRecord) -> bool:
        """Queue the task's execution; False if it is queued or running already, or the runner is shut down."""
        with self._lock:
            if task.task_id in self._active or self._interrupted.is_set():
                return False
            cancel = threading.Event()
            self._active[task.task_id] = cancel
            self._futures[task.task_id] = self._pool.submit(self._run, task.task_id, cancel)
        log.info("execution queued", task_id=task.task_id)
        return True

    def stop(self, task_id: str) -> None:
        with self._lock:
            cancel = self._active.get(task_id)
        if cancel is not None:
            cancel.set()

    def is_active(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._active

    def wait(self, task_id: str, timeout: float | None = None) -> None:
        """Block until the task's current execution ended (returns at once if none is queued)."""
        with self._lock:
            future = self._futures.get(task_id)
        if future is not None:
            future.result(timeout=timeout)

    def recover(self, *, limit: int = 10_000) -> list[str]:
        """Queue every pending or running task (left by a stopped or crashed server); their ids."""
        queued: list[str] = []
        for status in (TaskStatus.RUNNING, TaskStatus.PENDING):
            for task in reversed(self._runtime.tasks.list_tasks(limit=limit, status=status)):
                if self.start(task):
                    queued.append(task.task_id)
        return queued

    def shutdown(self, *, wait: bool = True) -> None:
        """Refuse new tasks, drop queued ones, and stop running ones at their next state (left running)."""
        self._interrupted.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _run(self, task_id: str, cancel: threading.Event) -> None:
        try:
            task = self._runtime.tasks.get_task(task_id)
            if task.status in (TaskStatus.CANCELLED, TaskStatus.SUCCEEDED) or cancel.is_set():
                return
            self._call(self._on_started, task)
            final = run_task(self._runtime, self._registry, task_id, cancelled=cancel, interrupted=self._interrupted)
            log.info("execution ended", task_id=task_id, status=final.status.value)
            self._call(self._on_finished, final)
        except ExecutionInterrupted:
            log.info("execution interrupted by shutdown; it resumes on the next start", task_id=task_id)
        except VidluxeError as exc:  # TASK_BUSY, an unknown pipeline: the task cannot run here now
            log.warning("execution not run", task_id=task_id, code=exc.code, error=exc.message)
        except Exception:
            log.exception("execution crashed", task_id=task_id)
        finally:
            with self._lock:
                self._active.pop(task_id, None)
                self._futures.pop(task_id, None)

    @staticmethod
    def _call(hook: TaskHook, task: TaskRecord) -> None:
        try:
            hook(task)
        except Exception:
            log.exception("runner hook failed", task_id=task.task_id)
