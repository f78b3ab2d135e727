"""Executing a loaded state machine (JSONPath query language).

Supported: Pass, Task, Choice, Wait, Succeed, Fail, Parallel and inline Map states; InputPath,
Parameters (paths, ``$$`` context paths, intrinsic functions), ResultSelector, ResultPath
(``null`` discards the result, missing parents are created) and OutputPath (``null`` gives
``{}``); Retry (per-retrier attempt counts, backoff, MaxDelaySeconds, FULL jitter) and Catch;
Task TimeoutSeconds/TimeoutSecondsPath and the machine's TimeoutSeconds.

Deliberately not supported (rejected when loading, see :mod:`shared.asl.definition`): the
JSONata query language and its fields (Arguments, Output, Items), workflow variables (Assign),
Distributed Map (ItemReader, ItemBatcher, ResultWriter, failure tolerance, Label,
``ProcessorConfig.Mode: DISTRIBUTED``), MaxConcurrencyPath, HeartbeatSecondsPath and task
Credentials. HeartbeatSeconds is accepted but not enforced. Task resources are opaque strings
handed to the caller's invoker: there are no built-in service integrations. A Task whose Resource
ends with ``.waitForTaskToken`` (the callback pattern) gets ``$$.Task.Token`` in its context object;
the invoker decides what the callback means (whoever holds the token must answer before it returns).

Execution model:

* Parallel branches and Map items run on threads of a fresh ``ThreadPoolExecutor`` per state
  visit (a shared pool deadlocks with nesting), at most ``min(MaxConcurrency, max_workers)``
  at a time. When one fails, the state fails with that error; the others are abandoned at
  their next state boundary and their running tasks see ``context.cancelled`` set.
* Every state visit has a *position* (``Fanout#1/b0/Matte#1``, ``PerItem#1/i3/Work#2``;
  ``Fanout#1@2/...`` for the second attempt of a retried Parallel/Map). A journal that knows a
  position replays the visit's recorded output instead of executing it, which lets a crashed
  execution resume without redoing finished work, even inside an unfinished Parallel or Map.
* Waits, retry backoff and the execution deadline use the injected clock; a Task time limit
  is real time (the invocation runs in a worker thread that is waited on).
* Exceptions that are not ``Exception`` (KeyboardInterrupt, a simulated crash) raised by a
  task or a journal propagate out of :func:`run_execution` unchanged.
"""

from __future__ import annotations

import copy
import os
import random as random_module
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared.asl.choice import choose
from shared.asl.concurrency import CallTimedOut, CancelScope, call_with_timeout
from shared.asl.definition import StateMachine
from shared.asl.errors import (
    STATES_INTRINSIC_FAILURE,
    STATES_NO_CHOICE_MATCHED,
    STATES_RUNTIME,
    STATES_TIMEOUT,
    IntrinsicError,
    PathError,
    StatesError,
    error_from_exception,
)
from shared.asl.intrinsics import evaluate, is_intrinsic, parse_intrinsic
from shared.asl.model import CALLBACK_SUFFIX, ExecutionResult, Journal, TaskContext, TaskInvoker
from shared.asl.paths import apply_result_path, compact_json, select, select_with_context
from shared.asl.retry import RetryBudget, find_catcher
from shared.asl.templates import render
from shared.asl.timestamps import format_timestamp, parse_timestamp
from shared.clock import Clock, SystemClock

Outcome = tuple[Any, str | None]  # a visit's output and the next state (None: the machine ends)
# Only the states that can have a Retry field carry $$.State.RetryCount (as on AWS).
_RETRYABLE = frozenset({"Task", "Parallel", "Map"})


class _ExecutionTimedOut(Exception):
    """The machine's TimeoutSeconds passed; not a state error, so no Catch applies."""


class _Abandoned(Exception):
    """A sibling branch or item failed, so this one stops at a state boundary."""


@dataclass(frozen=True)
class _Scope:
    """Where a (sub-)machine runs: the position prefix of its visits and its cancel scope."""

    prefix: str
    cancel: CancelScope


@dataclass
class _Visit:
    """One visit of one state."""

    name: str
    state: dict[str, Any]
    position: str
    raw_input: Any
    entered_time: str
    scope: _Scope
    retry_count: int = 0


