"""Retry counts and backoff (on a fake clock), Catch routing, task and execution timeouts."""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

from asl_support import FakeClock

from shared.asl import ExecutionResult, StateMachine, TaskContext, TaskFailedError, run_execution
from shared.errors import TransientError


def task_machine(task: dict[str, Any], **extra_states: dict[str, Any]) -> StateMachine:
    return StateMachine.load(
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work", "End": True, **task}, **extra_states}}
    )


class FailingTask:
    """Fails with the given error names in turn, then succeeds; records what it was given."""

    def __init__(self, *errors: str) -> None:
        self.errors = list(errors)
        self.contexts: list[TaskContext] = []

    def __call__(self, resource: str, parameters: Any, context: TaskContext) -> Any:
        self.contexts.append(context)
        if self.errors:
            raise TaskFailedError(self.errors.pop(0), "failed")
        return {"done": parameters}


def run(machine: StateMachine, task: Any, clock: FakeClock, **kwargs: Any) -> ExecutionResult:
    return run_execution(machine, {"in": 1}, execution_id="e", invoke_task=task, clock=clock, **kwargs)


def test_backoff_intervals_multiply_and_attempts_are_bounded() -> None:
    machine = task_machine(
        {"Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}]}
    )
    task, clock = FailingTask(*["Flaky"] * 10), FakeClock()
    result = run(machine, task, clock)
    assert clock.sleeps == [2, 6, 18]
    assert [c.attempt for c in task.contexts] == [1, 2, 3, 4]
    assert (result.status, result.error, result.cause) == ("FAILED", "Flaky", "failed")


def test_defaults_are_one_second_doubling_three_retries() -> None:
    task, clock = FailingTask(*["Any"] * 10), FakeClock()
    run(task_machine({"Retry": [{"ErrorEquals": ["States.ALL"]}]}), task, clock)
    assert clock.sleeps == [1, 2, 4]


def test_max_delay_caps_the_interval() -> None:
    retrier = {"ErrorEquals": ["E"], "IntervalSeconds": 5, "BackoffRate": 3, "MaxAttempts": 4, "MaxDelaySeconds": 20}
    clock = FakeClock()
    run(task_machine({"Retry": [retrier]}), FailingTask(*["E"] * 10), clock)
    assert clock.sleeps == [5, 15, 20, 20]


def test_full_jitter_draws_from_the_seeded_random_within_the_backoff() -> None:
    retrier = {"ErrorEquals": ["E"], "IntervalSeconds": 2, "MaxAttempts": 3, "JitterStrategy": "FULL"}
    clock = FakeClock()
    run(task_machine({"Retry": [retrier]}), FailingTask(*["E"] * 10), clock, random=random.Random(7))
    reference = random.Random(7)
    assert clock.sleeps == [reference.uniform(0, bound) for bound in (2, 4, 8)]
    assert all(0 <= s <= bound for s, bound in zip(clock.sleeps, (2, 4, 8), strict=True))


def test_success_after_retries_reports_attempts_and_retry_count() -> None:
    machine = task_machine(
        {"Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 5}], "Parameters": {"try.$": "$$.State.RetryCount"}}
    )
    task, clock = FailingTask("E", "E"), FakeClock()
    result = run(machine, task, clock)
    assert result.output == {"done": {"try": 2}}
    assert [c.attempt for c in task.contexts] == [1, 2, 3]
    assert [c.context_object["State"]["RetryCount"] for c in task.contexts] == [0, 1, 2]


def test_max_attempts_zero_never_retries_and_catch_takes_over() -> None:
    machine = task_machine(
        {
            "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 0}],
            "Catch": [{"ErrorEquals": ["E"], "Next": "Handled"}],
        },
        Handled={"Type": "Pass", "End": True},
    )
    clock = FakeClock()
    result = run(machine, FailingTask("E"), clock)
    assert clock.sleeps == []
    assert result.output == {"Error": "E", "Cause": "failed"}


def test_each_retrier_counts_its_own_attempts_like_the_guide_example() -> None:
    # The guide's "complex retry scenario": ErrorA, ErrorB, ErrorC, ErrorB. The fourth error
    # matches the first retrier again, which has used its two attempts, so Catch takes over.
    machine = task_machine(
        {
            "Retry": [
                {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
                {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5},
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}],
        },
        Z={"Type": "Pass", "End": True},
    )
    task, clock = FailingTask("ErrorA", "ErrorB", "ErrorC", "ErrorB", "ErrorB"), FakeClock()
    result = run(machine, task, clock)
    assert clock.sleeps == [1, 2, 5]
    assert len(task.contexts) == 4
    assert result.output == {"Error": "ErrorB", "Cause": "failed"}


def test_first_matching_catcher_wins_and_its_result_path_keeps_the_input() -> None:
    machine = task_machine(
        {
            "InputPath": "$.in",
            "Catch": [
                {"ErrorEquals": ["Other"], "Next": "Wrong"},
                {"ErrorEquals": ["ValueError"], "ResultPath": "$.error-info", "Next": "Recovery"},
                {"ErrorEquals": ["States.ALL"], "Next": "Wrong"},
            ],
        },
        Wrong={"Type": "Fail", "Error": "WrongCatcher"},
        Recovery={"Type": "Pass", "End": True},
    )

    def task(resource: str, parameters: Any, context: TaskContext) -> Any:
        raise ValueError("bad value")

    result = run(machine, task, FakeClock())
    assert result.output == {
        "in": 1,
        "error-info": {
            "Error": "ValueError",
            "Cause": json.dumps({"errorMessage": "bad value", "errorType": "ValueError"}),
        },
    }


def test_vidluxe_errors_report_their_error_name_and_cause() -> None:
    def task(resource: str, parameters: Any, context: TaskContext) -> Any:
        raise TransientError("provider busy", details={"provider": "x"})

    result = run(task_machine({}), task, FakeClock())
    assert result.error == "TransientError"
    assert result.cause is not None
    assert json.loads(result.cause) == {
        "errorType": "TransientError",
        "errorMessage": "provider busy",
        "code": "TRANSIENT",
        "provider": "x",
    }


def test_runtime_errors_are_neither_retried_nor_caught() -> None:
    machine = task_machine(
        {
            "Parameters": {"x.$": "$.missing"},
            "Retry": [{"ErrorEquals": ["States.ALL"]}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
        },
        Handled={"Type": "Pass", "End": True},
    )
    task, clock = FailingTask(), FakeClock()
    result = run(machine, task, clock)
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert clock.sleeps == [] and task.contexts == []


def test_timeout_is_states_timeout_not_task_failed_and_cancels_the_task() -> None:
    machine = task_machine(
        {
            "TimeoutSecondsPath": "$.limit",
            "Retry": [{"ErrorEquals": ["States.TaskFailed"]}],
            "Catch": [
                {"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"},
                {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "TimedOut"},
            ],
        },
        Wrong={"Type": "Fail", "Error": "WrongCatcher"},
        TimedOut={"Type": "Pass", "End": True},
    )
    seen: list[TaskContext] = []
    stopped = threading.Event()

    def slow(resource: str, parameters: Any, context: TaskContext) -> Any:
        seen.append(context)
        if context.cancelled.wait(5):  # a cooperative task stops when told to
            stopped.set()
        return "too late"

    clock = FakeClock()
    started = time.monotonic()
    result = run_execution(machine, {"limit": 1}, execution_id="e", invoke_task=slow, clock=clock)
    assert time.monotonic() - started < 3
    assert result.output == {"limit": 1, "timeout": {"Error": "States.Timeout"}}
    assert clock.sleeps == []  # States.TaskFailed did not match the timeout: no retry
    assert seen[0].timeout_seconds == 1 and seen[0].cancelled.is_set()
    assert stopped.wait(2)


def test_execution_timeout_fails_the_execution_and_cannot_be_caught() -> None:
    machine = StateMachine.load(
        {
            "StartAt": "P",
            "TimeoutSeconds": 10,
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "End": True}}}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                    "End": True,
                },
                "Caught": {"Type": "Pass", "End": True},
            },
        }
    )
    clock = FakeClock()
    result = run_execution(machine, {}, execution_id="e", clock=clock)
    assert (result.status, result.error) == ("FAILED", "States.Timeout")
    assert sum(clock.sleeps) == 10


def test_wait_uses_the_injected_clock() -> None:
    machine = StateMachine.load(
        {
            "StartAt": "W1",
            "States": {
                "W1": {"Type": "Wait", "Seconds": 30, "Next": "W2"},
                "W2": {"Type": "Wait", "TimestampPath": "$.at", "End": True},
            },
        }
    )
    clock = FakeClock()
    at = "2025-01-02T03:05:05Z"  # 60 s after the fake clock's start
    result = run_execution(machine, {"at": at}, execution_id="e", clock=clock)
    assert result.output == {"at": at}
    assert clock.sleeps == [30, 30]
