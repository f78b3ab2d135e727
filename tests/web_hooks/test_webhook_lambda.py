"""The webhook-delivery Lambda (functions/webhook_delivery.py) against the real outbox, on SQLite and
PostgreSQL, configured as on AWS from VIDLUXE_* variables, delivering to a loopback receiver
(VIDLUXE_WEBHOOKS_ALLOW_PRIVATE) that checks every signature; and its clock: the context's remaining time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from webhook_helpers import Receiver

import functions.webhook_delivery
from shared.clock import SystemClock
from shared.settings import Settings
from shared.storage.sql import PostgresDatabase, SqlDatabase, SqliteDatabase
from shared.storage.tenants import TenantStore
from web_hooks.events import EventType
from web_hooks.outbox import MessageStatus, WebhookOutbox

ENOUGH = 120_000  # the function's timeout, in ms: room for a pass (at most ~60 s) and more


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context``: the attributes powertools reads, and the remaining
    time, which each call takes the next of ``remaining`` (the last repeats)."""

    remaining: list[int]
    function_name: str = "vidluxe-test-webhookDelivery"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:vidluxe-test-webhookDelivery"
    asked: int = field(default=0)

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]


@dataclass
class Stack:
    """The database as the Lambda sees it, opened by the test, with one tenant and its secret."""

    outbox: WebhookOutbox
    tenant_id: str
    secret: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """VIDLUXE_* as the function has them on AWS (the database URL already set: no SSM read), and the same
    database opened for the test; the function's cached worker is built anew and closed afterwards."""
    database: SqlDatabase
    monkeypatch.setenv("VIDLUXE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIDLUXE_WEBHOOKS_ALLOW_PRIVATE", "1")
    monkeypatch.delenv("VIDLUXE_SSM_SECRETS", raising=False)
    if request.param == "sqlite":
        monkeypatch.setenv("VIDLUXE_TASK_STORE", "sqlite")
        database = SqliteDatabase(Settings().sqlite_path)
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")
        monkeypatch.setenv("VIDLUXE_TASK_STORE", "postgres")
        monkeypatch.setenv("VIDLUXE_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}")
        database = PostgresDatabase(url, schema=schema)  # creates the schema the function's search_path names
    clock = SystemClock()
    tenants = TenantStore(database, clock)
    tenant_id = tenants.ensure_tenant("acme").tenant_id
    _clear_function()
    try:
        yield Stack(WebhookOutbox(database, clock), tenant_id, tenants.current_secret(tenant_id).secret)
    finally:
        _clear_function()
        database.close()


def _clear_function() -> None:
    if functions.webhook_delivery._worker.cache_info().currsize:
        functions.webhook_delivery._worker().close()
    if functions.webhook_delivery._database.cache_info().currsize:
        functions.webhook_delivery._database().close()
    functions.webhook_delivery._worker.cache_clear()
    functions.webhook_delivery._database.cache_clear()


def emit(stack: Stack, url: str, count: int) -> None:
    for index in range(count):
        task_id = f"tsk_{index:02d}{uuid.uuid4().hex[:6]}"
        stack.outbox.emit(stack.tenant_id, task_id, url, EventType.TASK_STARTED, {"task_id": task_id})


def statuses(stack: Stack) -> list[MessageStatus]:
    return sorted(item.status for item in stack.outbox.list_deliveries(stack.tenant_id).items)


def test_delivers_everything_due_signed_then_stops_when_nothing_is(stack: Stack, receiver: Receiver) -> None:
    emit(stack, receiver.url, 3)
    receiver.script = [(503, {})]  # one message is retried, due again in 5 s: after this run
    context = LambdaContext([ENOUGH])
    result = functions.webhook_delivery.handler({}, context)
    assert result == {"attempts": 3, "delivered": 2, "out_of_time": False}
    assert context.asked == 2  # the pass, then one that found nothing due
    assert statuses(stack) == [MessageStatus.DELIVERED, MessageStatus.DELIVERED, MessageStatus.PENDING]
    for request in receiver.requests:
        assert Webhook(stack.secret).verify(request.body, request.headers)["type"] == "task.started"

    # A warm call with nothing due: no attempt.
    assert functions.webhook_delivery.handler({}, LambdaContext([ENOUGH]))["attempts"] == 0


def test_little_time_left_sends_nothing(stack: Stack, receiver: Receiver) -> None:
    emit(stack, receiver.url, 1)
    result = functions.webhook_delivery.handler({}, LambdaContext([45_000]))  # less than a pass may take
    assert result == {"attempts": 0, "delivered": 0, "out_of_time": True}
    assert receiver.requests == [] and statuses(stack) == [MessageStatus.PENDING]


def test_stops_between_passes_once_another_might_not_finish(stack: Stack, receiver: Receiver) -> None:
    batch = functions.webhook_delivery.BATCH_SIZE
    emit(stack, receiver.url, batch + 2)
    context = LambdaContext([ENOUGH, 40_000])  # the first pass took most of the time
    result = functions.webhook_delivery.handler({}, context)
    assert result == {"attempts": batch, "delivered": batch, "out_of_time": True}
    assert statuses(stack).count(MessageStatus.PENDING) == 2  # for the next invocation
    assert functions.webhook_delivery.handler({}, LambdaContext([ENOUGH]))["delivered"] == 2
