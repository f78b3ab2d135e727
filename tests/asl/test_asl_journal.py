"""Crash and resume: a journal replays finished state visits, even inside Parallel and Map."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from asl_support import FakeClock, InMemoryJournal

from shared.asl import StateMachine, TaskContext, run_execution


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so no state may handle it."""


PIPELINE = StateMachine.load(
    {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Task", "Resource": "prepare", "ResultPath": "$.prepared", "Next": "Fanout"},
            "Fanout": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Matte",
                        "States": {
                            "Matte": {"Type": "Task", "Resource": "matte", "Next": "Pause"},
                            "Pause": {"Type": "Wait", "Seconds": 5, "End": True},
                        },
                    },
                    {
                        "StartAt": "PerItem",
                        "States": {
                            "PerItem": {
                                "Type": "Map",
                                "ItemsPath": "$.items",
                                "ItemProcessor": {
                                    "StartAt": "Work",
                                    "States": {"Work": {"Type": "Task", "Resource": "work", "End": True}},
                                },
                                "End": True,
                            }
                        },
                    },
                ],
                "ResultPath": "$.fanout",
                "Next": "Finish",
            },
            "Finish": {"Type": "Task", "Resource": "finish", "Parameters": {"uuid.$": "States.UUID()"}, "End": True},
        },
    }
)
INPUT = {"items": [1, 2, 3, 4, 5]}


class CountingTasks:
    """Deterministic tasks that count their invocations; one of them can crash once."""

    def __init__(self, crash_on: tuple[str, Any] | None = None) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.crash_on = crash_on
        self._lock = threading.Lock()

    def __call__(self, resource: str, parameters: Any, context: TaskContext) -> Any:
        key = (resource, repr(parameters) if resource == "work" else "")
        with self._lock:
            self.calls[key] += 1
        if self.crash_on == (resource, parameters):
            self.crash_on = None
            raise SimulatedCrash
        if resource == "work":
            return parameters * 10
        if resource == "finish":
            return {"final": parameters, "fanout": "done"}
        return {"from": resource}


def run(tasks: CountingTasks, journal: InMemoryJournal | None, clock: FakeClock, workers: int) -> Any:
    return run_execution(
        PIPELINE,
        INPUT,
        execution_id="exec-1",
        invoke_task=tasks,
        journal=journal,
        clock=clock,
        max_workers=workers,
        random=__import__("random").Random(3),
    )


@pytest.mark.parametrize("workers", [1, 4])
def test_resume_after_crash_skips_finished_work_and_matches_an_uninterrupted_run(workers: int) -> None:
    uninterrupted = run(CountingTasks(), None, FakeClock(), workers)
    assert uninterrupted.status == "SUCCEEDED"

    journal, first = InMemoryJournal(), CountingTasks(crash_on=("work", 3))
    with pytest.raises(SimulatedCrash):
        run(first, journal, FakeClock(), workers)
    assert "Fanout#1" not in journal.completed  # the Parallel itself did not finish
    assert "Prepare#1" in journal.completed
    assert "Fanout#1/b1/PerItem#1/i1/Work#1" in journal.completed

    second, clock = CountingTasks(), FakeClock()
    resumed = run(second, journal, clock, workers)
    assert resumed == uninterrupted
    total = first.calls + second.calls
    assert total[("work", "3")] == 2  # the crashed invocation never completed, so it runs again
    assert all(count == 1 for key, count in total.items() if key != ("work", "3")), total
    assert second.calls[("prepare", "")] == 0
    if workers == 1:  # sequential: the branch before the Map finished before the crash
        assert second.calls[("matte", "")] == 0
        assert clock.sleeps == []  # its Wait is replayed, not slept again


def test_hooks_are_called_in_order_and_not_for_replayed_states() -> None:
    journal = InMemoryJournal()
    run(CountingTasks(), journal, FakeClock(), 1)
    events = journal.events
    assert events[:3] == [("entered", "Prepare#1"), ("record", "Prepare#1"), ("entered", "Fanout#1")]
    assert events[-2:] == [("entered", "Finish#1"), ("record", "Finish#1")]
    # A state is recorded before the next one of its (sub-)machine is entered.
    matte_recorded = events.index(("record", "Fanout#1/b0/Matte#1"))
    assert matte_recorded < events.index(("entered", "Fanout#1/b0/Pause#1"))
    assert events.index(("record", "Fanout#1")) < events.index(("entered", "Finish#1"))

    before = len(journal.events)
    tasks = CountingTasks()
    run(tasks, journal, FakeClock(), 1)
    assert len(journal.events) == before  # a complete replay executes nothing
    assert sum(tasks.calls.values()) == 0


def test_loop_visits_get_their_own_positions() -> None:
    machine = StateMachine.load(
        {
            "StartAt": "Check",
            "States": {
                "Check": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.i", "NumericGreaterThanEquals": 2, "Next": "Done"}],
                    "Default": "Step",
                },
                "Step": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
                "Done": {"Type": "Succeed"},
            },
        }
    )
    journal = InMemoryJournal()
    run_execution(machine, {"i": 0}, execution_id="e", journal=journal, clock=FakeClock())
    assert list(journal.completed) == ["Check#1", "Step#1", "Check#2", "Step#2", "Check#3", "Done#1"]
    assert journal.completed["Step#2"].output == {"i": 2}
    assert journal.completed["Done#1"].next_state is None


def test_retried_parallel_runs_its_branches_under_new_positions() -> None:
    machine = StateMachine.load(
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "flaky", "End": True}}}],
                    "Retry": [{"ErrorEquals": ["Flaky"]}],
                    "End": True,
                }
            },
        }
    )
    failures = [1]

    def flaky(resource: str, parameters: Any, context: TaskContext) -> Any:
        if failures:
            failures.pop()
            raise type("Flaky", (Exception,), {})("first attempt fails")
        return context.position

    journal = InMemoryJournal()
    result = run_execution(machine, {}, execution_id="e", invoke_task=flaky, journal=journal, clock=FakeClock())
    assert result.output == ["P#1@2/b0/T#1"]
    assert "P#1/b0/T#1" not in journal.completed
