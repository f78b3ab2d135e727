"""Waking the webhook-delivery Lambda once an event is in the outbox, so it goes out now rather than at the
delivery's next scheduled run (within a minute).

The Lambdas that report events (the API: task.created; the execution events: task.started, .completed and
.failed; the stages: task.stage_completed) report them through :class:`WakingEventSink`
(functions/service.py), which wakes the delivery after each event committed for a webhook URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.observability import logger
from web_hooks.events import EventType, TaskEventSink

WEBHOOK_DELIVERY_VARIABLE = "VIDLUXE_WEBHOOK_DELIVERY_FUNCTION"


@cache
def _lambda_client() -> Any:
    # A wake-up is worth a few seconds at most (the schedule is the fallback), not botocore's 60 s reads.
    return boto3.client("lambda", config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}))


def wake_webhook_delivery() -> None:
    """Invoke the webhook-delivery Lambda (``VIDLUXE_WEBHOOK_DELIVERY_FUNCTION``) without waiting for it.

    Why a separate function, invoked asynchronously, and not a delivery pass here: the caller stays short
    and never connects to a tenant's URL, and a slow endpoint cannot hold up an API answer, a stage or the
    next status change. The invoke returns as soon as Lambda has queued it; the outbox's claim lease makes
    that run and a scheduled one safe side by side. A wake-up that fails (throttled, refused) only leaves
    the message to the next scheduled run, within a minute, so it is logged and not raised: the event is
    committed already, and raising would fail the call that reported it (a 500 for a created video, a
    stage retried, an EventBridge event retried). Where no function is named (a local run) nothing is
    invoked.
    """
    name = os.environ.get(WEBHOOK_DELIVERY_VARIABLE)
    if not name:
        return
    try:
        _lambda_client().invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    except (BotoCoreError, ClientError) as exc:
        logger.warning("webhook delivery not woken", extra={"error": f"{type(exc).__name__}: {exc}"})


class WakingEventSink:
    """A :class:`~web_hooks.events.TaskEventSink` that wakes the webhook delivery after ``events`` (the
    outbox) committed an event."""

    def __init__(self, events: TaskEventSink) -> None:
        self._events = events

    def emit(
        self,
        tenant_id: str,
        task_id: str,
        webhook_url: str | None,
        event_type: EventType,
        data: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
    ) -> None:
        """``events.emit``, then a wake-up where there is a URL (without one the outbox records nothing). A
        repeat the outbox ignored (the same ``dedupe_key``) wakes it too: that run finds nothing new, one
        short invocation. Raises what ``events.emit`` raises, and then wakes nothing: nothing was recorded."""
        self._events.emit(tenant_id, task_id, webhook_url, event_type, data, dedupe_key=dedupe_key)
        if webhook_url:
            wake_webhook_delivery()
