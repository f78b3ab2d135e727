"""The conformance table: small ASL documents with the exact result the spec defines.

``test_asl_conformance`` runs every case on the local interpreter; ``test_asl_moto`` runs the
cases without Task states on moto's Step Functions executor as well and compares. A case whose
``moto`` field is set is a documented moto deviation (run as a strict xfail there).

Expected values come from the AWS Step Functions developer guide's own examples where it has
them (input/output processing, ResultPath, intrinsic functions, Choice, error handling).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from shared.asl import TaskContext, TaskFailedError

RUNTIME = "States.Runtime"
EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:conformance:run-1"
EXECUTION_NAME = "run-1"
MACHINE_NAME = "conformance"

# moto deviations, each named once so the table can refer to them.
MOTO_INTRINSIC_ERROR = (
    "moto bug: a failing intrinsic function is reported as States.Runtime with a Python message, "
    "not States.IntrinsicFailure"
)
MOTO_NO_CHOICE = "moto bug: a Choice without match and Default fails with a Python RuntimeError message"
MOTO_MISSING_VARIABLE = (
    "moto bug: a Choice Variable naming a missing field compares false instead of failing with States.Runtime"
)
MOTO_TIMESTAMP = (
    "moto bug: timestamps are parsed with strptime('%Y-%m-%dT%H:%M:%SZ'): no fractions, no offsets, "
    "and a lowercase 't' is accepted"
)
MOTO_FORMAT_OBJECT = "moto bug: States.Format renders objects Java-style instead of failing as the spec requires"
MOTO_STRING_OUTPUT = "moto bug: describe_execution returns a top-level string output without JSON-encoding it"
MOTO_UTF16 = "moto bug: strings are ordered by code point, not by UTF-16 code unit as Java's compareTo (AWS)"
MOTO_FNMATCH = "moto bug: StringMatches uses fnmatch, so '?' and '[...]' are wildcards and '\\*' is not an escape"
MOTO_FLOAT_LITERAL = "moto bug: its intrinsic parser rejects float literal arguments (AttributeError at create time)"
MOTO_ESCAPES = "moto bug: escaped characters (\\' \\{ \\}) in intrinsic string literals are mangled"
MOTO_NULL_ARGUMENT = "moto bug: States.Array drops null literal arguments (the spec's example keeps them)"
MOTO_INDEX_PATH = "moto bug: a definite path starting with an array index ($[0].v) selects a one-element list"
MOTO_MAP_ITEMS = "moto bug: a non-array ItemsPath fails with the JSONata error States.QueryEvaluationError"


@dataclass(frozen=True)
class Case:
    id: str
    definition: dict[str, Any]
    input: Any = field(default_factory=dict)
    output: Any = None
    error: str | None = None
    cause: str | None = None  # checked when set
    moto: str | None = None  # a known moto deviation (reason), or None when moto must agree


def canonical(value: Any) -> str:
    """JSON text that tells 1 from 1.0 and true from 1, unlike ``==``."""
    return json.dumps(value, sort_keys=True)


def single(state: dict[str, Any]) -> dict[str, Any]:
    """A machine made of one state that ends it."""
    terminal = {} if state["Type"] in ("Succeed", "Fail", "Choice") else {"End": True}
    return {"StartAt": "S", "States": {"S": {**state, **terminal}}}


def params(template: dict[str, Any]) -> dict[str, Any]:
    return single({"Type": "Pass", "Parameters": template})


def intrinsic(expression: str) -> dict[str, Any]:
    """A Pass state whose output is ``{"r": <expression>}``."""
    return params({"r.$": expression})


def choice(rule: dict[str, Any]) -> dict[str, Any]:
    """A machine that outputs true when ``rule`` matches and false otherwise."""
    return {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": True, "End": True},
            "No": {"Type": "Pass", "Result": False, "End": True},
        },
    }


def branch(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A sub-machine running ``states`` in order."""
    names = [name for name, _ in states]
    body = {}
    for index, (name, state) in enumerate(states):
        flow = {"Next": names[index + 1]} if index + 1 < len(names) else {}
        if not flow and state["Type"] not in ("Succeed", "Fail"):
            flow = {"End": True}
        body[name] = {**state, **flow}
    return {"StartAt": names[0], "States": body}


# --------------------------------------------------------------------------- task resources


def _sleepy_echo(parameters: Any, _context: TaskContext) -> Any:
    time.sleep(parameters["delay"])
    return parameters["value"]


def _raise(parameters: Any, _context: TaskContext) -> Any:
    raise TaskFailedError(parameters["error"], parameters.get("cause"))


