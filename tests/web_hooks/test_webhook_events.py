"""Event ids, the Standard Webhooks body, and payloads kept under 20 KB."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from web_hooks.events import (
    MAX_PAYLOAD_BYTES,
    EventType,
    WebhookEvent,
    derived_event_id,
    encode_body,
    fit_payload,
    new_event_id,
    task_completed_data,
    task_created_data,
    task_failed_data,
    task_stage_completed_data,
    task_started_data,
)

T = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_event_types_are_the_documented_names() -> None:
    assert [event.value for event in EventType] == [
        "task.created",
        "task.started",
        "task.stage_completed",
        "task.completed",
        "task.failed",
    ]


def test_ids_random_or_derived() -> None:
    assert new_event_id() != new_event_id()
    assert new_event_id().startswith("msg_") and len(new_event_id()) == 30
    derived = derived_event_id("acme", "t1", EventType.TASK_COMPLETED, "1")
    assert derived == derived_event_id("acme", "t1", EventType.TASK_COMPLETED, "1")
    assert derived != derived_event_id("globex", "t1", EventType.TASK_COMPLETED, "1")
    assert derived != derived_event_id("acme", "t1", EventType.TASK_FAILED, "1")
    WebhookEvent(id=derived, type=EventType.TASK_COMPLETED, timestamp=T, data={})  # a valid id


def test_body_is_the_standard_webhooks_envelope() -> None:
    event = WebhookEvent(id=new_event_id(), type=EventType.TASK_STARTED, timestamp=T, data={"task_id": "t1"})
    assert json.loads(event.body()) == {
        "type": "task.started",
        "timestamp": "2025-01-02T03:04:05.123456Z",
        "data": {"task_id": "t1"},
    }


def test_builders_carry_what_a_client_needs() -> None:
    assert task_created_data("t1", pipeline="enhance", status="awaiting_upload", created_at=T)["status"] == (
        "awaiting_upload"
    )
    assert task_started_data("t1", pipeline="enhance", started_at=T)["started_at"] == "2025-01-02T03:04:05.123456Z"
    assert task_stage_completed_data("t1", stage="Matte", progress=1.7)["progress"] == 1.0
    completed = task_completed_data("t1", outputs={"video": "https://x/v.mp4"}, cost={"total_usd": 0.4})
    assert completed["outputs"]["video"] == "https://x/v.mp4" and completed["cost"]["total_usd"] == 0.4
    failed = task_failed_data("t1", error_code="MEDIA_ERROR", error_message="bad", stage="Probe")
    assert failed["error_code"] == "MEDIA_ERROR" and failed["error"] == {"code": "MEDIA_ERROR", "message": "bad"}


@pytest.mark.parametrize(
    "data",
    [
        task_failed_data("t1", error_code="MEDIA_ERROR", error_message="x" * 100_000),
        task_completed_data("t1", outputs={f"o{i}": "https://x/" + "a" * 300 for i in range(200)}),
        task_created_data("t1", pipeline="enhance", status="pending", created_at=T, metadata={"k": "v" * 50_000}),
        {"task_id": "t1", "blob": ["y" * 100] * 1000},
    ],
)
def test_payloads_stay_under_20_kb_and_keep_their_identity(data: dict[str, object]) -> None:
    fitted = fit_payload(data)  # the builders have done it already; the outbox does it for any data
    body = encode_body(EventType.TASK_FAILED, T, fitted)
    assert len(body) <= MAX_PAYLOAD_BYTES
    assert json.loads(body)["data"]["task_id"] == "t1"
    assert "truncated" in fitted


def test_small_payloads_are_left_alone() -> None:
    data = {"task_id": "t1", "note": "é" * 100}
    assert fit_payload(data) == data
