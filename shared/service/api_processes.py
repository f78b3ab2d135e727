"""API processes beside the serving one (``vidluxe serve --api-processes N``): how their starts and
cancels reach the runner.

One Python process answers HTTP on one core. With N API processes the serving process runs the
runner and webhook delivery and N children share its listening socket, each with the whole API over
the same database, object store and signing key. Only executions live in one place: a child's
:class:`ForwardedExecutions` writes each start and stop as a line on a pipe the serving process
reads (:class:`ExecutionRequests`), so an upload landing or a cancel in any child acts on the one
runner at once. A line that never arrives (the serving process died) leaves its task ``pending``,
and the runner's start-up recovery queues it again.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

import structlog

from shared.errors import NotFoundError
from shared.storage.tasks import TaskRecord, TaskStore

log = structlog.get_logger("vidluxe.api_processes")

_VERBS = ("start", "stop")


class _Runner(Protocol):
    def start(self, task: TaskRecord) -> bool: ...

    def stop(self, task_id: str) -> None: ...


class ForwardedExecutions:
    """:class:`shared.service.executions.Executions` of an API process: asks the serving process's
    runner over the pipe ``fd``. A start reports True: the caller's compare-and-set on the task's
    status already made sure it is asked once."""

    runs_callback_tasks = False  # the runner it forwards to is the embedded engine

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def start(self, task: TaskRecord) -> bool:
        self._send("start", task.task_id)
        return True

    def stop(self, task_id: str) -> None:
        self._send("stop", task_id)

    def _send(self, verb: str, task_id: str) -> None:
        # One write of well under PIPE_BUF bytes: atomic, so lines from several children never interleave.
        os.write(self._fd, f"{verb} {task_id}\n".encode())


class ExecutionRequests:
    """Reads the API processes' lines from the pipe ``fd`` on a thread and acts on ``runner``."""

    def __init__(self, fd: int, runner: _Runner, tasks: TaskStore) -> None:
        self._file = os.fdopen(fd, "rb", buffering=0)
        self._runner = runner
        self._tasks = tasks
        self._thread = threading.Thread(target=self._run, name="vidluxe-execution-requests", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def handle(self, line: bytes) -> None:
        """Act on one line (``start tsk_...`` or ``stop tsk_...``); anything else is logged and dropped."""
        verb, _, task_id = line.decode(errors="replace").strip().partition(" ")
        if verb not in _VERBS or not task_id.startswith("tsk_"):
            log.warning("unknown execution request dropped", request=line[:200])
            return
        if verb == "stop":
            self._runner.stop(task_id)
            return
        try:
            task = self._tasks.get_task(task_id)
        except NotFoundError:
            log.warning("execution requested for an unknown task", task_id=task_id)
            return
        self._runner.start(task)

    def _run(self) -> None:
        # Ends when every write end is closed: the children and this process's own copy.
        for line in iter(self._file.readline, b""):
            try:
                self.handle(line)
            except Exception:  # the database may be down for a moment: the task stays pending (recovered)
                log.exception("execution request failed", request=line[:200])

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._file.close()
