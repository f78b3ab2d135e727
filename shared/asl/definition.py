"""Loading and validating a state machine definition.

Everything that can be checked without input is checked here, so that an execution never
discovers a malformed or unsupported definition half-way: field sets per state type, flow
(``Next``/``End``, targets that exist, no unreachable state), paths, payload templates,
intrinsic calls, Choice Rules, retriers and catchers, nested Parallel branches and Map
processors. ``HeartbeatSeconds`` is accepted (it must be below ``TimeoutSeconds``) but is not
enforced by the local interpreter: tasks run in-process and have nobody to heartbeat to.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from shared.asl.choice import validate_rule
from shared.asl.errors import STATES_ALL, AslDefinitionError
from shared.asl.intrinsics import is_intrinsic, parse_intrinsic
from shared.asl.paths import validate_path
from shared.asl.retry import CATCHER_FIELDS, RETRIER_FIELDS
from shared.asl.templates import validate_template
from shared.asl.timestamps import parse_timestamp

_COMMON = frozenset({"Type", "Comment", "QueryLanguage"})
_FLOW = frozenset({"Next", "End"})
_IO = frozenset({"InputPath", "OutputPath"})
_RESULT = frozenset({"Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"})

STATE_FIELDS: dict[str, frozenset[str]] = {
    "Pass": _COMMON | _FLOW | _IO | {"Result", "ResultPath", "Parameters"},
    "Task": _COMMON | _FLOW | _IO | _RESULT | {"Resource", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _FLOW | _IO | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": _COMMON | _FLOW | _IO | _RESULT | {"Branches"},
    "Map": _COMMON
    | _FLOW
    | _IO
    | _RESULT
    | {"ItemProcessor", "Iterator", "ItemsPath", "ItemSelector", "MaxConcurrency"},
}

# Fields that exist in ASL but that this interpreter deliberately does not implement.
_UNSUPPORTED_FIELDS = {
    "Arguments": "JSONata 'Arguments' is not supported (use Parameters)",
    "Output": "JSONata 'Output' is not supported (use OutputPath/ResultSelector)",
    "Assign": "workflow variables ('Assign') are not supported",
    "Items": "JSONata 'Items' is not supported (use ItemsPath)",
    "ItemReader": "Distributed Map ('ItemReader') is not supported",
    "ItemBatcher": "Distributed Map ('ItemBatcher') is not supported",
    "ResultWriter": "Distributed Map ('ResultWriter') is not supported",
    "ToleratedFailurePercentage": "Distributed Map failure tolerance is not supported",
    "ToleratedFailurePercentagePath": "Distributed Map failure tolerance is not supported",
    "ToleratedFailureCount": "Distributed Map failure tolerance is not supported",
    "ToleratedFailureCountPath": "Distributed Map failure tolerance is not supported",
    "Label": "Distributed Map ('Label') is not supported",
    "MaxConcurrencyPath": "'MaxConcurrencyPath' is not supported (use MaxConcurrency)",
    "HeartbeatSecondsPath": "'HeartbeatSecondsPath' is not supported",
    "Credentials": "cross-account task 'Credentials' are not supported",
}
_MACHINE_FIELDS = frozenset({"StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"})
_BRANCH_FIELDS = frozenset({"StartAt", "States", "Comment"})
_PROCESSOR_FIELDS = _BRANCH_FIELDS | {"ProcessorConfig"}


class StateMachine:
    """A loaded, fully validated state machine definition."""

    def __init__(self, definition: dict[str, Any]):
        """Wrap an already validated definition; use :meth:`load` to validate one."""
        self.definition = definition

    @classmethod
    def load(cls, definition: str | dict[str, Any]) -> StateMachine:
        """Parse (when given JSON text) and validate a definition, nested machines included.

        Raises:
            AslDefinitionError: invalid JSON, an invalid definition or an unsupported construct;
                the message names the state and the field.
        """
        if isinstance(definition, str):
            try:
                document = json.loads(definition)
            except ValueError as exc:
                raise AslDefinitionError(f"definition is not valid JSON: {exc}") from exc
        else:
            document = copy.deepcopy(definition)
        if not isinstance(document, dict):
            raise AslDefinitionError("definition must be a JSON object")
        _check_fields(document, _MACHINE_FIELDS, "StateMachine")
        _check_query_language(document, "StateMachine")
        if "TimeoutSeconds" in document:
            _require_int(document["TimeoutSeconds"], "StateMachine: field 'TimeoutSeconds'", minimum=1)
        _validate_machine(document, "")
        return cls(document)

    def task_resources(self) -> list[str]:
        """The ``Resource`` of every Task state, nested Parallel/Map states included."""
        return [state["Resource"] for state in _all_states(self.definition) if state["Type"] == "Task"]


def _all_states(machine: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in machine["States"].values():
        yield state
        for sub in sub_machines(state):
            yield from _all_states(sub)


def sub_machines(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The nested machines of a Parallel (its branches) or Map (its processor) state."""
    if state["Type"] == "Parallel":
        return list(state["Branches"])
    if state["Type"] == "Map":
        return [state.get("ItemProcessor") or state["Iterator"]]
    return []


