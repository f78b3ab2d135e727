"""Load-time validation: invalid or unsupported definitions raise AslDefinitionError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asl_cases import branch, single

from shared.asl import AslDefinitionError, StateMachine


def task(**fields: Any) -> dict[str, Any]:
    return single({"Type": "Task", "Resource": "r", **fields})


def mapped(**fields: Any) -> dict[str, Any]:
    return single({"Type": "Map", "ItemProcessor": branch(("W", {"Type": "Pass"})), **fields})


INVALID: list[tuple[str, Any, str]] = [
    ("not-json", "{nope", "not valid JSON"),
    ("not-an-object", [], "must be a JSON object"),
    ("jsonata-top-level", {**single({"Type": "Pass"}), "QueryLanguage": "JSONata"}, "JSONata is not supported"),
    ("jsonata-state", single({"Type": "Pass", "QueryLanguage": "JSONata"}), "state 'S': field 'QueryLanguage'"),
    ("arguments", task(Arguments={"a": 1}), "state 'S': field 'Arguments'"),
    ("output", single({"Type": "Pass", "Output": {}}), "state 'S': field 'Output'"),
    ("assign", single({"Type": "Pass", "Assign": {"x": 1}}), "state 'S': field 'Assign'"),
    ("item-reader", mapped(ItemReader={"Resource": "arn:aws:states:::s3:getObject"}), "field 'ItemReader'"),
    ("item-batcher", mapped(ItemBatcher={"MaxItemsPerBatch": 2}), "field 'ItemBatcher'"),
    ("result-writer", mapped(ResultWriter={}), "field 'ResultWriter'"),
    ("tolerated-failure", mapped(ToleratedFailurePercentage=5), "field 'ToleratedFailurePercentage'"),
    (
        "distributed-mode",
        single(
            {
                "Type": "Map",
                "ItemProcessor": {**branch(("W", {"Type": "Pass"})), "ProcessorConfig": {"Mode": "DISTRIBUTED"}},
            }
        ),
        "Distributed Map is not supported",
    ),
    ("unknown-type", single({"Type": "Sleep"}), "state 'S': field 'Type': unknown state type 'Sleep'"),
    ("unknown-field", single({"Type": "Pass", "Resultt": 1}), "state 'S': unknown field 'Resultt'"),
    ("missing-start-at", {"States": {"S": {"Type": "Succeed"}}}, "field 'StartAt' is required"),
    ("start-at-missing-state", {"StartAt": "X", "States": {"S": {"Type": "Succeed"}}}, "no state named 'X'"),
    ("no-states", {"StartAt": "S", "States": {}}, "non-empty object"),
    (
        "next-missing-state",
        {"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "Nowhere"}}},
        "state 'S': field 'Next': no state named 'Nowhere'",
    ),
    (
        "unreachable",
        {"StartAt": "S", "States": {"S": {"Type": "Succeed"}, "Orphan": {"Type": "Succeed"}}},
        "unreachable states: 'Orphan'",
    ),
    (
        "next-and-end",
        {"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "T", "End": True}, "T": {"Type": "Succeed"}}},
        "exactly one of 'Next' and 'End'",
    ),
    ("neither-next-nor-end", {"StartAt": "S", "States": {"S": {"Type": "Pass"}}}, "exactly one of 'Next' and 'End'"),
    ("end-on-succeed", {"StartAt": "S", "States": {"S": {"Type": "Succeed", "End": True}}}, "unknown field 'End'"),
    ("choice-without-choices", single({"Type": "Choice", "Default": "S"}), "field 'Choices'"),
    (
        "choice-rule-without-next",
        single({"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": True}]}),
        "needs a 'Next'",
    ),
    (
        "nested-rule-with-next",
        single({"Type": "Choice", "Choices": [{"Not": {"Variable": "$.a", "IsNull": True, "Next": "S"}, "Next": "S"}]}),
        "only allowed in a top-level",
    ),
    (
        "operator-operand-type",
        single({"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": "1", "Next": "S"}]}),
        "wrong type",
    ),
    (
        "two-operators",
        single({"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": True, "IsString": True, "Next": "S"}]}),
        "exactly one comparison operator",
    ),
    ("choice-with-end", single({"Type": "Choice", "Choices": [], "End": True}), "unknown field 'End'"),
    (
        "states-all-not-alone",
        task(Retry=[{"ErrorEquals": ["States.ALL", "E"]}]),
        "States.ALL must appear alone",
    ),
    (
        "states-all-not-last-retrier",
        task(Retry=[{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E"]}]),
        "field 'Retry': States.ALL must be in the last entry",
    ),
    (
        "states-all-not-last-catcher",
        {
            "StartAt": "S",
            "States": {
                "S": {
                    "Type": "Task",
                    "Resource": "r",
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}, {"ErrorEquals": ["E"], "Next": "H"}],
                    "End": True,
                },
                "H": {"Type": "Succeed"},
            },
        },
        "field 'Catch': States.ALL must be in the last entry",
    ),
    ("catch-next-missing", task(Catch=[{"ErrorEquals": ["E"], "Next": "Nowhere"}]), "no state named 'Nowhere'"),
    ("retry-bad-backoff", task(Retry=[{"ErrorEquals": ["E"], "BackoffRate": 0.5}]), "BackoffRate"),
    ("retry-bad-jitter", task(Retry=[{"ErrorEquals": ["E"], "JitterStrategy": "HALF"}]), "JitterStrategy"),
    ("retry-negative-attempts", task(Retry=[{"ErrorEquals": ["E"], "MaxAttempts": -1}]), "MaxAttempts"),
    ("retry-unknown-field", task(Retry=[{"ErrorEquals": ["E"], "Interval": 1}]), "unknown field 'Interval'"),
    ("retry-empty-error-equals", task(Retry=[{"ErrorEquals": []}]), "non-empty array"),
    ("task-without-resource", single({"Type": "Task"}), "field 'Resource'"),
    ("timeout-zero", task(TimeoutSeconds=0), "TimeoutSeconds"),
    ("heartbeat-not-below-timeout", task(TimeoutSeconds=5, HeartbeatSeconds=5), "HeartbeatSeconds"),
    ("heartbeat-path", task(HeartbeatSecondsPath="$.h"), "field 'HeartbeatSecondsPath'"),
    ("unknown-intrinsic", single({"Type": "Pass", "Parameters": {"a.$": "States.Nope(1)"}}), "unknown intrinsic"),
    ("intrinsic-syntax", single({"Type": "Pass", "Parameters": {"a.$": "States.Array(1,"}}), "field 'Parameters'"),
    (
        "intrinsic-open-escape",
        single({"Type": "Pass", "Parameters": {"a.$": "States.Format('a\\nb')"}}),
        "open escape",
    ),
    ("intrinsic-arity", single({"Type": "Pass", "Parameters": {"a.$": "States.UUID(1)"}}), "takes 0 arguments"),
    ("template-value-not-string", single({"Type": "Pass", "Parameters": {"a.$": 1}}), "must be a string"),
    ("bad-path", single({"Type": "Pass", "InputPath": "a.b"}), "field 'InputPath'"),
    ("result-path-not-reference", single({"Type": "Pass", "ResultPath": "$.a[*]"}), "not a reference path"),
    ("wait-two-fields", single({"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s"}), "exactly one of Seconds"),
    ("wait-bad-timestamp", single({"Type": "Wait", "Timestamp": "2020-01-01 00:00:00"}), "RFC 3339"),
    ("fail-error-and-error-path", single({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}), "mutually exclusive"),
    ("map-processor-and-iterator", mapped(Iterator=branch(("W", {"Type": "Pass"}))), "mutually exclusive"),
    ("map-negative-concurrency", mapped(MaxConcurrency=-1), "MaxConcurrency"),
    (
        "nested-branch-error-names-its-path",
        single({"Type": "Parallel", "Branches": [branch(("Inner", {"Type": "Pass", "Bogus": 1}))]}),
        "state 'S' > branch 0 > state 'Inner': unknown field 'Bogus'",
    ),
    (
        "processor-unreachable",
        single(
            {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}},
            }
        ),
        "state 'S' > ItemProcessor: unreachable states: 'B'",
    ),
]


@pytest.mark.parametrize(("definition", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_definitions_are_rejected_at_load_time(definition: Any, message: str) -> None:
    with pytest.raises(AslDefinitionError) as caught:
        StateMachine.load(definition)
    assert message in str(caught.value)


def test_load_accepts_json_text_and_lists_nested_task_resources() -> None:
    definition = {
        "StartAt": "A",
        "TimeoutSeconds": 60,
        "States": {
            "A": {"Type": "Task", "Resource": "a", "TimeoutSeconds": 10, "HeartbeatSeconds": 5, "Next": "P"},
            "P": {
                "Type": "Parallel",
                "Branches": [
                    branch(("B", {"Type": "Task", "Resource": "b"})),
                    branch(
                        (
                            "M",
                            {
                                "Type": "Map",
                                "Iterator": branch(("C", {"Type": "Task", "Resource": "c"})),
                            },
                        )
                    ),
                ],
                "End": True,
            },
        },
    }
    machine = StateMachine.load(json.dumps(definition))
    assert machine.definition == definition
    assert machine.task_resources() == ["a", "b", "c"]


def test_the_loaded_definition_is_a_copy() -> None:
    definition = single({"Type": "Pass"})
    machine = StateMachine.load(definition)
    definition["States"]["S"]["Type"] = "Bogus"
    assert machine.definition["States"]["S"]["Type"] == "Pass"
