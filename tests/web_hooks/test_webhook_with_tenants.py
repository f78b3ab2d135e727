"""The tenants store as the delivery's SigningSecrets, on one shared database: rotation end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_helpers import FakeClock, Receiver

from shared.storage.sql import SqlDatabase
from shared.storage.tenants import TenantStore
from web_hooks.delivery import DeliveryWorker
from web_hooks.events import EventType, SigningSecrets
from web_hooks.outbox import WebhookOutbox
from web_hooks.schedule import Outcome


def test_deliveries_are_signed_with_both_secrets_only_during_the_grace_period(
    receiver: Receiver, database: SqlDatabase
) -> None:
    clock = FakeClock(datetime.now(UTC) - timedelta(seconds=120))
    tenants = TenantStore(database, clock, rotation_grace=timedelta(seconds=60))
    outbox = WebhookOutbox(database, clock)
    tenant = tenants.ensure_tenant("acme").tenant_id
    old = tenants.current_secret(tenant).secret
    tenants.rotate_secret(tenant)
    new = tenants.current_secret(tenant).secret
    secrets: SigningSecrets = tenants
    with DeliveryWorker(outbox, secrets, clock, allow_private=True) as worker:
        outbox.emit(tenant, "t1", receiver.url, EventType.TASK_STARTED, {"task_id": "t1"})
        assert [d.result.outcome for d in worker.deliver_due()] == [Outcome.DELIVERED]
        clock.advance(61)  # the grace period is over
        outbox.emit(tenant, "t2", receiver.url, EventType.TASK_STARTED, {"task_id": "t2"})
        assert [d.result.outcome for d in worker.deliver_due()] == [Outcome.DELIVERED]
    during, after = receiver.requests
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)