TASKS: dict[str, Any] = {
    "echo": lambda parameters, _context: parameters,
    "hello": lambda parameters, _context: "Hello, AWS Step Functions!",
    # The createCluster result of the guide's ResultSelector example (abridged).
    "emr": lambda parameters, _context: {
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "ClusterId": "AKIAIOSFODNN7EXAMPLE"},
    },
    "sleepy_echo": _sleepy_echo,
    "raise": _raise,
    "context": lambda parameters, context: {"state": context.state_name, "position": context.position},
}


def invoke(resource: str, parameters: Any, context: TaskContext) -> Any:
    return TASKS[resource](parameters, context)


# --------------------------------------------------------------------------------- data flow

_GUIDE_INPUT = {
    "comment": "This is a test of the input and output of a Task state.",
    "details": "Default example",
    "who": "AWS Step Functions",
}
_HELLO = "Hello, AWS Step Functions!"

DATA_FLOW = [
    Case(
        "guide-inputpath-resultpath-outputpath",
        single(
            {
                "Type": "Task",
                "Resource": "hello",
                "InputPath": "$.lambda",
                "ResultPath": "$.data.lambdaresult",
                "OutputPath": "$.data",
            }
        ),
        {
            "comment": "An input comment.",
            "data": {"val1": 23, "val2": 17},
            "extra": "foo",
            "lambda": {"who": "AWS Step Functions"},
        },
        {"val1": 23, "val2": 17, "lambdaresult": _HELLO},
    ),
    Case(
        "pass-inputpath-resultpath-outputpath",
        single(
            {
                "Type": "Pass",
                "InputPath": "$.lambda",
                "Result": _HELLO,
                "ResultPath": "$.data.lambdaresult",
                "OutputPath": "$.data",
            }
        ),
        {"comment": "c", "data": {"val1": 23, "val2": 17}, "lambda": {"who": "x"}},
        {"val1": 23, "val2": 17, "lambdaresult": _HELLO},
    ),
    Case(
        "guide-resultpath-default-replaces",
        single({"Type": "Pass", "Result": _HELLO}),
        _GUIDE_INPUT,
        _HELLO,
        moto=MOTO_STRING_OUTPUT,
    ),
    Case(
        "guide-resultpath-append",
        single({"Type": "Pass", "Result": _HELLO, "ResultPath": "$.taskresult"}),
        _GUIDE_INPUT,
        {**_GUIDE_INPUT, "taskresult": _HELLO},
    ),
    Case(
        "guide-resultpath-child-node",
        single({"Type": "Pass", "Result": _HELLO, "ResultPath": "$.strings.lambdaresult"}),
        {"comment": "An input comment.", "strings": {"string1": "foo", "string2": "bar"}, "who": "x"},
        {
            "comment": "An input comment.",
            "strings": {"string1": "foo", "string2": "bar", "lambdaresult": _HELLO},
            "who": "x",
        },
    ),
    Case(
        "guide-resultpath-update-node",
        single({"Type": "Pass", "Result": _HELLO, "ResultPath": "$.comment"}),
        _GUIDE_INPUT,
        {**_GUIDE_INPUT, "comment": _HELLO},
    ),
    Case(
        "resultpath-null-discards-result",
        single({"Type": "Pass", "Result": {"big": "result"}, "ResultPath": None}),
        {"keep": 1},
        {"keep": 1},
    ),
    Case(
        "resultpath-creates-missing-parents",
        single({"Type": "Pass", "Result": 7, "ResultPath": "$.a.b.c"}),
        {"x": 1},
        {"x": 1, "a": {"b": {"c": 7}}},
    ),
    Case(
        "resultpath-into-non-object-fails",
        single({"Type": "Pass", "Result": 7, "ResultPath": "$.a.b"}),
        {"a": "text"},
        error=RUNTIME,
    ),
    Case("outputpath-null-gives-empty-object", single({"Type": "Pass", "OutputPath": None}), {"a": 1}, {}),
    Case("inputpath-null-gives-empty-object", single({"Type": "Pass", "InputPath": None}), {"a": 1}, {}),
    Case(
        "inputpath-missing-field-fails",
        single({"Type": "Pass", "InputPath": "$.missing"}),
        {"a": 1},
        error=RUNTIME,
        cause="An error occurred while executing the state 'S'. "
        "Invalid path '$.missing' : No results for path: $['missing']",
    ),
    Case(
        "outputpath-missing-field-fails",
        single({"Type": "Pass", "OutputPath": "$.missing"}),
        {"a": 1},
        error=RUNTIME,
        cause="An error occurred while executing the state 'S'. "
        "Invalid path '$.missing' : No results for path: $['missing']",
    ),
    Case(
        "parameters-missing-path-fails",
        params({"x.$": "$.missing"}),
        {"a": 1},
        error=RUNTIME,
        cause="An error occurred while executing the state 'S'. The JSONPath '$.missing' specified for "
        "the field 'x.$' could not be found in the input '{\"a\":1}'",
    ),
    Case(
        "parameters-static-paths-nested-and-arrays",
        params(
            {
                "static": "s",
                "picked.$": "$.a.b",
                "nested": {"deep.$": "$.list[1]", "n": [1, {"inner.$": "$.a"}]},
                "quoted.$": "$['key with space']",
            }
        ),
        {"a": {"b": 2}, "list": ["x", "y"], "key with space": True},
        {"static": "s", "picked": 2, "nested": {"deep": "y", "n": [1, {"inner": {"b": 2}}]}, "quoted": True},
    ),
    Case(
        "parameters-indefinite-paths-select-lists",
        params({"ids.$": "$.items[*].id", "big.$": "$.items[?(@.n > 1)].id", "all.$": "$..n"}),
        {"items": [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 3}]},
        {"ids": ["a", "b", "c"], "big": ["b", "c"], "all": [1, 2, 3]},
    ),
    Case(
        "parameters-context-object",
        params(
            {
                "state.$": "$$.State.Name",
                "machine.$": "$$.StateMachine.Name",
                "execution.$": "$$.Execution.Name",
                "input.$": "$$.Execution.Input",
            }
        ),
        {"a": 1},
        {"state": "S", "machine": MACHINE_NAME, "execution": EXECUTION_NAME, "input": {"a": 1}},
    ),
    Case(
        "parameters-then-result-selector-on-task",
        single(
            {
                "Type": "Task",
                "Resource": "emr",
                "Parameters": {"Name": "MyWorkflowCluster", "id.$": "$.id"},
                "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
                "ResultPath": "$.EMROutput",
            }
        ),
        {"id": 1},
        {"id": 1, "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}},
    ),
    Case(
        "task-sees-parameters-after-inputpath",
        single({"Type": "Task", "Resource": "echo", "InputPath": "$.in", "Parameters": {"got.$": "$"}}),
        {"in": {"v": 1}, "other": 2},
        {"got": {"v": 1}},
    ),
    Case(
        "pass-parameters-resultpath-outputpath",
        single(
            {
                "Type": "Pass",
                "InputPath": "$.in",
                "Parameters": {"doubled.$": "States.Array($.v, $.v)"},
                "ResultPath": "$.out",
                "OutputPath": "$.out",
            }
        ),
        {"in": {"v": 3}},
        {"doubled": [3, 3]},
    ),
]