def run_execution(
    machine: StateMachine,
    input: Any,
    *,
    execution_id: str,
    invoke_task: TaskInvoker | None = None,
    clock: Clock | None = None,
    journal: Journal | None = None,
    max_workers: int = os.cpu_count() or 1,
    random: random_module.Random | None = None,
    execution_name: str | None = None,
    state_machine_name: str = "StateMachine",
) -> ExecutionResult:
    """Run ``machine`` on ``input`` to completion and report how it ended.

    State failures (task errors, ``States.*`` errors, the execution timeout) end in a FAILED
    result, never in an exception.

    Raises:
        ValueError: the machine has Task states but no ``invoke_task`` was given.
        BaseException: whatever non-``Exception`` a task invoker or the journal raised.
    """
    if invoke_task is None and machine.task_resources():
        raise ValueError("this state machine has Task states: pass invoke_task")
    runner = _Runner(
        machine.definition,
        copy.deepcopy(input),
        execution_id=execution_id,
        invoke_task=invoke_task,
        clock=clock or SystemClock(),
        journal=journal,
        max_workers=max(1, max_workers),
        rng=random or random_module.Random(),
        execution_name=execution_name or execution_id,
        state_machine_name=state_machine_name,
    )
    return runner.run()


@contextmanager
def _as_states_errors(state_name: str) -> Iterator[None]:
    """Report data errors as the ASL errors of the state being executed."""
    try:
        yield
    except PathError as exc:
        raise StatesError(STATES_RUNTIME, f"An error occurred while executing the state '{state_name}'. {exc}") from exc
    except IntrinsicError as exc:
        raise StatesError(STATES_INTRINSIC_FAILURE, str(exc)) from exc


