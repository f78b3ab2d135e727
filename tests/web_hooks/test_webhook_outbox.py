"""The outbox on both SQL backends: committed emits, durable across re-opening, leases, listing."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from webhook_helpers import DatabaseFactory, FakeClock

from shared.errors import InvalidInputError
from shared.storage.sql import SqlDatabase
from shared.storage.sql_tasks import SqlTaskStore
from web_hooks.errors import WebhookEndpointNotFoundError
from web_hooks.events import EventType, TaskEventSink, task_completed_data
from web_hooks.outbox import AttemptResult, MessageStatus, WebhookOutbox
from web_hooks.schedule import Outcome

URL = "https://hooks.example/vidluxe"


def emit(outbox: WebhookOutbox, task_id: str = "t1", *, tenant: str = "acme", url: str | None = URL) -> None:
    outbox.emit(tenant, task_id, url, EventType.TASK_COMPLETED, task_completed_data(task_id, outputs={}))


def test_the_outbox_is_a_task_event_sink(database: SqlDatabase, clock: FakeClock) -> None:
    sink: TaskEventSink = WebhookOutbox(database, clock)
    sink.emit("acme", "t1", URL, EventType.TASK_CREATED, {"task_id": "t1"})


def test_an_emitted_event_survives_reopening_the_database(open_database: DatabaseFactory, clock: FakeClock) -> None:
    first = open_database()
    emit(WebhookOutbox(first, clock))
    first.close()  # as if the process died right after emit returned
    outbox = WebhookOutbox(open_database(), clock)
    [delivery] = outbox.list_deliveries("acme").items
    assert (delivery.task_id, delivery.event_type, delivery.status) == ("t1", EventType.TASK_COMPLETED, "pending")
    [claimed] = outbox.claim_due(clock.now(), owner="w")
    body = json.loads(claimed.body)
    assert body["type"] == "task.completed" and body["data"]["task_id"] == "t1"
    assert claimed.message_id == delivery.message_id and claimed.message_id.startswith("msg_")


def test_no_url_no_message_and_a_dedupe_key_emits_once(database: SqlDatabase, clock: FakeClock) -> None:
    outbox = WebhookOutbox(database, clock)
    emit(outbox, url=None)
    for _ in range(2):
        outbox.emit("acme", "t1", URL, EventType.TASK_COMPLETED, {"task_id": "t1"}, dedupe_key="final")
    outbox.emit("acme", "t1", URL, EventType.TASK_STARTED, {"task_id": "t1"})
    outbox.emit("acme", "t1", URL, EventType.TASK_STARTED, {"task_id": "t1"})  # no key: two events
    types = [item.event_type for item in outbox.list_deliveries("acme").items]
    assert sorted(types) == ["task.completed", "task.started", "task.started"]


def test_the_outbox_shares_the_task_stores_database(database: SqlDatabase, clock: FakeClock) -> None:
    tasks = SqlTaskStore(database, clock)
    outbox = WebhookOutbox(database, clock)
    emit(outbox)
    assert tasks.list_tasks() == []
    assert len(outbox.list_deliveries("acme").items) == 1


def test_claims_are_leased_and_not_before_they_are_due(database: SqlDatabase, clock: FakeClock) -> None:
    outbox = WebhookOutbox(database, clock)
    emit(outbox)
    assert outbox.claim_due(clock.now() - timedelta(seconds=1), owner="a") == []
    [first] = outbox.claim_due(clock.now(), owner="a", lease_seconds=60)
    assert outbox.claim_due(clock.now() + timedelta(seconds=59), owner="b") == []
    [again] = outbox.claim_due(clock.now() + timedelta(seconds=60), owner="b")  # lease expired: a died
    assert again.message_id == first.message_id
    # a's late result is refused: b owns the message now
    late = AttemptResult(started_at=clock.now(), duration_seconds=0.1, outcome=Outcome.DELIVERED, status_code=200)
    assert outbox.record_attempt(first, late) is False
    assert outbox.record_attempt(again, late) is True
    [delivery] = outbox.list_deliveries("acme").items
    assert delivery.status == MessageStatus.DELIVERED and len(delivery.attempts) == 1
    assert outbox.claim_due(clock.now() + timedelta(days=1), owner="c") == []


def test_two_processes_claiming_at_once_never_share_a_message(open_database: DatabaseFactory, clock: FakeClock) -> None:
    outboxes = [WebhookOutbox(open_database(), clock) for _ in range(2)]
    for index in range(40):
        emit(outboxes[0], f"t{index}")
    claims: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def claim(worker: int) -> None:
        barrier.wait()
        while batch := outboxes[worker].claim_due(clock.now(), owner=f"w{worker}", limit=3):
            claims[worker].extend(message.message_id for message in batch)

    threads = [threading.Thread(target=claim, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(claims[0]) + len(claims[1]) == 40
    assert not set(claims[0]) & set(claims[1])


def test_retry_failure_and_disable_move_the_message(database: SqlDatabase, clock: FakeClock) -> None:
    outbox = WebhookOutbox(database, clock)
    emit(outbox, "t1")
    emit(outbox, "t2", url="https://other.example/h")
    first, second = outbox.claim_due(clock.now(), owner="w")
    later = clock.now() + timedelta(seconds=5)
    outbox.record_attempt(
        first,
        AttemptResult(clock.now(), 0.2, Outcome.RETRY, status_code=503, error="HTTP 503", next_attempt_at=later),
    )
    outbox.record_attempt(second, AttemptResult(clock.now(), 0.1, Outcome.GIVE_UP, status_code=400))
    by_task = {item.task_id: item for item in outbox.list_deliveries("acme").items}
    assert by_task["t1"].status == "pending" and by_task["t1"].next_attempt_at == later
    assert by_task["t1"].attempts[0].status_code == 503 and by_task["t1"].last_error == "HTTP 503"
    assert by_task["t2"].status == "failed" and by_task["t2"].next_attempt_at is None

    [retry] = outbox.claim_due(later, owner="w")
    outbox.record_attempt(retry, AttemptResult(later, 0.1, Outcome.DISABLE, status_code=410, next_attempt_at=later))
    emit(outbox, "t3")  # a new event for the disabled URL is recorded, and held
    assert outbox.claim_due(later + timedelta(days=1), owner="w") == []
    assert not outbox.get_endpoint("acme", URL).enabled
    assert all(item.held for item in outbox.list_deliveries("acme", status=MessageStatus.PENDING).items)

    assert outbox.enable_endpoint("acme", URL).enabled
    assert {message.task_id for message in outbox.claim_due(later + timedelta(seconds=1), owner="w")} == {"t1", "t3"}


def test_endpoints_are_per_tenant(database: SqlDatabase, clock: FakeClock) -> None:
    outbox = WebhookOutbox(database, clock)
    emit(outbox, tenant="acme")
    assert [endpoint.url for endpoint in outbox.list_endpoints("acme")] == [URL]
    assert outbox.list_endpoints("globex") == []
    with pytest.raises(WebhookEndpointNotFoundError):
        outbox.enable_endpoint("globex", URL)


def test_deliveries_are_listed_per_tenant_newest_first_with_a_cursor(database: SqlDatabase, clock: FakeClock) -> None:
    outbox = WebhookOutbox(database, clock)
    for index in range(5):
        emit(outbox, f"t{index}")
        clock.advance(1)
    emit(outbox, "theirs", tenant="globex")
    first = outbox.list_deliveries("acme", limit=2)
    assert [item.task_id for item in first.items] == ["t4", "t3"]
    second = outbox.list_deliveries("acme", limit=2, cursor=first.next_cursor)
    third = outbox.list_deliveries("acme", limit=2, cursor=second.next_cursor)
    assert [item.task_id for item in second.items + third.items] == ["t2", "t1", "t0"]
    assert third.next_cursor is None
    assert [item.task_id for item in outbox.list_deliveries("acme", task_id="t1").items] == ["t1"]
    assert outbox.get_delivery("globex", first.items[0].message_id) is None  # another tenant's
    assert outbox.get_delivery("acme", first.items[0].message_id) is not None
    with pytest.raises(InvalidInputError) as caught:
        outbox.list_deliveries("acme", cursor="not-a-cursor")
    assert caught.value.code == "INVALID_CURSOR"


def test_an_oversized_event_is_stored_under_20_kb(database: SqlDatabase, clock: FakeClock) -> None:
    outbox = WebhookOutbox(database, clock)
    outbox.emit("acme", "t1", URL, EventType.TASK_FAILED, {"task_id": "t1", "log": "x" * 100_000})
    [claimed] = outbox.claim_due(clock.now(), owner="w")
    assert len(claimed.body) <= 20 * 1024
    assert json.loads(claimed.body)["data"]["task_id"] == "t1"
