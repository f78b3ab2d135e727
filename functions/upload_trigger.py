"""The upload-trigger Lambda: S3's object-created event for ``uploads/...`` starts the task's execution.

S3 delivers events at least once. Three guards make a repeat start nothing: powertools' idempotency
(one DynamoDB item per event record, keyed by bucket, key and S3's sequencer; ``VIDLUXE_IDEMPOTENCY_TABLE``)
answers a redelivered record with the first answer, marked as a replay; the task's status moves from
``awaiting_upload`` with a compare-and-set, so a second upload event of the task starts nothing; and the
execution's name is the task id, which Step Functions refuses to reuse. Without the table (local runs,
tests of the other two guards) every record goes straight to the service.

The notification is declared on the uploads bucket (infra/aws/storage.yml): ``s3:ObjectCreated:*``
filtered to the prefix ``<store prefix>uploads/``; an event from a bucket the store does not keep that
key in is ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from functions.observability import logger, metrics, tracer
from functions.service import cloud_services
from shared.service.videos import task_id_of_upload
from shared.storage.s3_objects import S3ObjectStore

IDEMPOTENCY_TABLE_VARIABLE = "VIDLUXE_IDEMPOTENCY_TABLE"
IDEMPOTENCY_EXPIRES_SECONDS = 24 * 3600  # S3 redelivers within minutes; the task's status guards after

Landing = Callable[..., dict[str, Any]]


def _land(record: dict[str, str]) -> dict[str, Any]:
    """``record``: bucket, key (in the store, prefix removed), sequencer. Returns whether it started the task."""
    return {"key": record["key"], "started": cloud_services().videos.upload_landed(record["key"])}


def _mark_replay(response: Any, idempotent_data: DataRecord) -> Any:
    """A redelivered record gets the first answer back; it started nothing this time."""
    return {**response, "started": False, "replay": True}


@cache
def _landing() -> tuple[Landing, IdempotencyConfig | None]:
    table = os.environ.get(IDEMPOTENCY_TABLE_VARIABLE)
    if not table:
        return _land, None
    config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_EXPIRES_SECONDS, response_hook=_mark_replay)
    persistence = DynamoDBPersistenceLayer(table_name=table)
    once: Landing = idempotent_function(data_keyword_argument="record", persistence_store=persistence, config=config)(
        _land
    )
    return once, config


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: Any) -> dict[str, Any]:
    """Returns the keys whose event started an execution, and those that started nothing."""
    objects = cloud_services().runtime.objects
    store = objects if isinstance(objects, S3ObjectStore) else None
    prefix = store.prefix if store is not None else ""
    land, config = _landing()
    if config is not None:
        config.register_lambda_context(context)  # an in-progress record expires with this invocation
    started: list[str] = []
    ignored: list[str] = []
    for record in event.records:
        key = unquote_plus(record.s3.get_object.key)  # S3 sends keys URL-encoded, spaces as '+'
        if prefix and key.startswith(prefix):
            key = key[len(prefix) :]
        if store is not None and record.s3.bucket.name != store.bucket_of(key):
            # Not where the store keeps that key (a notification wired to another bucket): no upload of ours.
            logger.warning("upload event from another bucket", extra={"bucket": record.s3.bucket.name, "key": key})
            ignored.append(key)
            continue
        task_id = task_id_of_upload(key)
        logger.append_keys(task_id=task_id)
        logger.set_correlation_id(task_id)
        tracer.put_annotation(key="task_id", value=task_id or "")
        landed = land(
            record={"bucket": record.s3.bucket.name, "key": key, "sequencer": record.s3.get_object.sequencer or ""}
        )
        (started if landed["started"] else ignored).append(key)
        logger.info("upload event", extra={"key": key, "started": landed["started"], "replay": "replay" in landed})
    metrics.add_metric(name="UploadsStarted", unit=MetricUnit.Count, value=len(started))
    metrics.add_metric(name="UploadsIgnored", unit=MetricUnit.Count, value=len(ignored))
    return {"started": started, "ignored": ignored}
