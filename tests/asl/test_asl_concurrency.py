"""Parallel and Map concurrency: bounds, abandonment after a failure, and a few intrinsics' randomness."""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Any

import pytest
from asl_cases import branch, single

from shared.asl import StateMachine, TaskContext, TaskFailedError, run_execution


class ConcurrencyProbe:
    """A task that sleeps briefly and records the highest number of simultaneous calls."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, resource: str, parameters: Any, context: TaskContext) -> Any:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.03)
        with self._lock:
            self.running -= 1
        return parameters


def map_machine(max_concurrency: int) -> StateMachine:
    return StateMachine.load(
        single(
            {
                "Type": "Map",
                "MaxConcurrency": max_concurrency,
                "ItemProcessor": branch(("Work", {"Type": "Task", "Resource": "probe"})),
            }
        )
    )


@pytest.mark.parametrize(
    ("max_concurrency", "max_workers", "expected_peak"), [(2, 8, 2), (0, 3, 3), (1, 8, 1), (0, 16, 8)]
)
def test_map_concurrency_is_bounded_by_max_concurrency_and_workers(
    max_concurrency: int, max_workers: int, expected_peak: int
) -> None:
    probe = ConcurrencyProbe()
    items = list(range(8))
    result = run_execution(
        map_machine(max_concurrency), items, execution_id="e", invoke_task=probe, max_workers=max_workers
    )
    assert result.output == items
    assert probe.peak == expected_peak


def test_failing_branch_fails_the_parallel_and_abandons_the_others() -> None:
    machine = StateMachine.load(
        single(
            {
                "Type": "Parallel",
                "Branches": [
                    branch(("Boom", {"Type": "Task", "Resource": "boom"})),
                    branch(
                        ("Slow", {"Type": "Task", "Resource": "slow"}), ("After", {"Type": "Task", "Resource": "after"})
                    ),
                ],
            }
        )
    )
    calls: list[str] = []
    slow_cancelled = threading.Event()
    slow_started = threading.Event()

    def tasks(resource: str, parameters: Any, context: TaskContext) -> Any:
        calls.append(resource)
        if resource == "boom":
            slow_started.wait(2)
            raise TaskFailedError("Boom", "branch 0")
        if resource == "slow":
            slow_started.set()
            if context.cancelled.wait(5):
                slow_cancelled.set()
        return parameters

    started = time.monotonic()
    result = run_execution(machine, {}, execution_id="e", invoke_task=tasks, max_workers=2)
    assert time.monotonic() - started < 3
    assert (result.status, result.error, result.cause) == ("FAILED", "Boom", "branch 0")
    assert slow_cancelled.is_set()
    assert "after" not in calls


def test_math_random_is_reproducible_with_a_seed_and_stays_in_range() -> None:
    machine = StateMachine.load(
        single(
            {
                "Type": "Pass",
                "Parameters": {"seeded.$": "States.MathRandom(1, 1000, 42)", "free.$": "States.MathRandom(5, 7)"},
            }
        )
    )
    outputs = [run_execution(machine, {}, execution_id="e").output for _ in range(20)]
    assert len({o["seeded"] for o in outputs}) == 1
    assert {o["free"] for o in outputs} <= {5, 6}


def test_uuid_is_v4_and_follows_the_injected_random() -> None:
    machine = StateMachine.load(single({"Type": "Pass", "Parameters": {"id.$": "States.UUID()"}}))
    first = run_execution(machine, {}, execution_id="e", random=random.Random(1)).output["id"]
    again = run_execution(machine, {}, execution_id="e", random=random.Random(1)).output["id"]
    assert first == again
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first)


def test_task_states_need_an_invoker() -> None:
    with pytest.raises(ValueError, match="invoke_task"):
        run_execution(StateMachine.load(single({"Type": "Task", "Resource": "r"})), {}, execution_id="e")