# ------------------------------------------------------------------------------------ choice


def _choice_cases() -> list[Case]:
    rows: list[tuple[str, dict[str, Any], Any, bool, str | None]] = [
        ("string-equals", {"StringEquals": "abc"}, "abc", True, None),
        ("string-equals-mismatch", {"StringEquals": "abc"}, "abd", False, None),
        ("string-equals-number-is-false", {"StringEquals": "1"}, 1, False, None),
        ("string-less-than", {"StringLessThan": "b"}, "a", True, None),
        ("string-less-than-utf16-order", {"StringLessThan": "\uffff"}, "\U0001f600", True, MOTO_UTF16),
        ("string-greater-than", {"StringGreaterThan": "a"}, "b", True, None),
        ("string-less-than-equals", {"StringLessThanEquals": "a"}, "a", True, None),
        ("string-greater-than-equals", {"StringGreaterThanEquals": "b"}, "a", False, None),
        ("string-matches-wildcard", {"StringMatches": "log-*.txt"}, "log-2024-01.txt", True, None),
        ("string-matches-no-match", {"StringMatches": "log-*.txt"}, "log-2024.csv", False, None),
        ("string-matches-escaped-star", {"StringMatches": "a\\*b"}, "a*b", True, MOTO_FNMATCH),
        ("string-matches-escaped-star-literal", {"StringMatches": "a\\*b"}, "axb", False, None),
        ("string-matches-question-mark-is-literal", {"StringMatches": "a?c"}, "abc", False, MOTO_FNMATCH),
        ("numeric-equals-int-float", {"NumericEquals": 1}, 1.0, True, None),
        ("numeric-equals-string-is-false", {"NumericEquals": 1}, "1", False, None),
        ("numeric-less-than", {"NumericLessThan": 10}, 9.5, True, None),
        ("numeric-greater-than", {"NumericGreaterThan": 10}, 10, False, None),
        ("numeric-less-than-equals", {"NumericLessThanEquals": 10}, 10, True, None),
        ("numeric-greater-than-equals", {"NumericGreaterThanEquals": -1}, -1, True, None),
        ("boolean-equals", {"BooleanEquals": False}, False, True, None),
        ("boolean-equals-number-is-false", {"BooleanEquals": True}, 1, False, None),
        ("timestamp-equals", {"TimestampEquals": "2001-01-01T12:00:00Z"}, "2001-01-01T12:00:00Z", True, None),
        (
            "timestamp-equals-other-offset",
            {"TimestampEquals": "2001-01-01T12:00:00Z"},
            "2001-01-01T13:00:00+01:00",
            True,
            MOTO_TIMESTAMP,
        ),
        (
            "timestamp-less-than-fractional",
            {"TimestampLessThan": "2001-01-01T12:00:00.5Z"},
            "2001-01-01T12:00:00.25Z",
            True,
            MOTO_TIMESTAMP,
        ),
        (
            "timestamp-greater-than",
            {"TimestampGreaterThan": "2001-01-01T12:00:00Z"},
            "2002-01-01T00:00:00Z",
            True,
            None,
        ),
        (
            "timestamp-less-than-equals",
            {"TimestampLessThanEquals": "2001-01-01T12:00:00Z"},
            "2001-01-01T12:00:00Z",
            True,
            None,
        ),
        (
            "timestamp-greater-than-equals",
            {"TimestampGreaterThanEquals": "2001-01-01T12:00:00Z"},
            "2000-01-01T12:00:00Z",
            False,
            None,
        ),
        ("timestamp-not-a-timestamp-is-false", {"TimestampEquals": "2001-01-01T12:00:00Z"}, "yesterday", False, None),
        ("is-null", {"IsNull": True}, None, True, None),
        ("is-null-false", {"IsNull": True}, 0, False, None),
        ("is-numeric", {"IsNumeric": True}, 1.5, True, None),
        ("is-numeric-bool-is-not", {"IsNumeric": True}, True, False, None),
        ("is-string", {"IsString": True}, "x", True, None),
        ("is-string-negated", {"IsString": False}, 3, True, None),
        ("is-boolean", {"IsBoolean": True}, False, True, None),
        ("is-timestamp", {"IsTimestamp": True}, "2016-03-14T01:59:00Z", True, None),
        ("is-timestamp-lowercase-t-is-not", {"IsTimestamp": True}, "2016-03-14t01:59:00Z", False, MOTO_TIMESTAMP),
    ]
    cases = [
        Case(f"choice-{name}", choice({"Variable": "$.v", **rule}), {"v": value}, expected, moto=moto)
        for name, rule, value, expected, moto in rows
    ]
    path_rows: list[tuple[str, str, Any, Any, bool]] = [
        ("StringEqualsPath", "string-equals-path", "a", "a", True),
        ("StringLessThanPath", "string-less-than-path", "a", "b", True),
        ("StringGreaterThanPath", "string-greater-than-path", "a", "b", False),
        ("StringLessThanEqualsPath", "string-less-than-equals-path", "b", "b", True),
        ("StringGreaterThanEqualsPath", "string-greater-than-equals-path", "c", "b", True),
        ("NumericEqualsPath", "numeric-equals-path", 2, 2.0, True),
        ("NumericLessThanPath", "numeric-less-than-path", 1, 2, True),
        ("NumericGreaterThanPath", "numeric-greater-than-path", 1, 2, False),
        ("NumericLessThanEqualsPath", "numeric-less-than-equals-path", 3, 2, False),
        ("NumericGreaterThanEqualsPath", "numeric-greater-than-equals-path", 2, 2, True),
        ("BooleanEqualsPath", "boolean-equals-path", True, True, True),
        ("TimestampEqualsPath", "timestamp-equals-path", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", True),
        ("TimestampLessThanPath", "timestamp-less-than-path", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", True),
        (
            "TimestampGreaterThanPath",
            "timestamp-greater-than-path",
            "2020-01-01T00:00:00Z",
            "2021-01-01T00:00:00Z",
            False,
        ),
        ("TimestampLessThanEqualsPath", "timestamp-lte-path", "2021-01-01T00:00:00Z", "2021-01-01T00:00:00Z", True),
        ("TimestampGreaterThanEqualsPath", "timestamp-gte-path", "2022-01-01T00:00:00Z", "2021-01-01T00:00:00Z", True),
    ]
    cases += [
        Case(f"choice-{name}", choice({"Variable": "$.v", operator: "$.w"}), {"v": v, "w": w}, expected)
        for operator, name, v, w, expected in path_rows
    ]
    cases += [
        Case("choice-is-present", choice({"Variable": "$.v", "IsPresent": True}), {"v": None}, True),
        Case("choice-is-present-missing", choice({"Variable": "$.v", "IsPresent": True}), {}, False),
        Case("choice-is-present-false-missing", choice({"Variable": "$.v", "IsPresent": False}), {}, True),
        Case(
            "choice-and",
            choice(
                {
                    "And": [
                        {"Variable": "$.v", "NumericGreaterThanEquals": 20},
                        {"Variable": "$.v", "NumericLessThan": 30},
                    ]
                }
            ),
            {"v": 22},
            True,
        ),
        Case(
            "choice-or",
            choice({"Or": [{"Variable": "$.v", "StringEquals": "x"}, {"Variable": "$.v", "StringEquals": "y"}]}),
            {"v": "y"},
            True,
        ),
        Case(
            "choice-not", choice({"Not": {"Variable": "$.type", "StringEquals": "Private"}}), {"type": "Private"}, False
        ),
        Case(
            "choice-context-variable",
            choice({"Variable": "$$.State.Name", "StringEquals": "C"}),
            {},
            True,
        ),
        Case(
            "choice-missing-variable-fails",
            choice({"Variable": "$.missing", "StringEquals": "x"}),
            {},
            error=RUNTIME,
            cause="An error occurred while executing the state 'C'. Invalid path '$.missing': "
            "The choice state's condition path references an invalid value.",
            moto=MOTO_MISSING_VARIABLE,
        ),
        Case(
            "choice-first-match-wins-and-output-path",
            {
                "StartAt": "C",
                "States": {
                    "C": {
                        "Type": "Choice",
                        "InputPath": "$.in",
                        "OutputPath": "$.v",
                        "Choices": [
                            {"Variable": "$.v", "NumericGreaterThan": 1, "Next": "First"},
                            {"Variable": "$.v", "NumericGreaterThan": 0, "Next": "Second"},
                        ],
                    },
                    "First": {"Type": "Pass", "Parameters": {"branch": "first", "v.$": "$"}, "End": True},
                    "Second": {"Type": "Pass", "Result": "second", "End": True},
                },
            },
            {"in": {"v": 5}},
            {"branch": "first", "v": 5},
        ),
        Case(
            "choice-no-match-without-default-fails",
            {
                "StartAt": "C",
                "States": {
                    "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "Done"}]},
                    "Done": {"Type": "Succeed"},
                },
            },
            {"v": 2},
            error="States.NoChoiceMatched",
            moto=MOTO_NO_CHOICE,
        ),
        Case(
            "choice-loop-with-math-add",
            {
                "StartAt": "Check",
                "States": {
                    "Check": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.i", "NumericGreaterThanEquals": 3, "Next": "Done"}],
                        "Default": "Increment",
                    },
                    "Increment": {
                        "Type": "Pass",
                        "Parameters": {"i.$": "States.MathAdd($.i, 1)", "seen.$": "States.Array($.seen, $.i)"},
                        "Next": "Check",
                    },
                    "Done": {"Type": "Succeed"},
                },
            },
            {"i": 0, "seen": []},
            {"i": 3, "seen": [[[[], 0], 1], 2]},
        ),
    ]
    return cases


CHOICE = _choice_cases()

# -------------------------------------------------------------------------------- intrinsics

INTRINSICS = [
    Case(
        "format-guide",
        intrinsic("States.Format('Hello, my name is {}.', $.name)"),
        {"name": "Arnav"},
        {"r": "Hello, my name is Arnav."},
    ),
    Case(
        "format-template-from-path",
        intrinsic("States.Format($.template, $.name)"),
        {"name": "Arnav", "template": "Hello, my name is {}."},
        {"r": "Hello, my name is Arnav."},
    ),
    Case(
        "format-non-string-values",
        intrinsic("States.Format('{} {} {} {}', 2020, 1.5, true, null)"),
        {},
        {"r": "2020 1.5 true null"},
        moto=MOTO_FLOAT_LITERAL,
    ),
    Case(
        "format-escapes",
        intrinsic("States.Format('It\\'s {} \\{literal\\} a\\\\b', $.x)"),
        {"x": "ok"},
        {"r": "It's ok {literal} a\\b"},
        moto=MOTO_ESCAPES,
    ),
    Case(
        "format-wrong-argument-count-fails",
        intrinsic("States.Format('{} and {}', $.x)"),
        {"x": 1},
        error="States.IntrinsicFailure",
        moto=MOTO_INTRINSIC_ERROR,
    ),
    Case(
        "format-object-argument-fails",
        intrinsic("States.Format('v={}', $.x)"),
        {"x": {"a": 1}},
        error="States.IntrinsicFailure",
        moto=MOTO_FORMAT_OBJECT,
    ),
    Case(
        "string-to-json",
        intrinsic("States.StringToJson($.escapedJsonString)"),
        {"escapedJsonString": '{"foo": "bar"}'},
        {"r": {"foo": "bar"}},
    ),
    Case(
        "json-to-string",
        intrinsic("States.JsonToString($.unescapedJson)"),
        {"unescapedJson": {"foo": "bar", "n": [1, 2]}},
        {"r": '{"foo":"bar","n":[1,2]}'},
    ),
    Case(
        "array",
        intrinsic("States.Array('Foo', 2020, $.someJson, null)"),
        {"someJson": {"random": "abcdefg"}},
        {"r": ["Foo", 2020, {"random": "abcdefg"}, None]},
        moto=MOTO_NULL_ARGUMENT,
    ),
    Case(
        "array-partition",
        intrinsic("States.ArrayPartition($.inputArray,4)"),
        {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
        {"r": [[1, 2, 3, 4], [5, 6, 7, 8], [9]]},
    ),
    Case(
        "array-contains",
        intrinsic("States.ArrayContains($.inputArray, $.lookingFor)"),
        {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5},
        {"r": True},
    ),
    Case(
        "array-contains-object",
        intrinsic("States.ArrayContains($.inputArray, $.lookingFor)"),
        {"inputArray": [{"a": 1}, {"a": 2}], "lookingFor": {"a": 2}},
        {"r": True},
    ),
    Case("array-range", intrinsic("States.ArrayRange(1, 9, 2)"), {}, {"r": [1, 3, 5, 7, 9]}),
    Case(
        "array-get-item",
        intrinsic("States.ArrayGetItem($.inputArray, $.index)"),
        {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5},
        {"r": 6},
    ),
    Case(
        "array-get-item-out-of-range-fails",
        intrinsic("States.ArrayGetItem($.inputArray, 9)"),
        {"inputArray": [1, 2, 3]},
        error="States.IntrinsicFailure",
        moto=MOTO_INTRINSIC_ERROR,
    ),
    Case(
        "array-length",
        intrinsic("States.ArrayLength($.inputArray)"),
        {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
        {"r": 9},
    ),
    Case(
        "array-unique",
        intrinsic("States.ArrayUnique($.inputArray)"),
        {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]},
        {"r": [1, 2, 3, 4]},
    ),
    Case(
        "base64-encode",
        intrinsic("States.Base64Encode($.input)"),
        {"input": "Data to encode"},
        {"r": "RGF0YSB0byBlbmNvZGU="},
    ),
    Case(
        "base64-decode",
        intrinsic("States.Base64Decode($.base64)"),
        {"base64": "RGF0YSB0byBlbmNvZGU="},
        {"r": "Data to encode"},
    ),
    Case(
        "hash-sha1-guide",
        intrinsic("States.Hash($.Data, $.Algorithm)"),
        {"Data": "input data", "Algorithm": "SHA-1"},
        {"r": "aaff4a450a104cd177d28d18d74485e8cae074b7"},
    ),
    Case(
        "hash-all-algorithms",
        params(
            {
                "md5.$": "States.Hash('abc', 'MD5')",
                "sha256.$": "States.Hash('abc', 'SHA-256')",
                "sha384.$": "States.Hash('abc', 'SHA-384')",
                "sha512.$": "States.Hash('abc', 'SHA-512')",
            }
        ),
        {},
        {
            "md5": "900150983cd24fb0d6963f7d28e17f72",
            "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha384": "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7",
            "sha512": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        },
    ),
    Case(
        "hash-unknown-algorithm-fails",
        intrinsic("States.Hash('abc', 'SHA-3')"),
        {},
        error="States.IntrinsicFailure",
        moto=MOTO_INTRINSIC_ERROR,
    ),
    Case(
        "json-merge-shallow-guide",
        intrinsic("States.JsonMerge($.json1, $.json2, false)"),
        {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
        {"r": {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}},
    ),
    Case(
        "json-merge-deep-fails",
        intrinsic("States.JsonMerge($.json1, $.json2, true)"),
        {"json1": {}, "json2": {}},
        error="States.IntrinsicFailure",
        moto=MOTO_INTRINSIC_ERROR,
    ),
    Case("math-add-guide", intrinsic("States.MathAdd($.value1, $.step)"), {"value1": 111, "step": -1}, {"r": 110}),
    Case(
        "string-split-guide",
        intrinsic("States.StringSplit($.inputString, $.splitter)"),
        {"inputString": "1,2,3,4,5", "splitter": ","},
        {"r": ["1", "2", "3", "4", "5"]},
    ),
    Case(
        "string-split-several-delimiters",
        intrinsic("States.StringSplit($.s, ',+')"),
        {"s": "This,is+a,test+string"},
        {"r": ["This", "is", "a", "test", "string"]},
    ),
    Case(
        "uuid-is-a-v4-uuid",
        intrinsic("States.ArrayLength(States.StringSplit(States.UUID(), '-'))"),
        {},
        {"r": 5},
    ),
    Case(
        "nested-calls-guide",
        intrinsic(
            "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem("
            "States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit("
            "States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1), "
            "States.ArrayLength($.ImageRecipe.Tags))"
        ),
        {"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123:image-recipe/name/1.2.3", "Tags": [1, 2]}},
        {"r": "1.2.2"},
    ),
    Case(
        "intrinsic-context-argument",
        intrinsic("States.Format('{}:{}', $$.State.Name, $$.Execution.Name)"),
        {},
        {"r": f"S:{EXECUTION_NAME}"},
    ),
]

# ---------------------------------------------------------------------------- Parallel, Map

_DOUBLE = branch(("Double", {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($.v, $.v)"}}))

PARALLEL_MAP = [
    Case(
        "parallel-outputs-in-branch-order",
        single(
            {
                "Type": "Parallel",
                "Branches": [
                    branch(("A", {"Type": "Pass", "Result": "a"})),
                    branch(
                        ("B", {"Type": "Pass", "InputPath": "$.x"}), ("B2", {"Type": "Pass", "ResultPath": "$.seen"})
                    ),
                    branch(("C", {"Type": "Wait", "Seconds": 0})),
                ],
                "ResultPath": "$.results",
            }
        ),
        {"x": {"k": 1}},
        {"x": {"k": 1}, "results": ["a", {"k": 1, "seen": {"k": 1}}, {"x": {"k": 1}}]},
    ),
    Case(
        "parallel-parameters-and-result-selector",
        single(
            {
                "Type": "Parallel",
                "Parameters": {"v.$": "$.n"},
                "Branches": [_DOUBLE, branch(("Same", {"Type": "Pass"}))],
                "ResultSelector": {"doubled.$": "$[0].v", "same.$": "$[1].v"},
            }
        ),
        {"n": 4},
        {"doubled": 8, "same": 4},
        moto=MOTO_INDEX_PATH,
    ),
    Case(
        "parallel-branch-failure-keeps-error-name",
        single(
            {
                "Type": "Parallel",
                "Branches": [
                    branch(("Ok", {"Type": "Pass"})),
                    branch(("Boom", {"Type": "Fail", "Error": "BranchError", "Cause": "branch 1 failed"})),
                ],
            }
        ),
        {},
        error="BranchError",
        cause="branch 1 failed",
    ),
    Case(
        "parallel-catch-with-result-path",
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [branch(("Boom", {"Type": "Fail", "Error": "Custom", "Cause": "why"}))],
                    "Catch": [
                        {"ErrorEquals": ["Other"], "Next": "Wrong"},
                        {"ErrorEquals": ["Custom", "More"], "ResultPath": "$.error", "Next": "Handled"},
                        {"ErrorEquals": ["States.ALL"], "Next": "Wrong"},
                    ],
                    "End": True,
                },
                "Wrong": {"Type": "Fail", "Error": "WrongCatcher"},
                "Handled": {"Type": "Pass", "End": True},
            },
        },
        {"foo": "bar"},
        {"foo": "bar", "error": {"Error": "Custom", "Cause": "why"}},
    ),
    Case(
        "parallel-catch-all-and-task-failed",
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [branch(("Boom", {"Type": "Fail", "Error": "Custom", "Cause": "why"}))],
                    "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Handled"}],
                    "End": True,
                },
                "Handled": {"Type": "Pass", "End": True},
            },
        },
        {"foo": "bar"},
        {"Error": "Custom", "Cause": "why"},
    ),
    Case(
        "catch-all-does-not-catch-runtime",
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [branch(("Bad", {"Type": "Pass", "InputPath": "$.missing"}))],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
                    "End": True,
                },
                "Handled": {"Type": "Pass", "End": True},
            },
        },
        {},
        error=RUNTIME,
    ),
    Case(
        "map-item-selector-context-and-order",
        single(
            {
                "Type": "Map",
                "ItemsPath": "$.detail.shipped",
                "ItemSelector": {
                    "index.$": "$$.Map.Item.Index",
                    "value.$": "$$.Map.Item.Value",
                    "delivery.$": "$.delivery",
                },
                "MaxConcurrency": 2,
                "ItemProcessor": branch(("Work", {"Type": "Pass"})),
                "ResultPath": "$.detail.results",
            }
        ),
        {"delivery": "fast", "detail": {"shipped": ["a", "b", "c"]}},
        {
            "delivery": "fast",
            "detail": {
                "shipped": ["a", "b", "c"],
                "results": [
                    {"index": 0, "value": "a", "delivery": "fast"},
                    {"index": 1, "value": "b", "delivery": "fast"},
                    {"index": 2, "value": "c", "delivery": "fast"},
                ],
            },
        },
    ),
    Case(
        "map-legacy-iterator-and-parameters",
        single(
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "Parameters": {"n.$": "$$.Map.Item.Value"},
                "MaxConcurrency": 0,
                "Iterator": branch(("Double", {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($.n, $.n)"}})),
            }
        ),
        {"items": [1, 2, 3]},
        [{"v": 2}, {"v": 4}, {"v": 6}],
    ),
    Case(
        "map-empty-array",
        single({"Type": "Map", "ItemProcessor": branch(("Work", {"Type": "Pass"}))}),
        [],
        [],
    ),
    Case(
        "map-items-not-an-array-fails",
        single({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": branch(("Work", {"Type": "Pass"}))}),
        {"items": "nope"},
        error=RUNTIME,
        moto=MOTO_MAP_ITEMS,
    ),
    Case(
        "map-item-failure-fails-the-map",
        single(
            {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "Boom"}],
                            "Default": "Fine",
                        },
                        "Boom": {"Type": "Fail", "Error": "ItemError", "Cause": "item 2"},
                        "Fine": {"Type": "Succeed"},
                    },
                },
            }
        ),
        [1, 2, 3],
        error="ItemError",
        cause="item 2",
    ),
    Case(
        "map-in-parallel-with-result-selector",
        single(
            {
                "Type": "Parallel",
                "Branches": [
                    branch(
                        (
                            "Inner",
                            {
                                "Type": "Map",
                                "ItemsPath": "$.items",
                                "ItemProcessor": branch(
                                    ("Len", {"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($)"}})
                                ),
                                "ResultSelector": {"lengths.$": "$[*].n"},
                            },
                        )
                    ),
                ],
                "OutputPath": "$[0]",
            }
        ),
        {"items": [[1], [1, 2], []]},
        {"lengths": [1, 2, 0]},
    ),
]