class _Runner:
    """One execution: holds its settings and runs states, recursively for Parallel/Map."""

    def __init__(
        self,
        definition: dict[str, Any],
        input: Any,
        *,
        execution_id: str,
        invoke_task: TaskInvoker | None,
        clock: Clock,
        journal: Journal | None,
        max_workers: int,
        rng: random_module.Random,
        execution_name: str,
        state_machine_name: str,
    ):
        self.definition = definition
        self.input = input
        self.execution_id = execution_id
        self.invoke_task = invoke_task
        self.clock = clock
        self.journal = journal
        self.max_workers = max_workers
        self.rng = rng
        started = clock.now()
        timeout = definition.get("TimeoutSeconds")
        self.deadline = started.timestamp() + timeout if timeout is not None else None
        self.execution_context = {
            "Id": execution_id,
            "Input": input,
            "Name": execution_name,
            "StartTime": format_timestamp(started),
        }
        self.machine_context = {"Id": state_machine_name, "Name": state_machine_name}
        self.handlers: dict[str, Callable[[_Visit], Outcome]] = {
            "Pass": self._pass,
            "Task": self._task,
            "Choice": self._choice,
            "Wait": self._wait,
            "Succeed": self._succeed,
            "Fail": self._fail,
            "Parallel": self._parallel,
            "Map": self._map,
        }

    def run(self) -> ExecutionResult:
        try:
            output = self.run_machine(self.definition, self.input, _Scope("", CancelScope()))
        except StatesError as err:
            return ExecutionResult("FAILED", None, err.error, err.cause)
        except _ExecutionTimedOut:
            cause = f"The execution ran longer than its TimeoutSeconds ({self.definition['TimeoutSeconds']})"
            return ExecutionResult("FAILED", None, STATES_TIMEOUT, cause)
        return ExecutionResult("SUCCEEDED", output, None, None)

    # -- the state loop ---------------------------------------------------------------------

    def run_machine(self, machine: dict[str, Any], data: Any, scope: _Scope) -> Any:
        """Run a (sub-)machine from StartAt to its end and return its output.

        Raises:
            StatesError: a state failed and nothing caught it.
        """
        visits: dict[str, int] = {}  # per state name: visits so far, so loops get new positions
        name: str = machine["StartAt"]
        while True:
            self._check_alive(scope)
            visits[name] = visits.get(name, 0) + 1
            position = f"{scope.prefix}{name}#{visits[name]}"
            state = machine["States"][name]
            recorded = self.journal.lookup(position) if self.journal else None
            if recorded is not None:
                output, next_state = recorded.output, recorded.next_state
            else:
                output, next_state = self._execute(name, state, data, position, scope)
            if next_state is None:
                return output
            data, name = output, next_state

    def _execute(self, name: str, state: dict[str, Any], data: Any, position: str, scope: _Scope) -> Outcome:
        if self.journal:
            self.journal.entered(position, name, state["Type"])
        visit = _Visit(name, state, position, data, format_timestamp(self.clock.now()), scope)
        with _as_states_errors(name):
            output, next_state = self.handlers[state["Type"]](visit)
        if self.journal:
            self.journal.record(position, name, state["Type"], output, next_state)
        return output, next_state

    def _check_alive(self, scope: _Scope) -> None:
        if self.deadline is not None and self.clock.now().timestamp() >= self.deadline:
            raise _ExecutionTimedOut
        if scope.cancel.aborted:
            raise _Abandoned

    def _remaining(self) -> float | None:
        """Seconds left before the execution deadline, if there is one."""
        return None if self.deadline is None else self.deadline - self.clock.now().timestamp()

    def _sleep(self, seconds: float) -> None:
        """Sleep on the injected clock, but never past the execution deadline."""
        remaining = self._remaining()
        if remaining is not None and seconds >= remaining:
            self.clock.sleep(max(remaining, 0))
            raise _ExecutionTimedOut
        self.clock.sleep(seconds)

    # -- data flow shared by the state types ------------------------------------------------

    def _context(self, visit: _Visit, map_item: tuple[int, Any] | None = None) -> dict[str, Any]:
        state: dict[str, Any] = {"Name": visit.name, "EnteredTime": visit.entered_time}
        if visit.state["Type"] in _RETRYABLE:
            state["RetryCount"] = visit.retry_count
        context: dict[str, Any] = {
            "Execution": self.execution_context,
            "State": state,
            "StateMachine": self.machine_context,
        }
        if map_item is not None:
            context["Map"] = {"Item": {"Index": map_item[0], "Value": map_item[1]}}
        if visit.state["Type"] == "Task" and visit.state["Resource"].endswith(CALLBACK_SUFFIX):
            # The callback pattern's token ($$.Task.Token). The engine only names it (per visit and
            # attempt); what a callback means locally is the task invoker's decision.
            context["Task"] = {"Token": f"{self.execution_id}/{visit.position}/{visit.retry_count}"}
        return context

    @staticmethod
    def _effective_input(visit: _Visit) -> Any:
        """InputPath applied to the raw input (null selects nothing: ``{}``)."""
        path = visit.state.get("InputPath", "$")
        return {} if path is None else select(path, visit.raw_input)

    def _parameters(self, visit: _Visit, data: Any, context: dict[str, Any]) -> Any:
        if "Parameters" not in visit.state:
            return data
        return render(visit.state["Parameters"], data, context, self.rng)

    def _state_output(self, visit: _Visit, result: Any, context: dict[str, Any]) -> Any:
        """ResultSelector, ResultPath (into the raw input) and OutputPath, in that order."""
        if "ResultSelector" in visit.state:
            result = render(visit.state["ResultSelector"], result, context, self.rng)
        combined = apply_result_path(visit.raw_input, result, visit.state.get("ResultPath", "$"))
        return self._output_path(visit, combined)

    @staticmethod
    def _output_path(visit: _Visit, data: Any) -> Any:
        path = visit.state.get("OutputPath", "$")
        return {} if path is None else select(path, data)

    def _with_retry_and_catch(self, visit: _Visit, attempt: Callable[[int], Any]) -> Outcome:
        """Run ``attempt(n)`` (n = 1, 2, ...) under the state's Retry and Catch policies.

        Raises:
            StatesError: the last attempt failed and no catcher matched.
        """
        budget = RetryBudget(visit.state.get("Retry", []))
        number = 1
        while True:
            try:
                with _as_states_errors(visit.name):
                    return attempt(number), visit.state.get("Next")
            except StatesError as err:
                failure = err
            delay = budget.next_delay(failure.error, self.rng) if failure.error is not None else None
            if delay is None:
                return self._catch(visit, failure)
            self._sleep(delay)
            number += 1
            visit.retry_count = number - 1

    @staticmethod
    def _catch(visit: _Visit, err: StatesError) -> Outcome:
        catcher = find_catcher(visit.state.get("Catch", []), err.error) if err.error is not None else None
        if catcher is None:
            raise err
        error_output: dict[str, Any] = {"Error": err.error}
        if err.cause is not None:
            error_output["Cause"] = err.cause
        with _as_states_errors(visit.name):
            output = apply_result_path(visit.raw_input, error_output, catcher.get("ResultPath", "$"))
        return output, catcher["Next"]

    # -- one method per state type ----------------------------------------------------------

    def _pass(self, visit: _Visit) -> Outcome:
        context = self._context(visit)
        data = self._parameters(visit, self._effective_input(visit), context)
        result = visit.state.get("Result", data)
        return self._state_output(visit, result, context), visit.state.get("Next")

    def _task(self, visit: _Visit) -> Outcome:
        data = self._effective_input(visit)

        def attempt(number: int) -> Any:
            context = self._context(visit)
            parameters = self._parameters(visit, data, context)
            result = self._invoke(visit, parameters, number, self._task_timeout(visit, data), context)
            return self._state_output(visit, result, context)

        return self._with_retry_and_catch(visit, attempt)

    def _choice(self, visit: _Visit) -> Outcome:
        data = self._effective_input(visit)
        target = choose(visit.state["Choices"], data, self._context(visit)) or visit.state.get("Default")
        if target is None:
            raise StatesError(STATES_NO_CHOICE_MATCHED, "No Matches!")
        return self._output_path(visit, data), target

    def _wait(self, visit: _Visit) -> Outcome:
        data = self._effective_input(visit)
        self._sleep(self._wait_seconds(visit.state, data))
        return self._output_path(visit, data), visit.state.get("Next")

    def _succeed(self, visit: _Visit) -> Outcome:
        return self._output_path(visit, self._effective_input(visit)), None

    def _fail(self, visit: _Visit) -> Outcome:
        context = self._context(visit)
        error = self._fail_field(visit, "Error", context)
        cause = self._fail_field(visit, "Cause", context)
        raise StatesError(error, cause)

    def _parallel(self, visit: _Visit) -> Outcome:
        data = self._effective_input(visit)

        def attempt(number: int) -> Any:
            context = self._context(visit)
            branch_input = self._parameters(visit, data, context)
            prefix = self._children_prefix(visit, number)
            jobs = [(branch, branch_input, f"{prefix}/b{i}/") for i, branch in enumerate(visit.state["Branches"])]
            results = self._fan_out(jobs, len(jobs), visit.scope)
            return self._state_output(visit, results, context)

        return self._with_retry_and_catch(visit, attempt)

    def _map(self, visit: _Visit) -> Outcome:
        data = self._effective_input(visit)
        state = visit.state
        processor = state.get("ItemProcessor") or state["Iterator"]

        def attempt(number: int) -> Any:
            context = self._context(visit)
            items = self._map_items(visit, data)
            selector = state.get("ItemSelector", state.get("Parameters"))
            prefix = self._children_prefix(visit, number)
            jobs = [
                (
                    processor,
                    item if selector is None else render(selector, data, self._context(visit, (i, item)), self.rng),
                    f"{prefix}/i{i}/",
                )
                for i, item in enumerate(items)
            ]
            limit = state.get("MaxConcurrency", 0) or len(jobs)
            results = self._fan_out(jobs, limit, visit.scope)
            return self._state_output(visit, results, context)

        return self._with_retry_and_catch(visit, attempt)

    # -- helpers of the state types ---------------------------------------------------------

    def _invoke(
        self, visit: _Visit, parameters: Any, attempt: int, timeout: float | None, context: dict[str, Any]
    ) -> Any:
        """Call the task invoker, within the state's and the execution's time limits.

        Raises:
            StatesError: the task failed (its error name) or timed out (``States.Timeout``).
        """
        assert self.invoke_task is not None  # run_execution checked it
        invoke = self.invoke_task
        cancelled = threading.Event()
        task_context = TaskContext(
            execution_id=self.execution_id,
            state_name=visit.name,
            position=visit.position,
            attempt=attempt,
            timeout_seconds=timeout,
            cancelled=cancelled,
            context_object=context,
        )
        # The task gets its own copy: it must not be able to alter the state's input.
        arguments = copy.deepcopy(parameters)

        def call() -> Any:
            return invoke(visit.state["Resource"], arguments, task_context)

        remaining = self._remaining()
        limits = [limit for limit in (timeout, remaining) if limit is not None]
        with visit.scope.cancel.tracking(cancelled):
            try:
                return call() if not limits else call_with_timeout(call, min(limits))
            except CallTimedOut:
                cancelled.set()
                if timeout is None or (remaining is not None and remaining < timeout):
                    raise _ExecutionTimedOut from None
                raise StatesError(STATES_TIMEOUT, None) from None
            except Exception as exc:
                raise StatesError(*error_from_exception(exc)) from exc

    @staticmethod
    def _task_timeout(visit: _Visit, data: Any) -> float | None:
        if "TimeoutSecondsPath" not in visit.state:
            return visit.state.get("TimeoutSeconds")
        path = visit.state["TimeoutSecondsPath"]
        value = select(path, data)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise PathError(
                f"The TimeoutSecondsPath '{path}' must select a positive integer, got {compact_json(value)}"
            )
        return float(value)

    def _wait_seconds(self, state: dict[str, Any], data: Any) -> float:
        if "Seconds" in state:
            return float(state["Seconds"])
        if "SecondsPath" in state:
            seconds = select(state["SecondsPath"], data)
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                raise PathError(
                    f"The SecondsPath '{state['SecondsPath']}' must select a non-negative number, "
                    f"got {compact_json(seconds)}"
                )
            return float(seconds)
        text = state["Timestamp"] if "Timestamp" in state else select(state["TimestampPath"], data)
        moment = parse_timestamp(text)
        if moment is None:
            raise PathError(
                f"The TimestampPath '{state['TimestampPath']}' must select a timestamp, got {compact_json(text)}"
            )
        return max((moment - self.clock.now()).total_seconds(), 0.0)

    def _fail_field(self, visit: _Visit, field: str, context: dict[str, Any]) -> str | None:
        """A Fail state's Error or Cause: literal, path (ErrorPath/CausePath) or intrinsic."""
        if field in visit.state:
            return str(visit.state[field])
        source = visit.state.get(f"{field}Path")
        if source is None:
            return None
        if is_intrinsic(source):
            value = evaluate(parse_intrinsic(source), visit.raw_input, context, self.rng)
        else:
            value = select_with_context(source, visit.raw_input, context)
        if not isinstance(value, str):
            raise PathError(f"The {field}Path '{source}' must select a string, got {compact_json(value)}")
        return value

    @staticmethod
    def _map_items(visit: _Visit, data: Any) -> list[Any]:
        path = visit.state.get("ItemsPath", "$")
        items = select(path, data)
        if not isinstance(items, list):
            raise PathError(f"The ItemsPath '{path}' must select a JSON array, got {compact_json(items)}")
        return items

    @staticmethod
    def _children_prefix(visit: _Visit, attempt: int) -> str:
        # A retried Parallel/Map runs its children afresh: their positions must differ per attempt.
        return visit.position if attempt == 1 else f"{visit.position}@{attempt}"

    def _fan_out(self, jobs: list[tuple[dict[str, Any], Any, str]], limit: int, scope: _Scope) -> list[Any]:
        """Run sub-machines concurrently and return their outputs in job order.

        Raises:
            StatesError: the first job to fail failed with it (the others are abandoned).
            BaseException: a job raised a non-``Exception`` (a crash); it wins over errors.
        """
        if not jobs:
            return []
        cancel = scope.cancel.child()
        with ThreadPoolExecutor(max_workers=max(1, min(limit, self.max_workers))) as pool:
            futures = [
                pool.submit(self.run_machine, machine, data, _Scope(prefix, cancel)) for machine, data, prefix in jobs
            ]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            first = [f for f in futures if f in done and f.exception() is not None]
            if first:
                cancel.abort()
                for future in futures:
                    future.cancel()
                wait(futures)
                raise _failure(futures, first[0])
        return [future.result() for future in futures]


def _failure(futures: list[Future[Any]], first: Future[Any]) -> BaseException:
    """The exception a failed fan-out reports: a crash if any job crashed, else the first error."""
    for future in futures:
        if not future.cancelled():
            exc = future.exception()
            if exc is not None and not isinstance(exc, Exception):
                return exc
    error = first.exception()
    assert error is not None
    return error
