"""The execution-events Lambda: Step Functions' status changes move the task, as ``run_task`` does locally.

EventBridge delivers "Step Functions Execution Status Change" for the VidLuxe state machines
(serverless.yml); the execution's name is the task id. RUNNING moves a pending task to running
(task.started); SUCCEEDED records the output (task.completed); FAILED and TIMED_OUT record the error
(task.failed); ABORTED (a cancel's StopExecution) records the task as cancelled. EventBridge delivers
at least once and in no guaranteed order, so every move is a compare-and-set from the statuses it may
follow: a repeated or late event changes nothing and reports nothing. The event a move reports wakes the
webhook-delivery Lambda (functions/webhook_wake.py), so it goes out now rather than at its next scheduled
run.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from functions.observability import logger, metrics, tracer
from functions.service import cloud_services
from shared.errors import error_from_cause
from shared.storage.tasks import TaskRecord, TaskStatus

_UNFINISHED = (TaskStatus.PENDING, TaskStatus.RUNNING)
_CODED_MESSAGE = re.compile(r"^(?P<code>[A-Z][A-Z0-9_]+): (?P<message>.*)$", re.DOTALL)


def task_error(error: str | None, cause: str | None) -> tuple[str, str]:
    """(code, message) of a failed execution. A Lambda's cause is ``{"errorType", "errorMessage"}`` where the
    runtime wrote ``str(exception)``, ``CODE: message`` for a VidluxeError; a States.* error keeps its name."""
    name = error or "States.Runtime"
    code, message = error_from_cause(name, cause)
    coded = _CODED_MESSAGE.match(message) if code == name else None  # no code field: look in the message
    if coded is not None:
        return coded["code"], coded["message"]
    return code, message


def _output(detail: dict[str, Any]) -> dict[str, Any]:
    """The execution's output; EventBridge leaves out one over 256 KB (``outputDetails.included``: false)."""
    text = detail.get("output")
    if text is None or not detail.get("outputDetails", {}).get("included", True):
        text = boto3.client("stepfunctions").describe_execution(executionArn=detail["executionArn"]).get("output")
    parsed = json.loads(text) if text else {}
    return parsed if isinstance(parsed, dict) else {"output": parsed}


def _move(detail: dict[str, Any]) -> TaskRecord | None:
    services = cloud_services()
    tasks, task_id, status = services.runtime.tasks, detail["name"], detail["status"]
    if status == "RUNNING":
        task = tasks.update_status_if(task_id, expected=[TaskStatus.PENDING], status=TaskStatus.RUNNING)
        if task is not None:
            services.videos.task_started(task)
        return task
    if status == "SUCCEEDED":
        if tasks.get_task(task_id).status not in _UNFINISHED:
            return None
        tasks.update_task(task_id, output=_output(detail))  # first: a retried event finds it recorded
        task = tasks.update_status_if(task_id, expected=_UNFINISHED, status=TaskStatus.SUCCEEDED)
        if task is not None:  # once more through update_task, whose cost ledger prices the delivery
            task = tasks.update_task(task_id, status=TaskStatus.SUCCEEDED, clear_error=True)
    elif status in ("FAILED", "TIMED_OUT"):
        code, message = task_error(detail.get("error"), detail.get("cause"))
        task = tasks.update_status_if(
            task_id, expected=_UNFINISHED, status=TaskStatus.FAILED, error_code=code, error_message=message
        )
    elif status == "ABORTED":
        task = tasks.update_status_if(task_id, expected=_UNFINISHED, status=TaskStatus.CANCELLED)
    else:  # PENDING_REDRIVE and any status added later
        return None
    if task is not None:
        services.videos.task_finished(task)
    return task


@logger.inject_lambda_context(correlation_id_path="detail.name")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: Any) -> dict[str, Any]:
    """Returns the task's id, the execution status, and whether the event moved the task."""
    detail: dict[str, Any] = dict(event.detail)
    logger.append_keys(task_id=detail["name"])
    moved = _move(detail) is not None
    metrics.add_dimension(name="status", value=str(detail["status"]))
    metrics.add_metric(name="ExecutionEvents", unit=MetricUnit.Count, value=1)
    logger.info("execution status", extra={"status": detail["status"], "moved": moved})
    return {"task_id": detail["name"], "status": detail["status"], "moved": moved}