# ------------------------------------------------------------------- Wait, Succeed, Fail

TERMINALS = [
    Case("wait-seconds", single({"Type": "Wait", "Seconds": 0, "OutputPath": "$.a"}), {"a": 1}, 1),
    Case("wait-seconds-path", single({"Type": "Wait", "SecondsPath": "$.s"}), {"s": 0}, {"s": 0}),
    Case(
        "wait-timestamp-in-the-past", single({"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z"}), {"a": 1}, {"a": 1}
    ),
    Case(
        "wait-timestamp-path",
        single({"Type": "Wait", "TimestampPath": "$.t"}),
        {"t": "2016-03-14T01:59:00Z"},
        {"t": "2016-03-14T01:59:00Z"},
    ),
    Case(
        "wait-seconds-path-not-a-number-fails",
        single({"Type": "Wait", "SecondsPath": "$.s"}),
        {"s": "soon"},
        error=RUNTIME,
    ),
    Case(
        "succeed-input-output-path",
        single({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}),
        {"a": {"b": 2}},
        2,
    ),
    Case(
        "fail-error-and-cause",
        single({"Type": "Fail", "Error": "ErrorA", "Cause": "Kaiju attack"}),
        {},
        error="ErrorA",
        cause="Kaiju attack",
    ),
    Case(
        "fail-error-path-and-cause-path",
        single({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}),
        {"e": "DynamicError", "c": "dynamic cause"},
        error="DynamicError",
        cause="dynamic cause",
    ),
    Case(
        "fail-cause-path-intrinsic",
        single({"Type": "Fail", "Error": "E", "CausePath": "States.Format('item {} failed', $.id)"}),
        {"id": 7},
        error="E",
        cause="item 7 failed",
    ),
    Case(
        "pass-chain-then-succeed",
        {
            "StartAt": "One",
            "States": {
                "One": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.one", "Next": "Two"},
                "Two": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.one.x, $.base)"}, "Next": "Done"},
                "Done": {"Type": "Succeed"},
            },
        },
        {"base": 41},
        {"sum": 42},
    ),
]

