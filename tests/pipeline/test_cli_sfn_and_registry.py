"""`vidluxe sfn run`, the stage registry's load-time checks, and the Lambda stage handlers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import state_machines
from functions import stages as lambda_stages
from functions.service import cloud_services
from shared.asl import AslDefinitionError, StateMachine
from shared.cli import main
from shared.pipeline.execution import create_task
from shared.pipeline.registry import StageRegistry
from shared.stages import ALL_STAGES


def _write(tmp_path: Path, document: dict[str, object]) -> Path:
    path = tmp_path / "machine.asl.json"
    path.write_text(json.dumps(document))
    return path


def test_sfn_run_prints_the_execution_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                     "Default": "Small"},
            "Big": {"Type": "Pass", "Parameters": {"size": "big", "greeting.$": "States.Format('hi {}', $.name)"},
                    "End": True},
            "Small": {"Type": "Pass", "Result": {"size": "small"}, "End": True},
        },
    }
    assert main(["sfn", "run", str(_write(tmp_path, document)), "--input", '{"n": 3, "name": "Ada"}']) == 0
    assert json.loads(capsys.readouterr().out) == {"size": "big", "greeting": "hi Ada"}


def test_sfn_run_reports_a_failed_execution(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Custom.Bad", "Cause": "because"}}}
    assert main(["sfn", "run", str(_write(tmp_path, document))]) == 1
    assert json.loads(capsys.readouterr().out) == {"error": "Custom.Bad", "cause": "because"}


def test_sfn_run_rejects_an_unsupported_definition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    assert main(["sfn", "run", str(_write(tmp_path, document))]) == 1
    assert capsys.readouterr().err.startswith("error INVALID_DEFINITION: ")


def test_every_shipped_state_machine_resolves_to_stages() -> None:
    registry = StageRegistry(ALL_STAGES)
    for name in state_machines.available():
        registry.validate(StateMachine.load(state_machines.definition(name)))
    assert "enhance" in state_machines.available()


def test_unknown_function_fails_at_load_time() -> None:
    machine = StateMachine.load({
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                         "Parameters": {"FunctionName": "${TypoFunctionArn}", "Payload": {}}, "End": True}},
    })
    with pytest.raises(AslDefinitionError, match="TypoFunctionArn"):
        StageRegistry(ALL_STAGES).validate(machine)


def test_lambda_handler_runs_the_same_stage(use_backend: dict[str, str]) -> None:
    # The stage runtime is the service's, built once per container: each backend gets its own here.
    lambda_stages._runtime.cache_clear()
    cloud_services.cache_clear()
    try:
        create_task(lambda_stages._runtime(), "enhance", {}, "tsk_lambda")
        context = SimpleNamespace(  # the attributes powertools' Logger reads from the Lambda runtime's context
            function_name="vidluxe-learnStyle", memory_limit_in_mb=1024, aws_request_id="req-1",
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:vidluxe-learnStyle",
        )
        result = lambda_stages.learn_style({"task_id": "tsk_lambda", "preset": "warm", "reference_key": None}, context)
        runs = lambda_stages._runtime().tasks.list_stage_runs("tsk_lambda")
    finally:
        cloud_services().close()
        lambda_stages._runtime.cache_clear()
        cloud_services.cache_clear()
    assert [r.stage for r in runs] == ["learn_style"]
    assert result["style"]["source"] == "preset:warm"
    assert {s.function_name for s in ALL_STAGES} >= {"ProbeFunctionArn", "LearnStyleFunctionArn"}
