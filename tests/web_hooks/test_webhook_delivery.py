"""Delivery end to end: outbox -> worker -> a real HTTP receiver on loopback that verifies signatures.

The receiver checks every request with the reference ``standardwebhooks`` verifier, which compares the
webhook-timestamp with the real time (5 minutes' tolerance): the fake clock therefore starts a little
in the past, so attempts spread over the first minutes of the schedule all stay within it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks.webhooks import Webhook
from webhook_helpers import DatabaseFactory, FakeClock, Receiver, StaticSecrets

from shared.storage.sql import SqlDatabase
from web_hooks.delivery import DeliveryWorker
from web_hooks.events import EventType, task_completed_data
from web_hooks.outbox import MessageStatus, WebhookOutbox
from web_hooks.schedule import Outcome, RetryPolicy
from web_hooks.signing import generate_secret

SECRET = generate_secret()
TENANT = "acme"


@pytest.fixture
def past_clock() -> FakeClock:
    return FakeClock(datetime.now(UTC) - timedelta(seconds=150))


@pytest.fixture
def outbox(database: SqlDatabase, past_clock: FakeClock) -> WebhookOutbox:
    return WebhookOutbox(database, past_clock)


def make_worker(outbox: WebhookOutbox, clock: FakeClock, **options: object) -> DeliveryWorker:
    settings: dict[str, object] = {"allow_private": True, "policy": RetryPolicy(jitter=0)}
    settings.update(options)
    secrets = settings.pop("secrets", StaticSecrets({TENANT: [SECRET]}))
    return DeliveryWorker(outbox, secrets, clock, **settings)  # type: ignore[arg-type]


@pytest.fixture
def worker(outbox: WebhookOutbox, past_clock: FakeClock) -> Iterator[DeliveryWorker]:
    with make_worker(outbox, past_clock) as delivery:
        yield delivery


def emit(outbox: WebhookOutbox, url: str, task_id: str = "t1") -> None:
    data = task_completed_data(task_id, outputs={"video": "https://cdn.example/v.mp4"}, cost={"total_usd": 0.12})
    outbox.emit(TENANT, task_id, url, EventType.TASK_COMPLETED, data)


def deliver_at(worker: DeliveryWorker, clock: FakeClock, seconds: float) -> list[Outcome]:
    """Move the clock ``seconds`` on and run one pass; the outcomes of what was attempted."""
    clock.advance(seconds)
    return [delivered.result.outcome for delivered in worker.deliver_due()]


def test_fails_twice_then_accepted_exactly_once_with_a_stable_id(
    receiver: Receiver, outbox: WebhookOutbox, worker: DeliveryWorker, past_clock: FakeClock
) -> None:
    receiver.script = [(503, {}), (503, {})]
    emit(outbox, receiver.url)
    assert deliver_at(worker, past_clock, 0) == [Outcome.RETRY]  # immediately
    assert deliver_at(worker, past_clock, 4.9) == []
    assert deliver_at(worker, past_clock, 0.1) == [Outcome.RETRY]  # after 5 s
    assert deliver_at(worker, past_clock, 299) == []
    assert deliver_at(worker, past_clock, 1) == [Outcome.DELIVERED]  # after 5 min
    assert deliver_at(worker, past_clock, 86400) == []  # never again

    assert len(receiver.requests) == 3
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1
    assert len({request.body for request in receiver.requests}) == 1
    for request in receiver.requests:
        payload = Webhook(SECRET).verify(request.body, request.headers)
        assert payload["type"] == "task.completed" and payload["data"]["task_id"] == "t1"
        assert request.headers["content-type"] == "application/json"

    [delivery] = outbox.list_deliveries(TENANT).items
    assert delivery.status == MessageStatus.DELIVERED
    assert delivery.message_id == receiver.requests[0].headers["webhook-id"]
    assert [(a.attempt, a.status_code, a.outcome) for a in delivery.attempts] == [
        (1, 503, Outcome.RETRY),
        (2, 503, Outcome.RETRY),
        (3, 200, Outcome.DELIVERED),
    ]
    assert all(attempt.duration_seconds >= 0 for attempt in delivery.attempts)


def test_during_rotation_the_previous_secret_still_verifies(
    receiver: Receiver, outbox: WebhookOutbox, past_clock: FakeClock
) -> None:
    new = generate_secret()
    with make_worker(outbox, past_clock, secrets=StaticSecrets({TENANT: [new, SECRET]})) as worker:
        emit(outbox, receiver.url)
        assert deliver_at(worker, past_clock, 0) == [Outcome.DELIVERED]
    [request] = receiver.requests
    Webhook(SECRET).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)


def test_410_disables_the_endpoint_and_holds_its_messages_until_enabled(
    receiver: Receiver, outbox: WebhookOutbox, worker: DeliveryWorker, past_clock: FakeClock
) -> None:
    receiver.script = [(410, {})]
    emit(outbox, receiver.url, "t1")
    assert deliver_at(worker, past_clock, 0) == [Outcome.DISABLE]
    emit(outbox, receiver.url, "t2")
    assert deliver_at(worker, past_clock, 3600) == []
    assert len(receiver.requests) == 1
    assert not outbox.get_endpoint(TENANT, receiver.url).enabled
    assert all(item.held for item in outbox.list_deliveries(TENANT).items)

    outbox.enable_endpoint(TENANT, receiver.url)
    assert deliver_at(worker, past_clock, 0) == [Outcome.DELIVERED, Outcome.DELIVERED]
    assert {item.status for item in outbox.list_deliveries(TENANT).items} == {MessageStatus.DELIVERED}


@pytest.mark.parametrize("as_date", [False, True])
def test_retry_after_is_honoured(
    receiver: Receiver, outbox: WebhookOutbox, worker: DeliveryWorker, past_clock: FakeClock, as_date: bool
) -> None:
    wait = format_datetime(past_clock.now() + timedelta(seconds=120), usegmt=True) if as_date else "120"
    receiver.script = [(429, {"Retry-After": wait})]
    emit(outbox, receiver.url)
    assert deliver_at(worker, past_clock, 0) == [Outcome.RETRY]
    assert deliver_at(worker, past_clock, 5) == []  # the schedule's 5 s is not enough
    assert deliver_at(worker, past_clock, 114) == []
    assert deliver_at(worker, past_clock, 1) == [Outcome.DELIVERED]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_network_error_is_retried_on_the_schedule(
    outbox: WebhookOutbox, worker: DeliveryWorker, past_clock: FakeClock
) -> None:
    emit(outbox, f"http://127.0.0.1:{closed_port()}/hooks")
    assert deliver_at(worker, past_clock, 0) == [Outcome.RETRY]
    [delivery] = outbox.list_deliveries(TENANT).items
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert delivery.last_error is not None and delivery.last_error.startswith("NETWORK_ERROR")
    assert delivery.next_attempt_at == past_clock.now() + timedelta(seconds=5)
    assert deliver_at(worker, past_clock, 5) == [Outcome.RETRY]


def test_no_answer_within_the_timeout_is_retried(outbox: WebhookOutbox, past_clock: FakeClock) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        emit(outbox, f"http://127.0.0.1:{silent.getsockname()[1]}/hooks")
        with make_worker(outbox, past_clock, timeout=0.2) as worker:
            assert deliver_at(worker, past_clock, 0) == [Outcome.RETRY]
    assert (outbox.list_deliveries(TENANT).items[0].last_error or "").startswith("TIMEOUT")


def test_other_4xx_give_up_after_one_attempt(
    receiver: Receiver, outbox: WebhookOutbox, worker: DeliveryWorker, past_clock: FakeClock
) -> None:
    receiver.script = [(400, {})]
    emit(outbox, receiver.url)
    assert deliver_at(worker, past_clock, 0) == [Outcome.GIVE_UP]
    assert deliver_at(worker, past_clock, 86400) == []
    [delivery] = outbox.list_deliveries(TENANT).items
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("failed", 1, 400)


def test_the_schedule_ends_in_failed_after_eight_attempts(
    receiver: Receiver, outbox: WebhookOutbox, worker: DeliveryWorker, past_clock: FakeClock
) -> None:
    receiver.script = [(500, {})] * 8
    emit(outbox, receiver.url)
    outcomes: list[Outcome] = []
    for delay in (0, 5, 300, 1800, 7200, 18000, 36000, 36000):
        outcomes += deliver_at(worker, past_clock, delay)
    assert outcomes == [Outcome.RETRY] * 7 + [Outcome.GIVE_UP]
    assert deliver_at(worker, past_clock, 10**6) == []
    [delivery] = outbox.list_deliveries(TENANT).items
    assert (delivery.status, delivery.attempt_count) == ("failed", 8)


# ---------------------------------------------------------------------------------- SSRF at delivery


def test_production_refuses_loopback_at_delivery_and_sends_nothing(
    receiver: Receiver, outbox: WebhookOutbox, past_clock: FakeClock
) -> None:
    def resolve(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]  # a public-looking name re-pointed at us

    emit(outbox, f"https://hooks.example:{receiver.port}/hooks", "t1")
    emit(outbox, receiver.url, "t2")  # plain http to 127.0.0.1
    with make_worker(outbox, past_clock, allow_private=False, resolver=resolve) as worker:
        assert deliver_at(worker, past_clock, 0) == [Outcome.GIVE_UP, Outcome.GIVE_UP]
    errors = {item.task_id: item.last_error or "" for item in outbox.list_deliveries(TENANT).items}
    assert errors["t1"].startswith("WEBHOOK_URL_FORBIDDEN") and errors["t2"].startswith("WEBHOOK_URL_INVALID")
    assert receiver.requests == []


def test_a_tenant_without_a_secret_is_retried_not_sent_unsigned(
    receiver: Receiver, outbox: WebhookOutbox, past_clock: FakeClock
) -> None:
    emit(outbox, receiver.url)
    with make_worker(outbox, past_clock, secrets=StaticSecrets({})) as worker:
        assert deliver_at(worker, past_clock, 0) == [Outcome.RETRY]
    assert receiver.requests == []
    assert (outbox.list_deliveries(TENANT).items[0].last_error or "").startswith("WEBHOOK_SECRET_INVALID")


# --------------------------------------------------------------------------------- concurrency


def test_two_workers_in_two_processes_deliver_each_event_once(
    receiver: Receiver, open_database: DatabaseFactory, past_clock: FakeClock
) -> None:
    outboxes = [WebhookOutbox(open_database(), past_clock) for _ in range(2)]
    receiver.script = [(503, {})] * 5
    for index in range(24):
        emit(outboxes[0], receiver.url, f"t{index}")
    workers = [make_worker(outbox, past_clock, batch_size=3) for outbox in outboxes]
    barrier = threading.Barrier(2)

    def run(worker: DeliveryWorker) -> None:
        for round_ in range(1, 11):  # both workers on the same time; the 503s are due again a round later
            barrier.wait()
            worker.deliver_due(past_clock.now() + timedelta(seconds=10 * round_))

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for worker in workers:
        worker.stop()
    accepted = [request.headers["webhook-id"] for request in receiver.requests[5:]]
    assert len(accepted) == len(set(accepted)) == 24
    statuses = {item.status for item in outboxes[1].list_deliveries(TENANT, limit=100).items}
    assert statuses == {MessageStatus.DELIVERED}


def test_the_worker_thread_delivers_soon_after_an_emit(receiver: Receiver, database: SqlDatabase) -> None:
    clock = FakeClock()
    outbox = WebhookOutbox(database, clock)
    worker = make_worker(outbox, clock, poll_interval=0.05)
    worker.start()
    try:
        emit(outbox, receiver.url)
        worker.wake()
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["data"]["outputs"]["video"].startswith("https://")
    assert outbox.list_deliveries(TENANT).items[0].status == MessageStatus.DELIVERED
