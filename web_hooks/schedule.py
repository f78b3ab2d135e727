"""When to try a delivery again: pure functions, no I/O.

The schedule (Standard Webhooks' recommendation, as Svix runs it): the first attempt immediately, then
after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; after the eighth failed attempt the message is
given up (``failed``). Each wait gets a random jitter (±10 % by default) so that retries after an
outage do not arrive all at once. A ``Retry-After`` header (seconds or an HTTP date) on a retried
answer is a floor: the next attempt is never earlier than it asks, and never later than
:data:`MAX_RETRY_AFTER_SECONDS` for its sake.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRY_DELAYS_SECONDS: tuple[float, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
"""The wait before attempt 1, 2, ... 8 (attempt 1 is immediate)."""

MAX_RETRY_AFTER_SECONDS = 10 * 3600.0
"""A receiver's Retry-After is honoured up to the schedule's longest step."""


class Outcome(StrEnum):
    """What an attempt's result means for its message."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # network error, 429, 5xx: try again on the schedule
    GIVE_UP = "give_up"  # another 4xx, 1xx or 3xx (redirects are not followed), a refused address
    DISABLE = "disable"  # 410 Gone: disable the endpoint for the tenant, hold its messages


def classify(status_code: int | None) -> Outcome:
    """The outcome of an HTTP answer; ``None`` is a network error (no answer)."""
    if status_code is None:
        return Outcome.RETRY
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.DISABLE
    if status_code == 429 or status_code >= 500:
        return Outcome.RETRY
    return Outcome.GIVE_UP


@dataclass(frozen=True)
class RetryPolicy:
    delays: Sequence[float] = RETRY_DELAYS_SECONDS
    jitter: float = 0.1  # each wait is multiplied by a random factor in [1 - jitter, 1 + jitter]
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    def scaled(self, factor: float) -> RetryPolicy:
        """The same schedule with every wait multiplied by ``factor``: for development and benchmarks
        (VIDLUXE_WEBHOOKS_RETRY_SCALE), so that a run sees retries without waiting real minutes; 0.01
        turns 5 s, 5 min, 30 min into 0.05 s, 3 s, 18 s. Jitter stays relative; a receiver's Retry-After
        is not scaled (it asked for that wait). Raises ValueError unless 0 < ``factor`` <= 1.
        """
        if not 0 < factor <= 1:
            raise ValueError(f"The retry scale must be in (0, 1], not {factor}.")
        return replace(self, delays=tuple(float(delay) * factor for delay in self.delays))

    def next_delay(
        self, attempts_made: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait after the ``attempts_made``-th failed attempt, or None: give up.

        Raises ValueError if ``attempts_made`` < 1.
        """
        if attempts_made < 1:
            raise ValueError(f"attempts_made must be >= 1, not {attempts_made}.")
        if attempts_made >= self.max_attempts:
            return None
        delay = float(self.delays[attempts_made])
        if self.jitter and delay:
            delay *= (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None.

    Unparseable values are ignored (None); a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())
