"""The durable webhook outbox, in the task database (SQLite embedded, PostgreSQL cloud).

Three tables, created beside the task store's over the same :class:`~shared.storage.sql.SqlDatabase`:

- ``webhook_endpoints``: one row per (tenant, URL); ``disabled_at`` is set when the URL answered 410 Gone
  and cleared by :meth:`WebhookOutbox.enable_endpoint`.
- ``webhook_messages``: one row per event and URL; ``message_id`` is the ``webhook-id`` (unique), the
  body is stored as sent, so every retry carries the same bytes. ``status`` is ``pending`` until it is
  ``delivered`` or ``failed``; ``next_attempt_at`` says when it is due, and a claim sets
  ``lease_owner`` / ``lease_expires_at`` so that two workers (threads or processes) never hold it at
  once. A pending message to a disabled endpoint is held (not claimed) until the endpoint is enabled.
- ``webhook_attempts``: every attempt: its time, HTTP status or network error, duration, outcome and
  the next attempt's time.

:meth:`WebhookOutbox.emit` (the :class:`~web_hooks.events.TaskEventSink`) commits the message before
it returns, so an event reported by the runner survives a crash of the process.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.errors import InvalidInputError
from shared.storage.sql import Rollback, SqlDatabase, Transaction
from web_hooks.errors import WebhookEndpointNotFoundError
from web_hooks.events import EventType, WebhookEvent, derived_event_id, fit_payload, new_event_id
from web_hooks.schedule import Outcome

if TYPE_CHECKING:
    from shared.clock import Clock

_DDL = """
CREATE TABLE IF NOT EXISTS {webhook_endpoints} (
    id {identity},
    tenant_id TEXT NOT NULL,
    url TEXT NOT NULL,
    disabled_at {timestamp},
    disabled_reason TEXT,
    created_at {timestamp} NOT NULL,
    updated_at {timestamp} NOT NULL,
    UNIQUE (tenant_id, url)
);
CREATE TABLE IF NOT EXISTS {webhook_messages} (
    id {identity},
    message_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    url TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_timestamp {timestamp} NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {timestamp},
    lease_owner TEXT,
    lease_expires_at {timestamp},
    last_status_code INTEGER,
    last_error TEXT,
    created_at {timestamp} NOT NULL,
    updated_at {timestamp} NOT NULL,
    delivered_at {timestamp}
);
CREATE INDEX IF NOT EXISTS webhook_messages_due_idx ON {webhook_messages} (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_messages_tenant_idx ON {webhook_messages} (tenant_id, id);
CREATE TABLE IF NOT EXISTS {webhook_attempts} (
    id {identity},
    message_pk BIGINT NOT NULL REFERENCES {webhook_messages} (id),
    attempt INTEGER NOT NULL,
    started_at {timestamp} NOT NULL,
    duration_seconds {float} NOT NULL,
    status_code INTEGER,
    error TEXT,
    outcome TEXT NOT NULL,
    next_attempt_at {timestamp}
);
CREATE INDEX IF NOT EXISTS webhook_attempts_message_idx ON {webhook_attempts} (message_pk, attempt)
"""

_MESSAGE_COLUMNS = (
    "id, message_id, tenant_id, task_id, url, event_type, event_timestamp, status, attempts, next_attempt_at, "
    "last_status_code, last_error, created_at, updated_at, delivered_at"
)
_ERROR_LENGTH = 500
DEFAULT_LEASE_SECONDS = 60.0  # longer than a delivery can take (15 s timeout), short enough to recover


class MessageStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class AttemptRecord(BaseModel):
    attempt: int
    started_at: datetime
    duration_seconds: float
    status_code: int | None = None
    error: str | None = None
    outcome: Outcome
    next_attempt_at: datetime | None = None


class DeliveryRecord(BaseModel):
    """One message (an event for one URL) and its attempts: what ``GET /v1/webhooks/deliveries`` lists."""

    message_id: str
    tenant_id: str
    task_id: str
    event_type: EventType
    url: str
    status: MessageStatus
    held: bool  # pending, but its endpoint is disabled (410): waits for enable_endpoint
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    event_timestamp: datetime
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptRecord]


class DeliveryPage(BaseModel):
    items: list[DeliveryRecord]
    next_cursor: str | None  # pass back as ``cursor`` for the next (older) page; None: no more


class EndpointRecord(BaseModel):
    tenant_id: str
    url: str
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class ClaimedMessage:
    """A due message held by one worker until its lease expires."""

    pk: int
    message_id: str
    tenant_id: str
    task_id: str
    url: str
    event_type: EventType
    body: bytes
    attempts_made: int  # before this one
    lease_token: str


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did, and what follows for its message (decided by the delivery worker)."""

    started_at: datetime
    duration_seconds: float
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None  # RETRY: when; DISABLE: when it is due again once enabled


class WebhookOutbox:
    """The outbox over a shared database. Implements :class:`~web_hooks.events.TaskEventSink`.

    The database is the caller's (shared with the task store): the outbox never closes it.
    """

    def __init__(self, database: SqlDatabase, clock: Clock) -> None:
        """Create the outbox's tables if missing. Raises the database driver's errors."""
        self._db = database
        self._clock = clock
        self._endpoints = database.table("webhook_endpoints")
        self._messages = database.table("webhook_messages")
        self._attempts = database.table("webhook_attempts")
        database.create_schema(_DDL)

    # ------------------------------------------------------------------------------ TaskEventSink

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
        """Commit the event for delivery to ``webhook_url`` (due now); no URL: nothing is recorded.

        With ``dedupe_key`` the event id is derived from (tenant, task, type, key) and a second emit of
        the same key is ignored. The body is fixed here (under 20 KB), so every retry sends the same
        bytes. Raises the database driver's errors: the event was not recorded.
        """
        if not webhook_url:
            return
        now = self._clock.now()
        event_id = (
            new_event_id() if dedupe_key is None else derived_event_id(tenant_id, task_id, event_type, dedupe_key)
        )
        event = WebhookEvent(id=event_id, type=event_type, timestamp=now, data=fit_payload(data))
        stamp = self._db.dump_timestamp(now)
        with self._db.transaction(write=True) as tx:
            self._ensure_endpoint(tx, tenant_id, webhook_url, stamp)
            tx.execute(
                f"INSERT INTO {self._messages} (message_id, tenant_id, task_id, url, event_type, "
                "event_timestamp, body, status, attempts, next_attempt_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (
                    event.id,
                    tenant_id,
                    task_id,
                    webhook_url,
                    event.type.value,
                    stamp,
                    event.body().decode(),
                    MessageStatus.PENDING.value,
                    stamp,
                    stamp,
                    stamp,
                ),
            )

    def _ensure_endpoint(self, tx: Transaction, tenant_id: str, url: str, stamp: Any) -> None:
        tx.execute(
            f"INSERT INTO {self._endpoints} (tenant_id, url, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tenant_id, url) DO NOTHING",
            (tenant_id, url, stamp, stamp),
        )

    # ------------------------------------------------------------------------------- the worker's

    def claim_due(
        self, now: datetime, *, owner: str, limit: int = 10, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[ClaimedMessage]:
        """Lease up to ``limit`` pending messages due at ``now`` (oldest due first) to ``owner``.

        A message is due when ``next_attempt_at <= now``, its lease (if any) has expired and its
        endpoint is enabled. Each claim is a compare-and-set on the lease, so concurrent workers in
        any number of processes never hold the same message. Raises ValueError if ``limit`` < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit}.")
        stamp = self._db.dump_timestamp(now)
        lease_until = self._db.dump_timestamp(now + timedelta(seconds=lease_seconds))
        free = "status = ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
        claimed: list[ClaimedMessage] = []
        with self._db.transaction(write=True) as tx:
            rows = tx.query(
                f"SELECT id FROM {self._messages} m WHERE {free} AND next_attempt_at <= ? "
                f"AND NOT EXISTS (SELECT 1 FROM {self._endpoints} e WHERE e.tenant_id = m.tenant_id "
                "AND e.url = m.url AND e.disabled_at IS NOT NULL) ORDER BY next_attempt_at, id LIMIT ?",
                (MessageStatus.PENDING.value, stamp, stamp, limit),
            )
            for (pk,) in rows:
                token = f"{owner}:{uuid.uuid4().hex}"
                if not tx.execute(
                    f"UPDATE {self._messages} SET lease_owner = ?, lease_expires_at = ? WHERE id = ? AND {free}",
                    (token, lease_until, pk, MessageStatus.PENDING.value, stamp),
                ):
                    continue  # taken by another worker between the SELECT and the UPDATE
                found = tx.query(
                    f"SELECT message_id, tenant_id, task_id, url, event_type, body, attempts "
                    f"FROM {self._messages} WHERE id = ?",
                    (pk,),
                )
                message_id, tenant_id, task_id, url, event_type, body, attempts = found[0]
                claimed.append(
                    ClaimedMessage(
                        pk=int(pk),
                        message_id=message_id,
                        tenant_id=tenant_id,
                        task_id=task_id,
                        url=url,
                        event_type=EventType(event_type),
                        body=str(body).encode(),
                        attempts_made=int(attempts),
                        lease_token=token,
                    )
                )
        return claimed

    def record_attempt(self, message: ClaimedMessage, result: AttemptResult) -> bool:
        """Store the attempt and move its message on; release the lease. One transaction.

        DELIVERED: ``delivered``. RETRY with a ``next_attempt_at``: pending until then; RETRY without
        one, or GIVE_UP: ``failed``. DISABLE: the endpoint is disabled for the tenant and the message
        stays pending (held) until it is enabled again. Returns False (and changes nothing) when the
        lease was lost meanwhile (expired and claimed by another worker).
        """
        attempt = message.attempts_made + 1
        error = None if result.error is None else result.error[:_ERROR_LENGTH]
        started = self._db.dump_timestamp(result.started_at)
        now = self._db.dump_timestamp(self._clock.now())
        next_at = None if result.next_attempt_at is None else self._db.dump_timestamp(result.next_attempt_at)
        if result.outcome is Outcome.DELIVERED:
            status, next_at = MessageStatus.DELIVERED, None
        elif result.outcome is Outcome.DISABLE:
            status, next_at = MessageStatus.PENDING, next_at or started
        elif result.outcome is Outcome.RETRY and next_at is not None:
            status = MessageStatus.PENDING
        else:
            status, next_at = MessageStatus.FAILED, None
        try:
            with self._db.transaction(write=True) as tx:
                if not tx.execute(
                    f"UPDATE {self._messages} SET status = ?, attempts = ?, next_attempt_at = ?, "
                    "lease_owner = NULL, lease_expires_at = NULL, last_status_code = ?, last_error = ?, "
                    "updated_at = ?, delivered_at = ? WHERE id = ? AND lease_owner = ? AND status = ?",
                    (
                        status.value,
                        attempt,
                        next_at,
                        result.status_code,
                        error,
                        now,
                        started if status is MessageStatus.DELIVERED else None,
                        message.pk,
                        message.lease_token,
                        MessageStatus.PENDING.value,
                    ),
                ):
                    raise Rollback
                tx.execute(
                    f"INSERT INTO {self._attempts} (message_pk, attempt, started_at, duration_seconds, "
                    "status_code, error, outcome, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        message.pk,
                        attempt,
                        started,
                        result.duration_seconds,
                        result.status_code,
                        error,
                        result.outcome.value,
                        next_at,
                    ),
                )
                if result.outcome is Outcome.DISABLE:
                    self._ensure_endpoint(tx, message.tenant_id, message.url, now)
                    tx.execute(
                        f"UPDATE {self._endpoints} SET disabled_at = ?, disabled_reason = ?, updated_at = ? "
                        "WHERE tenant_id = ? AND url = ? AND disabled_at IS NULL",
                        (now, error or "410 Gone", now, message.tenant_id, message.url),
                    )
        except Rollback:
            return False
        return True

    # ------------------------------------------------------------------------------------ the API's

    def list_deliveries(
        self,
        tenant_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        task_id: str | None = None,
        status: MessageStatus | None = None,
    ) -> DeliveryPage:
        """The tenant's messages, newest first, each with its attempts (``GET /v1/webhooks/deliveries``).

        ``cursor`` is a page's ``next_cursor``. Raises InvalidInputError (code ``INVALID_CURSOR``) for a
        cursor this method did not make, ValueError for ``limit`` outside 1..500.
        """
        if not 1 <= limit <= 500:
            raise ValueError(f"limit must be between 1 and 500, not {limit}.")
        where: list[str] = ["m.tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if cursor is not None:
            where.append("m.id < ?")
            params.append(_decode_cursor(cursor))
        if task_id is not None:
            where.append("m.task_id = ?")
            params.append(task_id)
        if status is not None:
            where.append("m.status = ?")
            params.append(MessageStatus(status).value)
        held = (
            f"EXISTS (SELECT 1 FROM {self._endpoints} e WHERE e.tenant_id = m.tenant_id AND e.url = m.url "
            "AND e.disabled_at IS NOT NULL)"
        )
        columns = ", ".join(f"m.{column.strip()}" for column in _MESSAGE_COLUMNS.split(","))
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT {columns}, {held} FROM {self._messages} m WHERE {' AND '.join(where)} "
                "ORDER BY m.id DESC LIMIT ?",
                (*params, limit + 1),
            )
            page = rows[:limit]
            attempts = self._attempts_of(tx, [int(row[0]) for row in page])
        items = [self._delivery_from_row(row, attempts.get(int(row[0]), [])) for row in page]
        next_cursor = _encode_cursor(int(page[-1][0])) if len(rows) > limit else None
        return DeliveryPage(items=items, next_cursor=next_cursor)

    def get_delivery(self, tenant_id: str, message_id: str) -> DeliveryRecord | None:
        """One of the tenant's messages by its webhook-id, or None (another tenant's answers None too)."""
        held = (
            f"EXISTS (SELECT 1 FROM {self._endpoints} e WHERE e.tenant_id = m.tenant_id AND e.url = m.url "
            "AND e.disabled_at IS NOT NULL)"
        )
        columns = ", ".join(f"m.{column.strip()}" for column in _MESSAGE_COLUMNS.split(","))
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT {columns}, {held} FROM {self._messages} m WHERE m.tenant_id = ? AND m.message_id = ?",
                (tenant_id, message_id),
            )
            if not rows:
                return None
            attempts = self._attempts_of(tx, [int(rows[0][0])])
        return self._delivery_from_row(rows[0], attempts.get(int(rows[0][0]), []))

    def list_endpoints(self, tenant_id: str) -> list[EndpointRecord]:
        """The tenant's webhook URLs seen so far, disabled or not, oldest first."""
        with self._db.transaction(write=False) as tx:
            rows = tx.query(
                f"SELECT tenant_id, url, disabled_at, disabled_reason, created_at, updated_at "
                f"FROM {self._endpoints} WHERE tenant_id = ? ORDER BY id",
                (tenant_id,),
            )
        return [self._endpoint_from_row(row) for row in rows]

    def get_endpoint(self, tenant_id: str, url: str) -> EndpointRecord:
        """Raises WebhookEndpointNotFoundError for a URL the tenant never used."""
        with self._db.transaction(write=False) as tx:
            row = self._select_endpoint(tx, tenant_id, url)
        return self._endpoint_from_row(row)

    def enable_endpoint(self, tenant_id: str, url: str) -> EndpointRecord:
        """Re-enable a URL disabled by a 410: its held messages become due again (now, or when scheduled).

        Enabling an enabled endpoint changes nothing. Raises WebhookEndpointNotFoundError for a URL the
        tenant never used.
        """
        now = self._db.dump_timestamp(self._clock.now())
        with self._db.transaction(write=True) as tx:
            tx.execute(
                f"UPDATE {self._endpoints} SET disabled_at = NULL, disabled_reason = NULL, updated_at = ? "
                "WHERE tenant_id = ? AND url = ? AND disabled_at IS NOT NULL",
                (now, tenant_id, url),
            )
            row = self._select_endpoint(tx, tenant_id, url)
        return self._endpoint_from_row(row)

    # ------------------------------------------------------------------------------------ rows

    def _select_endpoint(self, tx: Transaction, tenant_id: str, url: str) -> tuple[Any, ...]:
        rows = tx.query(
            f"SELECT tenant_id, url, disabled_at, disabled_reason, created_at, updated_at "
            f"FROM {self._endpoints} WHERE tenant_id = ? AND url = ?",
            (tenant_id, url),
        )
        if not rows:
            raise WebhookEndpointNotFoundError(
                f"No webhook endpoint {url!r} for this tenant: it is created by the first task that uses it."
            )
        return rows[0]

    def _attempts_of(self, tx: Transaction, pks: Sequence[int]) -> dict[int, list[AttemptRecord]]:
        if not pks:
            return {}
        marks = ", ".join("?" for _ in pks)
        rows = tx.query(
            f"SELECT message_pk, attempt, started_at, duration_seconds, status_code, error, outcome, "
            f"next_attempt_at FROM {self._attempts} WHERE message_pk IN ({marks}) ORDER BY message_pk, attempt, id",
            tuple(pks),
        )
        result: dict[int, list[AttemptRecord]] = {}
        for row in rows:
            result.setdefault(int(row[0]), []).append(
                AttemptRecord(
                    attempt=row[1],
                    started_at=self._db.load_timestamp(row[2]),
                    duration_seconds=row[3],
                    status_code=row[4],
                    error=row[5],
                    outcome=Outcome(row[6]),
                    next_attempt_at=self._optional_timestamp(row[7]),
                )
            )
        return result

    def _delivery_from_row(self, row: Sequence[Any], attempts: list[AttemptRecord]) -> DeliveryRecord:
        status = MessageStatus(row[7])
        return DeliveryRecord(
            message_id=row[1],
            tenant_id=row[2],
            task_id=row[3],
            url=row[4],
            event_type=EventType(row[5]),
            event_timestamp=self._db.load_timestamp(row[6]),
            status=status,
            attempt_count=row[8],
            next_attempt_at=self._optional_timestamp(row[9]),
            last_status_code=row[10],
            last_error=row[11],
            created_at=self._db.load_timestamp(row[12]),
            updated_at=self._db.load_timestamp(row[13]),
            delivered_at=self._optional_timestamp(row[14]),
            held=bool(row[15]) and status is MessageStatus.PENDING,
            attempts=attempts,
        )

    def _endpoint_from_row(self, row: Sequence[Any]) -> EndpointRecord:
        return EndpointRecord(
            tenant_id=row[0],
            url=row[1],
            disabled_at=self._optional_timestamp(row[2]),
            disabled_reason=row[3],
            created_at=self._db.load_timestamp(row[4]),
            updated_at=self._db.load_timestamp(row[5]),
        )

    def _optional_timestamp(self, value: Any) -> datetime | None:
        return None if value is None else self._db.load_timestamp(value)


def _encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"wh:{pk}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "wh" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(
            "The cursor is not one this API returned: pass a page's next_cursor unchanged.", code="INVALID_CURSOR"
        ) from exc
