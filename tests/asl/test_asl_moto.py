"""Differential check: the conformance documents without Task states, on moto's executor too.

moto (5.x) embeds LocalStack's ASL interpreter. Each document runs there and locally, with the
same execution ARN, execution name and state machine name, and the results must agree: output
on success; error and cause on failure. For ``States.Runtime`` failures only the error name is
compared, because the cause quotes AWS history event ids that the local runner does not have.

Known moto deviations are listed in ``asl_cases`` and run as strict xfails here, so a moto
upgrade that fixes one is noticed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asl_cases import ALL_CASES, RUNTIME, Case, canonical

from shared.asl import StateMachine, run_execution

ROLE_ARN = "arn:aws:iam::123456789012:role/sfn"


def _params() -> list[Any]:
    cases = [case for case in ALL_CASES if not StateMachine.load(case.definition).task_resources()]
    return [
        pytest.param(case, id=case.id, marks=[pytest.mark.xfail(reason=case.moto, strict=True)] if case.moto else [])
        for case in cases
    ]


@pytest.fixture(scope="module")
def sfn() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client(
            "stepfunctions",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _run_on_moto(sfn: Any, name: str, case: Case) -> dict[str, Any]:
    machine_arn = sfn.create_state_machine(name=name, definition=json.dumps(case.definition), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, name="run-1", input=json.dumps(case.input))[
        "executionArn"
    ]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.005)
        raise AssertionError(f"moto execution of {case.id} still running after 30 s")
    finally:
        # moto deep-copies the state machine, and through it the whole backend, on every
        # start_execution; a finished execution left in the backend holds an RLock and breaks
        # that copy. Deleting each machine after use keeps the backend copyable.
        sfn.delete_state_machine(stateMachineArn=machine_arn)


def test_every_task_free_case_is_compared() -> None:
    assert len(_params()) >= 100


@pytest.mark.parametrize("case", _params())
def test_local_runner_agrees_with_moto(sfn: Any, case: Case) -> None:
    name = f"sm-{case.id}"[:80]
    remote = _run_on_moto(sfn, name, case)
    local = run_execution(
        StateMachine.load(case.definition),
        case.input,
        execution_id=remote["executionArn"],
        execution_name="run-1",
        state_machine_name=name,
    )
    assert local.status == remote["status"]
    if local.status == "SUCCEEDED":
        assert canonical(local.output) == canonical(json.loads(remote["output"]))
    else:
        assert local.error == remote.get("error")
        if local.error != RUNTIME:
            assert local.cause == remote.get("cause")
