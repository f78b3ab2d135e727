"""The webhook-delivery Lambda: the outbox's due messages go out, as the delivery worker does in ``vidluxe serve``.

EventBridge invokes it every minute (serverless.yml), and the API, execution-events and stage Lambdas at
once after they committed an event (functions/webhook_wake.py). Each invocation runs the worker's passes
(:meth:`DeliveryWorker.deliver_due`) until one finds nothing due, or until the time left could not fit
another pass: one cut off by the Lambda's timeout would leave its messages claimed until their lease
ends, and a message sent but not recorded would go out twice. Invocations that overlap are safe, each
claim being a lease in the database (:meth:`WebhookOutbox.claim_due`); the function's reserved
concurrency keeps their number small. A retry that falls due later waits for the next invocation.

Its role reads the database secret from SSM and nothing else: no bucket, no state machine. Each call
emits ``WebhookAttempts`` and ``WebhooksDelivered``, and ``WebhookDeliveryOutOfTime`` when it stopped
with messages perhaps still due (namespace VidLuxe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.observability import configure_lambda_logging, logger, metrics, tracer
from functions.secrets import load_ssm_secrets
from shared.clock import SystemClock
from shared.settings import Settings
from shared.settings_service import ServiceSettings
from shared.storage.factory import build_database
from shared.storage.sql import SqlDatabase
from shared.storage.tenants import TenantStore
from web_hooks.delivery import Delivered, DeliveryWorker
from web_hooks.outbox import WebhookOutbox
from web_hooks.schedule import Outcome

# One round per pass (every claimed message sent at once), so a pass takes at most one delivery's timeouts.
BATCH_SIZE = 8
# Left after the last pass for recording its attempts and flushing the logs and metrics.
MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class DeliveryRun:
    attempts: list[Delivered]
    out_of_time: bool  # stopped because another pass might not have finished in time


@cache
def _database() -> SqlDatabase:
    """Once per container, the settings read after the secrets. Raises ConfigurationError for incomplete
    settings, botocore's errors when SSM refuses to hand over the secrets."""
    load_ssm_secrets()
    settings = Settings()
    configure_lambda_logging(settings)
    return build_database(settings, pool_size=2)


@cache
def _worker() -> DeliveryWorker:
    """Once per container: the database pool and the HTTP connections stay open for warm calls.

    Raises what :func:`_database` raises, and the database driver's errors."""
    database = _database()  # first: it loads the secrets the settings read
    service_settings, clock = ServiceSettings(), SystemClock()
    tenants = TenantStore(
        database, clock, rotation_grace=timedelta(seconds=service_settings.webhook_secret_grace_seconds)
    )
    return DeliveryWorker(
        WebhookOutbox(database, clock), tenants, clock,
        allow_private=service_settings.webhooks_allow_private, batch_size=BATCH_SIZE, concurrency=BATCH_SIZE,
    )


def deliver_while_time_lasts(worker: DeliveryWorker, remaining_millis: Callable[[], int]) -> DeliveryRun:
    """Passes until one finds nothing due, or until fewer milliseconds remain than the longest pass takes
    (plus :data:`MARGIN_SECONDS`). ``remaining_millis`` is the Lambda context's
    ``get_remaining_time_in_millis``. Raises the outbox's database errors."""
    needed = (worker.longest_pass_seconds + MARGIN_SECONDS) * 1000
    attempts: list[Delivered] = []
    while remaining_millis() >= needed:
        batch = worker.deliver_due()
        if not batch:
            return DeliveryRun(attempts, out_of_time=False)
        attempts.extend(batch)
    return DeliveryRun(attempts, out_of_time=True)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``event``: EventBridge's scheduled event or a wake-up's ``{}``; neither is read.
    Returns how many attempts were made, how many were delivered, and whether time ran out."""
    run = deliver_while_time_lasts(_worker(), context.get_remaining_time_in_millis)
    delivered = sum(1 for attempt in run.attempts if attempt.result.outcome is Outcome.DELIVERED)
    metrics.add_metric(name="WebhookAttempts", unit=MetricUnit.Count, value=len(run.attempts))
    metrics.add_metric(name="WebhooksDelivered", unit=MetricUnit.Count, value=delivered)
    if run.out_of_time:
        metrics.add_metric(name="WebhookDeliveryOutOfTime", unit=MetricUnit.Count, value=1)
    summary = {"attempts": len(run.attempts), "delivered": delivered, "out_of_time": run.out_of_time}
    logger.info("webhook delivery run", extra=summary)
    return summary
