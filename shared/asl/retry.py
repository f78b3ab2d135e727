"""Retry and Catch: matching error names and computing backoff delays.

AWS semantics implemented here:

* retriers (and catchers) are scanned in order; the first whose ``ErrorEquals`` matches wins;
* each retrier counts its own attempts across the whole state visit, so different errors
  hitting different retriers do not share a budget;
* the n-th retry by a retrier waits ``IntervalSeconds * BackoffRate ** (n - 1)`` seconds, capped
  by ``MaxDelaySeconds``; ``JitterStrategy: FULL`` then draws uniformly from ``[0, delay]``;
* ``States.ALL`` matches any error and ``States.TaskFailed`` any error but ``States.Timeout``;
  neither (nor an explicit name) matches the terminal ``States.Runtime`` /
  ``States.DataLimitExceeded``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from shared.asl.errors import STATES_ALL, STATES_TASK_FAILED, STATES_TIMEOUT, TERMINAL_ERRORS

RETRIER_FIELDS = frozenset(
    {
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    }
)
CATCHER_FIELDS = frozenset({"ErrorEquals", "Next", "ResultPath", "Comment"})


def error_matches(error_equals: list[str], error: str) -> bool:
    """Whether an ``ErrorEquals`` list matches the error name."""
    if error in TERMINAL_ERRORS:
        return False
    if STATES_ALL in error_equals or error in error_equals:
        return True
    return STATES_TASK_FAILED in error_equals and error != STATES_TIMEOUT


@dataclass(frozen=True)
class Retrier:
    error_equals: list[str]
    interval_seconds: float = 1
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    full_jitter: bool = False

    @classmethod
    def from_definition(cls, spec: dict[str, Any]) -> Retrier:
        """Build from a validated retrier object, applying the ASL defaults."""
        return cls(
            error_equals=list(spec["ErrorEquals"]),
            interval_seconds=spec.get("IntervalSeconds", 1),
            max_attempts=spec.get("MaxAttempts", 3),
            backoff_rate=spec.get("BackoffRate", 2.0),
            max_delay_seconds=spec.get("MaxDelaySeconds"),
            full_jitter=spec.get("JitterStrategy", "NONE") == "FULL",
        )

    def delay(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before this retrier's ``retry_number``-th retry (1-based)."""
        delay = self.interval_seconds * self.backoff_rate ** (retry_number - 1)
        if self.max_delay_seconds is not None:
            delay = min(delay, self.max_delay_seconds)
        return rng.uniform(0, delay) if self.full_jitter else delay


class RetryBudget:
    """The retry state of one visit of one state: which retrier has been used how often."""

    def __init__(self, retry_specs: list[dict[str, Any]]):
        self._retriers = [Retrier.from_definition(spec) for spec in retry_specs]
        self._used = [0] * len(self._retriers)

    def next_delay(self, error: str, rng: random.Random) -> float | None:
        """The wait before retrying after ``error``, or None when no retry is left for it.

        Consumes one attempt of the first retrier that matches the error.
        """
        for index, retrier in enumerate(self._retriers):
            if error_matches(retrier.error_equals, error):
                if self._used[index] >= retrier.max_attempts:
                    return None
                self._used[index] += 1
                return retrier.delay(self._used[index], rng)
        return None


def find_catcher(catchers: list[dict[str, Any]], error: str) -> dict[str, Any] | None:
    """The first catcher whose ``ErrorEquals`` matches ``error``, if any."""
    return next((c for c in catchers if error_matches(c["ErrorEquals"], error)), None)
