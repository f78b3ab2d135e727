"""What every GPU function shares: the object store, the Step Functions task token, idempotency.

A GPU stage is started by ``functions/gpu_dispatch.py`` with a Step Functions task token, or called
directly (``.remote()``) without one. :func:`run_reported` wraps its work:

* the output key is the commit point: when the object already exists (an earlier attempt finished,
  then the container was preempted before it reported), the work is not done again;
* :class:`TaskReporter` sends ``SendTaskHeartbeat`` while the work runs (throttled; the Task's
  ``HeartbeatSeconds`` fails it when they stop, e.g. when the container died) and ``SendTaskSuccess``
  with the result, or ``SendTaskFailure`` with the error's class name (what Retry/Catch match) and a
  JSON cause ``{"code", "message"}``, the same shape a failed Lambda stage gives.

With a token, a failure is reported and not raised: Step Functions' Retry decides about another try (with
a new token), and Modal's own ``retries`` are left for crashes and preemption, where nothing could report.
Without a token the exception propagates to the caller.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

HEARTBEAT_SECONDS = 30.0  # well under the Task's HeartbeatSeconds (see modal_apps/README.md)
CAUSE_LIMIT = 32_000  # SendTaskFailure's cause is at most 32,768 characters
ERROR_LIMIT = 256  # ... and its error at most 256
EXPIRED = ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist")  # nobody waits for this token any more


class TaskTokenExpired(Exception):
    """Step Functions no longer waits for this token (the Task timed out or the execution ended)."""


class TaskReporter:
    """Heartbeat, success and failure for one task token; with no token every call does nothing.

    ``client`` is a boto3 ``stepfunctions`` client (injected; tests pass a stubbed one). ``clock`` is a
    monotonic clock in seconds.
    """

    def __init__(self, client: Any, token: str | None, *, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.token = token
        self._every = HEARTBEAT_SECONDS if every is None else every
        self._clock = clock
        self._last: float | None = None

    def heartbeat(self) -> None:
        """Send a heartbeat unless one went out less than ``every`` seconds ago.

        Raises TaskTokenExpired when Step Functions answers TaskTimedOut or InvalidToken: nobody waits for
        the result any more, so the work should stop.
        """
        if self.token is None:
            return
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            return
        self._last = now
        self._send("send_task_heartbeat", taskToken=self.token)

    def succeed(self, output: dict[str, Any]) -> None:
        """Raises TaskTokenExpired when the task was already closed (a duplicate run reported first)."""
        if self.token is not None:
            self._send("send_task_success", taskToken=self.token, output=json.dumps(output))

    def _send(self, operation: str, **params: Any) -> None:
        try:
            getattr(self._client, operation)(**params)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in EXPIRED:
                raise TaskTokenExpired(f"Step Functions stopped waiting ({code}).") from exc
            raise

    def fail(self, exc: BaseException) -> None:
        if self.token is None:
            return
        code = getattr(exc, "code", None) or type(exc).__name__.upper()
        cause = json.dumps({"errorType": type(exc).__name__, "code": code, "message": str(exc)[:CAUSE_LIMIT - 200]})
        self._client.send_task_failure(taskToken=self.token, error=type(exc).__name__[:ERROR_LIMIT], cause=cause)


@dataclass(frozen=True)
class GpuEnvironment:
    """Clients a GPU function needs, built once at its edge from the container's environment (the Modal
    secret ``vidluxe-aws``): ``VIDLUXE_S3_BUCKET``, ``VIDLUXE_S3_UPLOADS_BUCKET`` and
    ``VIDLUXE_S3_OUTPUTS_BUCKET`` (where the stack keeps them apart), ``VIDLUXE_S3_PREFIX``,
    ``VIDLUXE_S3_ENDPOINT_URL`` (R2), ``VIDLUXE_S3_REGION``, AWS credentials; ``AWS_REGION`` for Step Functions."""

    objects: Any  # shared.storage.s3_objects.S3ObjectStore
    stepfunctions: Any  # boto3 stepfunctions client

    @classmethod
    def from_env(cls) -> GpuEnvironment:
        import boto3

        from shared.storage.s3_objects import S3ObjectStore

        bucket = os.environ.get("VIDLUXE_S3_BUCKET")
        if not bucket:
            raise RuntimeError("VIDLUXE_S3_BUCKET is not set: add it to the Modal secret vidluxe-aws.")
        s3 = boto3.client(
            "s3", endpoint_url=os.environ.get("VIDLUXE_S3_ENDPOINT_URL") or None,
            region_name=os.environ.get("VIDLUXE_S3_REGION") or os.environ.get("AWS_REGION") or None,
        )
        states = boto3.client("stepfunctions", region_name=os.environ.get("AWS_REGION") or None)
        objects = S3ObjectStore(
            s3, bucket, os.environ.get("VIDLUXE_S3_PREFIX", ""),
            uploads_bucket=os.environ.get("VIDLUXE_S3_UPLOADS_BUCKET"),
            outputs_bucket=os.environ.get("VIDLUXE_S3_OUTPUTS_BUCKET"),
        )
        return cls(objects, states)


def run_reported(
    reporter: TaskReporter,
    work: Callable[[TaskReporter], dict[str, Any]],
    *,
    done: Callable[[], dict[str, Any] | None],
) -> dict[str, Any]:
    """``done()`` (the stored result, if the output key exists) or ``work(reporter)``, reported.

    Returns the result; on failure with a token returns ``{"error": <class name>, "reported": True}``
    after SendTaskFailure; without a token the exception propagates.
    """
    try:
        reporter.heartbeat()
        result = done()
        result = work(reporter) if result is None else {**result, "reused": True}
    except TaskTokenExpired:
        if reporter.token is None:
            raise
        return {"error": "TaskTokenExpired", "reported": False}
    except Exception as exc:
        if reporter.token is None:
            raise
        reporter.fail(exc)
        return {"error": type(exc).__name__, "reported": True}
    try:
        reporter.succeed(result)
    except TaskTokenExpired:
        return {**result, "reported": False}  # another run of the same task reported first
    return result


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last may be shorter), for frames on their way to a GPU."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
