"""The retry schedule, Retry-After and the meaning of answers: pure functions, table tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from web_hooks.schedule import MAX_RETRY_AFTER_SECONDS, Outcome, RetryPolicy, classify, parse_retry_after

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, Outcome.RETRY),
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (301, Outcome.GIVE_UP),
        (400, Outcome.GIVE_UP),
        (401, Outcome.GIVE_UP),
        (404, Outcome.GIVE_UP),
        (410, Outcome.DISABLE),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_classify(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_schedule_without_jitter_is_the_documented_one() -> None:
    policy = RetryPolicy(jitter=0)
    delays = [policy.next_delay(n) for n in range(1, 9)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]


def test_jitter_stays_within_ten_percent_and_varies() -> None:
    policy, rng = RetryPolicy(), random.Random(7)
    seen = {policy.next_delay(2, rng=rng) for _ in range(50)}
    assert all(270 <= delay <= 330 for delay in seen if delay is not None)
    assert len(seen) > 10


def test_retry_after_is_a_floor_capped_at_the_longest_step() -> None:
    policy = RetryPolicy(jitter=0)
    assert policy.next_delay(1, retry_after=120) == 120  # later than the 5 s step
    assert policy.next_delay(3, retry_after=10) == 1800  # never earlier than the schedule
    assert policy.next_delay(1, retry_after=10**9) == MAX_RETRY_AFTER_SECONDS
    assert policy.next_delay(8, retry_after=1) is None  # exhausted whatever the header says


def test_a_scaled_schedule_shortens_every_wait_but_not_retry_after() -> None:
    policy = RetryPolicy(jitter=0).scaled(0.01)  # VIDLUXE_WEBHOOKS_RETRY_SCALE=0.01
    assert [policy.next_delay(n) for n in range(1, 8)] == pytest.approx([0.05, 3, 18, 72, 180, 360, 360])
    assert policy.next_delay(8) is None  # as many attempts as before
    assert policy.next_delay(2, retry_after=60) == 60  # the receiver asked for that wait
    assert RetryPolicy().scaled(1) == RetryPolicy()
    jittered = {RetryPolicy().scaled(0.01).next_delay(2, rng=random.Random(seed)) for seed in range(20)}
    assert all(2.7 <= delay <= 3.3 for delay in jittered if delay is not None) and len(jittered) > 5
    for factor in (0, -1, 1.5):
        with pytest.raises(ValueError):
            RetryPolicy().scaled(factor)


def test_next_delay_needs_an_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().next_delay(0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        (" 7 ", 7.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
