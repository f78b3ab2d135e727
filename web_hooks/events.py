"""What a client app receives: the event types, the event model, and small payloads.

A task's ``webhook_url`` receives that task's events. The body follows the Standard Webhooks payload
shape, ``{"type": ..., "timestamp": ..., "data": {...}}``; the event's ``id`` travels in the
``webhook-id`` header and stays the same across retries, so receivers can de-duplicate.

The runner (or the API) reports events through :class:`TaskEventSink`; the outbox implements it by
committing a row before ``emit`` returns, so an event is never lost to a crash.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field, field_validator

MAX_PAYLOAD_BYTES = 20 * 1024
"""A delivered body is never larger than this (the spec asks for payloads under 20 KB)."""

_TRUNCATED_STRING = 512
# Fields kept even when a payload has to be shrunk: what a receiver needs to act on the event.
_ESSENTIAL_FIELDS = ("task_id", "status", "stage", "error_code", "pipeline")


class EventType(StrEnum):
    TASK_CREATED = "task.created"
    TASK_STARTED = "task.started"
    TASK_STAGE_COMPLETED = "task.stage_completed"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"


class WebhookEvent(BaseModel):
    """One event; ``id`` is the ``webhook-id`` header, identical on every retry of its delivery."""

    id: str = Field(pattern=r"^msg_[A-Za-z0-9]+$")
    type: EventType
    timestamp: datetime
    data: dict[str, Any]

    @field_validator("timestamp")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def body(self) -> bytes:
        """The exact bytes POSTed (and signed): compact JSON, at most :data:`MAX_PAYLOAD_BYTES`."""
        return encode_body(self.type, self.timestamp, self.data)


def encode_body(event_type: EventType, timestamp: datetime, data: Mapping[str, Any]) -> bytes:
    document = {
        "type": EventType(event_type).value,
        "timestamp": timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": dict(data),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def new_event_id() -> str:
    """A random id: ``msg_`` and 26 base32 characters (130 bits)."""
    return "msg_" + _base32(secrets.token_bytes(17))


def derived_event_id(tenant_id: str, task_id: str, event_type: EventType, dedupe_key: str) -> str:
    """The same id for the same (tenant, task, type, key): emitting it again is a no-op in the outbox.

    Use it for events that happen once per key (``task.completed``; ``task.stage_completed`` keyed by
    the state's position), so a resumed execution that reports an event again does not deliver it twice.
    """
    material = "\x00".join((tenant_id, task_id, EventType(event_type).value, dedupe_key)).encode()
    return "msg_" + _base32(hashlib.sha256(material).digest()[:17])


def _base32(raw: bytes) -> str:
    import base64

    return base64.b32encode(raw).decode().rstrip("=").lower()[:26]


# ---------------------------------------------------------------------------------------- protocols


class TaskEventSink(Protocol):
    """Where the service reports a task's events. The outbox implements it (a committed insert)."""

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
        """Record the event for delivery to ``webhook_url``; no URL means nothing to deliver.

        ``dedupe_key`` makes the event id derived (see :func:`derived_event_id`): a second emit with
        the same key is ignored. Raises the store's error if the event could not be committed.
        """
        ...


class SigningSecrets(Protocol):
    """A tenant's valid ``whsec_`` secrets (the tenants store implements it)."""

    def signing_secrets(self, tenant_id: str) -> list[str]:
        """The current secret first, then any previous one still in its rotation grace period.

        An unknown tenant or one without a secret gives an empty list (the delivery then waits).
        """
        ...


# ----------------------------------------------------------------------------------------- payloads


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def task_created_data(
    task_id: str, *, pipeline: str, status: str, created_at: datetime, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return fit_payload(
        {
            "task_id": task_id,
            "pipeline": pipeline,
            "status": status,
            "created_at": _iso(created_at),
            "metadata": dict(metadata or {}),
        }
    )


def task_started_data(task_id: str, *, pipeline: str, started_at: datetime) -> dict[str, Any]:
    return fit_payload({"task_id": task_id, "pipeline": pipeline, "status": "running", "started_at": _iso(started_at)})


def task_stage_completed_data(
    task_id: str, *, stage: str, progress: float | None = None, duration_seconds: float | None = None
) -> dict[str, Any]:
    return fit_payload(
        {
            "task_id": task_id,
            "stage": stage,
            "progress": None if progress is None else round(min(max(progress, 0.0), 1.0), 4),
            "duration_seconds": None if duration_seconds is None else round(duration_seconds, 3),
        }
    )


def task_completed_data(
    task_id: str,
    *,
    outputs: Mapping[str, str],
    cost: Mapping[str, Any] | None = None,
    completed_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``outputs``: name -> (signed) download URL; ``cost``: ``{total_usd, by_stage}``."""
    return fit_payload(
        {
            "task_id": task_id,
            "status": "completed",
            "outputs": dict(outputs),
            "cost": dict(cost or {}),
            "completed_at": _iso(completed_at),
            "metadata": dict(metadata or {}),
        }
    )


def task_failed_data(
    task_id: str,
    *,
    error_code: str,
    error_message: str,
    stage: str | None = None,
    failed_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return fit_payload(
        {
            "task_id": task_id,
            "status": "failed",
            "stage": stage,
            "error": {"code": error_code, "message": error_message},
            "error_code": error_code,
            "failed_at": _iso(failed_at),
            "metadata": dict(metadata or {}),
        }
    )


def fit_payload(data: Mapping[str, Any], *, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """``data`` made small enough that the whole body stays under ``max_bytes``.

    First long strings are cut to 512 characters; then the largest non-essential top-level fields are
    dropped (their names listed under ``"truncated"``). Identity fields (task_id, status, stage,
    error_code, pipeline) are always kept.
    """
    budget = max_bytes - 256  # room for the envelope (type, timestamp) and the "truncated" marker
    result: dict[str, Any] = dict(data)
    if _size(result) <= budget:
        return result
    result = {key: _cut_strings(value) for key, value in result.items()}
    dropped: list[str] = []
    while _size(result) > budget:
        candidates = [key for key in result if key not in _ESSENTIAL_FIELDS]
        if not candidates:
            break
        largest = max(candidates, key=lambda key: _size(result[key]))
        del result[largest]
        dropped.append(largest)
    result["truncated"] = sorted(dropped) if dropped else True
    return result


def _cut_strings(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _TRUNCATED_STRING else value[: _TRUNCATED_STRING - 1] + "…"
    if isinstance(value, Mapping):
        return {key: _cut_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cut_strings(item) for item in value]
    return value


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
