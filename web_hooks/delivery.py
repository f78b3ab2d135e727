"""The delivery worker: claims due outbox messages, signs them, POSTs them, and schedules retries.

Each pass (:meth:`DeliveryWorker.deliver_due`) leases up to ``batch_size`` due messages (safe with
several workers in several processes: see :meth:`WebhookOutbox.claim_due`), sends them concurrently,
and records every attempt. One attempt:

- the tenant's valid secrets sign it (:mod:`web_hooks.signing`; both during a rotation);
- the URL's host is resolved, every address checked, and the connection made to that address
  (:class:`web_hooks.transport.CheckedTransport`), with a 15 s timeout; redirects are not followed;
- 2xx: delivered (the message is never sent again); 429, 5xx, a network error or a timeout: retried on
  :mod:`web_hooks.schedule` (Retry-After honoured); 410: the endpoint is disabled for the tenant and
  its messages are held until :meth:`WebhookOutbox.enable_endpoint`; another answer, or an address
  that may not be reached: given up.

:meth:`DeliveryWorker.start` runs passes on a thread until :meth:`DeliveryWorker.stop` (``vidluxe
serve``); on AWS a scheduled Lambda runs passes while its time lasts (functions/webhook_delivery.py);
tests call :meth:`DeliveryWorker.deliver_due` with a clock of their own and never sleep.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import structlog

from web_hooks.errors import WebhookSecretError, WebhookUrlInvalidError, WebhookUrlUnresolvableError
from web_hooks.outbox import AttemptResult, ClaimedMessage, WebhookOutbox
from web_hooks.schedule import Outcome, RetryPolicy, classify, parse_retry_after
from web_hooks.signing import webhook_headers
from web_hooks.transport import CheckedTransport
from web_hooks.urls import Resolver, parse_webhook_url, system_resolver

if TYPE_CHECKING:
    from shared.clock import Clock
    from web_hooks.events import SigningSecrets

DELIVERY_TIMEOUT_SECONDS = 15.0
USER_AGENT = "VidLuxe-Webhooks/1"

_log = structlog.get_logger("web_hooks.delivery")


def longest_pass_seconds(batch_size: int, concurrency: int, timeout: float) -> float:
    """The longest one pass can take: its messages go out in rounds of ``concurrency``, each at most
    connect + write + read timeouts (and 10 s for the rest)."""
    rounds = -(-batch_size // concurrency)
    return rounds * (3 * timeout + 10)


@dataclass(frozen=True)
class Delivered:
    """What a pass did with one message (for tests and logs)."""

    message_id: str
    attempt: int
    result: AttemptResult
    recorded: bool  # False: the lease was lost meanwhile and another worker owns the message


class DeliveryWorker:
    """Delivers the outbox's due messages; one instance per process is enough (threads inside)."""

    def __init__(
        self,
        outbox: WebhookOutbox,
        secrets: SigningSecrets,
        clock: Clock,
        *,
        allow_private: bool = False,
        policy: RetryPolicy | None = None,
        timeout: float = DELIVERY_TIMEOUT_SECONDS,
        batch_size: int = 8,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
    ) -> None:
        """``allow_private`` is VIDLUXE_WEBHOOKS_ALLOW_PRIVATE (development only): plain http and
        loopback or private addresses may be reached. ``resolver``, ``ssl_context`` and ``rng`` are for
        tests. Raises ValueError for a batch_size, concurrency or poll_interval below its minimum.
        """
        if batch_size < 1 or concurrency < 1 or poll_interval <= 0:
            raise ValueError("batch_size and concurrency must be >= 1 and poll_interval > 0.")
        self._outbox = outbox
        self._secrets = secrets
        self._clock = clock
        self._allow_private = allow_private
        self._policy = policy or RetryPolicy()
        self._batch_size = batch_size
        # A claimed message must not be taken over by another worker while it waits in this pass.
        self._longest_pass_seconds = longest_pass_seconds(batch_size, concurrency, timeout)
        self._lease_seconds = self._longest_pass_seconds + 30
        self._poll_interval = poll_interval
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._client = httpx.Client(
            transport=CheckedTransport(allow_private=allow_private, resolver=resolver, ssl_context=ssl_context),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook-delivery")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def longest_pass_seconds(self) -> float:
        """The longest one :meth:`deliver_due` can take (every attempt at its timeouts)."""
        return self._longest_pass_seconds

    # ------------------------------------------------------------------------------------ one pass

    def deliver_due(self, now: datetime | None = None) -> list[Delivered]:
        """Claim the messages due at ``now`` (the clock's now if None) and deliver them; wait for all.

        Returns what happened to each, in claim order. Delivery failures are recorded, not raised;
        the outbox's database errors are raised.
        """
        moment = self._clock.now() if now is None else now
        claimed = self._outbox.claim_due(
            moment, owner=self._owner, limit=self._batch_size, lease_seconds=self._lease_seconds
        )
        futures = [self._pool.submit(self._deliver, message, moment) for message in claimed]
        return [future.result() for future in futures]

    def _deliver(self, message: ClaimedMessage, now: datetime) -> Delivered:
        result = self._attempt(message, now)
        recorded = self._outbox.record_attempt(message, result)
        _log.info(
            "webhook attempt",
            message_id=message.message_id,
            task_id=message.task_id,
            event_type=message.event_type.value,
            attempt=message.attempts_made + 1,
            outcome=result.outcome.value,
            status_code=result.status_code,
            error=result.error,
            next_attempt_at=None if result.next_attempt_at is None else result.next_attempt_at.isoformat(),
            recorded=recorded,
        )
        return Delivered(message.message_id, message.attempts_made + 1, result, recorded)

    def _attempt(self, message: ClaimedMessage, now: datetime) -> AttemptResult:
        started = time.monotonic()
        status_code: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            parse_webhook_url(message.url, allow_private=self._allow_private)
            signing_secrets = self._secrets.signing_secrets(message.tenant_id)
            if not signing_secrets:
                raise WebhookSecretError("The tenant has no webhook signing secret yet.")
            headers = {
                "content-type": "application/json",
                **webhook_headers(message.message_id, now, message.body, signing_secrets),
            }
            with self._client.stream("POST", message.url, content=message.body, headers=headers) as response:
                status_code = response.status_code  # the body is not read: only the status matters
                retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        except (WebhookUrlUnresolvableError, WebhookSecretError) as exc:
            outcome, error = Outcome.RETRY, str(exc)
        except WebhookUrlInvalidError as exc:  # invalid, or an address that may not be reached
            outcome, error = Outcome.GIVE_UP, str(exc)
        except httpx.TimeoutException as exc:
            outcome, error = Outcome.RETRY, f"TIMEOUT: no answer within the delivery timeout ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            outcome, error = Outcome.RETRY, f"NETWORK_ERROR: {type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug must not keep the message leased forever: count it as an attempt
            _log.exception("webhook attempt failed unexpectedly", message_id=message.message_id)
            outcome, error = Outcome.RETRY, f"INTERNAL_ERROR: {type(exc).__name__}: {exc}"
        else:
            outcome = classify(status_code)
            if outcome is not Outcome.DELIVERED:
                error = f"HTTP {status_code}" + (": endpoint disabled until re-enabled" if status_code == 410 else "")
        duration = time.monotonic() - started
        next_attempt_at: datetime | None = None
        if outcome is Outcome.RETRY:
            with self._rng_lock:
                delay = self._policy.next_delay(message.attempts_made + 1, retry_after=retry_after, rng=self._rng)
            if delay is None:
                outcome = Outcome.GIVE_UP  # the schedule is exhausted
            else:
                next_attempt_at = now + timedelta(seconds=delay)
        elif outcome is Outcome.DISABLE:
            next_attempt_at = now  # due again as soon as the endpoint is enabled
        return AttemptResult(
            started_at=now,
            duration_seconds=duration,
            outcome=outcome,
            status_code=status_code,
            error=error,
            next_attempt_at=next_attempt_at,
        )

    # -------------------------------------------------------------------------------- the thread

    def start(self) -> None:
        """Run passes on a daemon thread until :meth:`stop`. Raises RuntimeError if already started."""
        if self._thread is not None:
            raise RuntimeError("The delivery worker is already running.")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Start the next pass now instead of after the poll interval (e.g. right after an emit)."""
        self._wake.set()

    def stop(self, timeout: float = DELIVERY_TIMEOUT_SECONDS + 5) -> None:
        """Finish the current pass (at most one delivery timeout), stop the thread, close the client.

        Messages claimed but not finished keep their lease until it expires, then are delivered again.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = len(self.deliver_due()) >= self._batch_size
            except Exception:  # the database may be down for a while: log, wait, try again
                _log.exception("webhook delivery pass failed")
                busy = False
            if not busy:
                self._wake.wait(self._poll_interval)
                self._wake.clear()

    def __enter__(self) -> DeliveryWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