# ------------------------------------------------------------------- Task-only behaviours

TASKS_CASES = [
    Case(
        "task-error-caught-with-lambda-shape",
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "raise",
                    "Parameters": {"error": "HandledError", "cause": "boom"},
                    "Catch": [{"ErrorEquals": ["HandledError"], "ResultPath": "$.err", "Next": "After"}],
                    "End": True,
                },
                "After": {"Type": "Pass", "End": True},
            },
        },
        {"in": 1},
        {"in": 1, "err": {"Error": "HandledError", "Cause": "boom"}},
    ),
    Case(
        "task-error-uncaught-fails-execution",
        single({"Type": "Task", "Resource": "raise", "Parameters": {"error": "Nope", "cause": "bad"}}),
        {},
        error="Nope",
        cause="bad",
    ),
    Case(
        "task-context-position",
        single(
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": branch(("Work", {"Type": "Task", "Resource": "context"})),
            }
        ),
        {"items": [1, 2]},
        [{"state": "Work", "position": "S#1/i0/Work#1"}, {"state": "Work", "position": "S#1/i1/Work#1"}],
    ),
    Case(
        "map-results-keep-input-order-when-items-finish-out-of-order",
        single(
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"value.$": "$$.Map.Item.Value", "delay.$": "$$.Map.Item.Value"},
                "MaxConcurrency": 0,
                "ItemProcessor": branch(("Sleep", {"Type": "Task", "Resource": "sleepy_echo"})),
            }
        ),
        {"items": [0.12, 0.08, 0.04, 0.0]},
        [0.12, 0.08, 0.04, 0.0],
    ),
]

ALL_CASES = DATA_FLOW + CHOICE + INTRINSICS + PARALLEL_MAP + TERMINALS + TASKS_CASES