def _fail(where: str, message: str) -> AslDefinitionError:
    return AslDefinitionError(f"{where}: {message}")


def _check_fields(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for name in obj:
        if name in _UNSUPPORTED_FIELDS:
            raise _fail(where, f"field '{name}': {_UNSUPPORTED_FIELDS[name]}")
        if name not in allowed:
            raise _fail(where, f"unknown field '{name}'")


def _check_query_language(obj: dict[str, Any], where: str) -> None:
    language = obj.get("QueryLanguage", "JSONPath")
    if language == "JSONata":
        raise _fail(where, "field 'QueryLanguage': JSONata is not supported (only JSONPath)")
    if language != "JSONPath":
        raise _fail(where, f"field 'QueryLanguage': unknown query language {language!r}")


def _require_int(value: Any, what: str, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise AslDefinitionError(f"{what} must be an integer >= {minimum}, got {value!r}")


def _validate_machine(machine: dict[str, Any], prefix: str) -> None:
    """Validate the StartAt/States of a machine, a Parallel branch or a Map processor."""
    where = prefix.removesuffix(" > ") or "StateMachine"
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        raise _fail(where, "field 'States' must be a non-empty object")
    start = machine.get("StartAt")
    if not isinstance(start, str):
        raise _fail(where, "field 'StartAt' is required")
    if start not in states:
        raise _fail(where, f"field 'StartAt': no state named '{start}'")
    for name, state in states.items():
        _validate_state(name, state, states, f"{prefix}state '{name}'")
    reachable = _reachable(start, states)
    unreachable = [name for name in states if name not in reachable]
    if unreachable:
        raise _fail(where, f"unreachable states: {', '.join(repr(n) for n in unreachable)}")


def _reachable(start: str, states: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [start]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_transitions(states[name]))
    return seen


def _transitions(state: dict[str, Any]) -> list[str]:
    targets = [rule["Next"] for rule in state.get("Choices", [])]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    targets += [state[key] for key in ("Next", "Default") if key in state]
    return targets


def _validate_state(name: str, state: Any, states: dict[str, Any], where: str) -> None:
    if not isinstance(state, dict):
        raise _fail(where, "a state must be an object")
    state_type = state.get("Type")
    if state_type not in STATE_FIELDS:
        raise _fail(where, f"field 'Type': unknown state type {state_type!r}")
    _check_fields(state, STATE_FIELDS[state_type], where)
    _check_query_language(state, where)
    _validate_flow(state, states, where)
    _validate_io(state, where)
    for retrier in _list_field(state, "Retry", where):
        _validate_retrier(retrier, where)
    catchers = _list_field(state, "Catch", where)
    for catcher in catchers:
        _validate_catcher(catcher, states, where)
    _validate_error_lists([*_list_field(state, "Retry", where)], where, "Retry")
    _validate_error_lists(catchers, where, "Catch")
    if state_type in _VALIDATORS:
        _VALIDATORS[state_type](state, where, states)


def _list_field(state: dict[str, Any], field: str, where: str) -> list[dict[str, Any]]:
    value = state.get(field, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _fail(where, f"field '{field}' must be an array of objects")
    return value


def _validate_flow(state: dict[str, Any], states: dict[str, Any], where: str) -> None:
    state_type = state["Type"]
    if state_type in ("Choice", "Succeed", "Fail"):
        return  # their field sets already exclude Next/End
    has_next, has_end = "Next" in state, "End" in state
    if has_next == has_end:
        raise _fail(where, "exactly one of 'Next' and 'End' is required")
    if has_end and state["End"] is not True:
        raise _fail(where, "field 'End' must be true")
    if has_next:
        _check_target(state["Next"], states, where, "Next")


def _check_target(target: Any, states: dict[str, Any], where: str, field: str) -> None:
    if not isinstance(target, str) or target not in states:
        raise _fail(where, f"field '{field}': no state named {target!r}")


def _validate_io(state: dict[str, Any], where: str) -> None:
    for field in ("InputPath", "OutputPath", "ResultPath"):
        if field in state and state[field] is not None:
            _check_path(state[field], where, field, reference_only=field == "ResultPath")
    for field in ("Parameters", "ResultSelector", "ItemSelector"):
        if field not in state:
            continue
        if field != "Parameters" and not isinstance(state[field], dict):
            raise _fail(where, f"field '{field}' must be an object")
        try:
            validate_template(state[field])
        except ValueError as exc:
            raise _fail(where, f"field '{field}': {exc}") from exc


def _check_path(path: Any, where: str, field: str, *, reference_only: bool = False) -> None:
    if not isinstance(path, str):
        raise _fail(where, f"field '{field}' must be a path string")
    try:
        validate_path(path[1:] if path.startswith("$$") else path, reference_only=reference_only)
    except ValueError as exc:
        raise _fail(where, f"field '{field}': {exc}") from exc


def _validate_retrier(retrier: dict[str, Any], where: str) -> None:
    here = f"{where}: Retry"
    _check_fields(retrier, RETRIER_FIELDS, here)
    _check_error_equals(retrier, here)
    if "IntervalSeconds" in retrier:
        _require_int(retrier["IntervalSeconds"], f"{here} field 'IntervalSeconds'", minimum=1)
    if "MaxAttempts" in retrier:
        _require_int(retrier["MaxAttempts"], f"{here} field 'MaxAttempts'", minimum=0)
    if "MaxDelaySeconds" in retrier:
        _require_int(retrier["MaxDelaySeconds"], f"{here} field 'MaxDelaySeconds'", minimum=1)
    rate = retrier.get("BackoffRate", 2.0)
    if not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 1.0:
        raise _fail(here, f"field 'BackoffRate' must be a number >= 1.0, got {rate!r}")
    if retrier.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
        raise _fail(here, "field 'JitterStrategy' must be FULL or NONE")


def _validate_catcher(catcher: dict[str, Any], states: dict[str, Any], where: str) -> None:
    here = f"{where}: Catch"
    _check_fields(catcher, CATCHER_FIELDS, here)
    _check_error_equals(catcher, here)
    _check_target(catcher.get("Next"), states, here, "Next")
    if catcher.get("ResultPath") is not None:
        _check_path(catcher["ResultPath"], here, "ResultPath", reference_only=True)


def _check_error_equals(spec: dict[str, Any], where: str) -> None:
    names = spec.get("ErrorEquals")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _fail(where, "field 'ErrorEquals' must be a non-empty array of error names")
    if STATES_ALL in names and len(names) > 1:
        raise _fail(where, "field 'ErrorEquals': States.ALL must appear alone")


def _validate_error_lists(specs: list[dict[str, Any]], where: str, field: str) -> None:
    for spec in specs[:-1]:
        if STATES_ALL in spec["ErrorEquals"]:
            raise _fail(where, f"field '{field}': States.ALL must be in the last entry")


def _validate_task(state: dict[str, Any], where: str, _states: dict[str, Any]) -> None:
    if not isinstance(state.get("Resource"), str) or not state["Resource"]:
        raise _fail(where, "field 'Resource' must be a non-empty string")
    _exclusive(state, where, "TimeoutSeconds", "TimeoutSecondsPath")
    if "TimeoutSeconds" in state:
        _require_int(state["TimeoutSeconds"], f"{where}: field 'TimeoutSeconds'", minimum=1)
    if "TimeoutSecondsPath" in state:
        _check_path(state["TimeoutSecondsPath"], where, "TimeoutSecondsPath", reference_only=True)
    if "HeartbeatSeconds" in state:
        _require_int(state["HeartbeatSeconds"], f"{where}: field 'HeartbeatSeconds'", minimum=1)
        if "TimeoutSeconds" in state and state["HeartbeatSeconds"] >= state["TimeoutSeconds"]:
            raise _fail(where, "field 'HeartbeatSeconds' must be smaller than 'TimeoutSeconds'")


def _validate_choice(state: dict[str, Any], where: str, states: dict[str, Any]) -> None:
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise _fail(where, "field 'Choices' must be a non-empty array of Choice Rules")
    for index, rule in enumerate(choices):
        try:
            validate_rule(rule, top_level=True)
        except ValueError as exc:
            raise _fail(where, f"field 'Choices[{index}]': {exc}") from exc
        _check_target(rule["Next"], states, where, f"Choices[{index}].Next")
    if "Default" in state:
        _check_target(state["Default"], states, where, "Default")


def _validate_wait(state: dict[str, Any], where: str, _states: dict[str, Any]) -> None:
    given = [f for f in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if f in state]
    if len(given) != 1:
        raise _fail(where, "exactly one of Seconds, SecondsPath, Timestamp, TimestampPath is required")
    (field,) = given
    if field == "Seconds":
        _require_int(state["Seconds"], f"{where}: field 'Seconds'", minimum=0)
    elif field == "Timestamp":
        if parse_timestamp(state["Timestamp"]) is None:
            raise _fail(where, f"field 'Timestamp' is not an RFC 3339 timestamp: {state['Timestamp']!r}")
    else:
        _check_path(state[field], where, field, reference_only=True)


def _validate_fail(state: dict[str, Any], where: str, _states: dict[str, Any]) -> None:
    for literal, path in (("Error", "ErrorPath"), ("Cause", "CausePath")):
        _exclusive(state, where, literal, path)
        if literal in state and not isinstance(state[literal], str):
            raise _fail(where, f"field '{literal}' must be a string")
        if path in state:
            value = state[path]
            if isinstance(value, str) and is_intrinsic(value):
                try:
                    parse_intrinsic(value)
                except ValueError as exc:
                    raise _fail(where, f"field '{path}': {exc}") from exc
            else:
                _check_path(value, where, path)


def _validate_parallel(state: dict[str, Any], where: str, _states: dict[str, Any]) -> None:
    branches = state.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise _fail(where, "field 'Branches' must be a non-empty array")
    for index, branch in enumerate(branches):
        _validate_sub_machine(branch, _BRANCH_FIELDS, f"{where} > branch {index}")


def _validate_map(state: dict[str, Any], where: str, _states: dict[str, Any]) -> None:
    _exclusive(state, where, "ItemProcessor", "Iterator", required=True)
    _exclusive(state, where, "ItemSelector", "Parameters")
    if "ItemsPath" in state:
        _check_path(state["ItemsPath"], where, "ItemsPath", reference_only=True)
    if "MaxConcurrency" in state:
        _require_int(state["MaxConcurrency"], f"{where}: field 'MaxConcurrency'", minimum=0)
    if "Iterator" in state:
        _validate_sub_machine(state["Iterator"], _BRANCH_FIELDS, f"{where} > Iterator")
        return
    processor = state["ItemProcessor"]
    _validate_sub_machine(processor, _PROCESSOR_FIELDS, f"{where} > ItemProcessor")
    config = processor.get("ProcessorConfig", {})
    if not isinstance(config, dict):
        raise _fail(where, "field 'ItemProcessor.ProcessorConfig' must be an object")
    if config.get("Mode", "INLINE") == "DISTRIBUTED":
        raise _fail(where, "field 'ItemProcessor.ProcessorConfig': Distributed Map is not supported")
    if set(config) - {"Mode"} or config.get("Mode", "INLINE") != "INLINE":
        raise _fail(where, f"field 'ItemProcessor.ProcessorConfig': unsupported settings {config!r}")


def _validate_sub_machine(machine: Any, allowed: frozenset[str], where: str) -> None:
    if not isinstance(machine, dict):
        raise _fail(where, "must be an object with StartAt and States")
    _check_fields(machine, allowed, where)
    _validate_machine(machine, f"{where} > ")


def _exclusive(state: dict[str, Any], where: str, first: str, second: str, *, required: bool = False) -> None:
    count = (first in state) + (second in state)
    if count > 1:
        raise _fail(where, f"fields '{first}' and '{second}' are mutually exclusive")
    if required and count == 0:
        raise _fail(where, f"one of '{first}' and '{second}' is required")


_VALIDATORS: dict[str, Callable[[dict[str, Any], str, dict[str, Any]], None]] = {
    "Task": _validate_task,
    "Choice": _validate_choice,
    "Wait": _validate_wait,
    "Fail": _validate_fail,
    "Parallel": _validate_parallel,
    "Map": _validate_map,
}
