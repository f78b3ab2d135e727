"""The upload-trigger Lambda: S3's object-created event for ``uploads/...`` starts the task's execution.

S3 delivers events at least once; a repeated event finds the task no longer ``awaiting_upload`` (an
atomic compare-and-set) and starts nothing, and the execution's name is the task id in any case.
Wire it with an S3 notification on ``s3:ObjectCreated:*`` filtered to the prefix ``<store prefix>uploads/``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import structlog
from aws_lambda_powertools.utilities.data_classes import S3Event

from functions.service import cloud_services
from shared.storage.s3_objects import S3ObjectStore

log = structlog.get_logger("vidluxe.upload_trigger")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Returns the keys whose event started an execution, and those that started nothing."""
    services = cloud_services()
    objects = services.runtime.objects
    prefix = objects.prefix if isinstance(objects, S3ObjectStore) else ""
    started: list[str] = []
    ignored: list[str] = []
    for record in S3Event(event).records:
        key = unquote_plus(record.s3.get_object.key)  # S3 sends keys URL-encoded, spaces as '+'
        if prefix and key.startswith(prefix):
            key = key[len(prefix) :]
        (started if services.videos.upload_landed(key) else ignored).append(key)
    log.info("upload events", started=started, ignored=ignored)
    return {"started": started, "ignored": ignored}
