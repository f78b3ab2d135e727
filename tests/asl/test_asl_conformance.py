"""Every conformance case on the local interpreter, against the output the spec defines."""

from __future__ import annotations

import pytest
from asl_cases import ALL_CASES, EXECUTION_ID, EXECUTION_NAME, MACHINE_NAME, Case, canonical, invoke

from shared.asl import StateMachine, run_execution


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in ALL_CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.id)
def test_conformance(case: Case) -> None:
    result = run_execution(
        StateMachine.load(case.definition),
        case.input,
        execution_id=EXECUTION_ID,
        execution_name=EXECUTION_NAME,
        state_machine_name=MACHINE_NAME,
        invoke_task=invoke,
        max_workers=4,
    )
    if case.error is None:
        assert (result.status, result.error, result.cause) == ("SUCCEEDED", None, None)
        assert canonical(result.output) == canonical(case.output)
    else:
        assert (result.status, result.output, result.error) == ("FAILED", None, case.error)
        if case.cause is not None:
            assert result.cause == case.cause
