"""The enhance option ``matting`` on the embedded engine: "local" is today's path; a GPU choice (Modal,
reached only through Step Functions' callback Task MatteOnGpu) is refused at submit time with
MATTING_PROVIDER_UNAVAILABLE, and a task that reaches the engine anyway fails at once with a typed
ConfigurationError instead of waiting for a task token nobody will answer."""

from __future__ import annotations

from pathlib import Path

import pytest

import state_machines
from shared.asl import AslDefinitionError, StateMachine
from shared.errors import ConfigurationError, InvalidInputError
from shared.pipeline.enhance import (
    GPU_MATTING,
    LOCAL_MATTING,
    EnhanceOptions,
    OutputFormat,
    check_options,
    execution_input,
    submit_enhance,
)
from shared.pipeline.execution import create_task, new_task_id, run_task
from shared.pipeline.registry import GPU_DISPATCH, LAMBDA_INVOKE, StageRegistry
from shared.pipeline.runtime import Runtime
from shared.settings import Settings
from shared.stages import ALL_STAGES
from shared.storage.tasks import TaskStatus

GPU_TASK = "arn:aws:states:::lambda:invoke.waitForTaskToken"


def test_matting_defaults_to_local_and_travels_in_the_execution_input() -> None:
    assert EnhanceOptions().matting == "local"
    document = execution_input(EnhanceOptions(matting="rvm"), source_key="k", source_name="a.mp4")
    assert document["matting"] == "rvm"
    with pytest.raises(ValueError):
        EnhanceOptions(matting="sam2")  # type: ignore[arg-type]


@pytest.mark.parametrize("choice", sorted(GPU_MATTING))
def test_a_gpu_choice_is_refused_where_tasks_run_on_the_embedded_engine(choice: str) -> None:
    options = EnhanceOptions(matting=choice)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as caught:
        check_options(options)
    assert caught.value.code == "MATTING_PROVIDER_UNAVAILABLE"
    assert caught.value.details == {"field": "options.matting"}
    check_options(options, matting_available=LOCAL_MATTING | GPU_MATTING)  # Step Functions runs it
    check_options(EnhanceOptions())


def test_submit_refuses_a_gpu_choice_before_ingesting_anything(tmp_path: Path, short_clip: Path) -> None:
    runtime = Runtime.from_settings(Settings(home=tmp_path / "home"))
    try:
        with pytest.raises(InvalidInputError) as caught:
            submit_enhance(runtime, new_task_id(), short_clip, EnhanceOptions(matting="modnet"))
        assert caught.value.code == "MATTING_PROVIDER_UNAVAILABLE"
        assert runtime.tasks.list_tasks(limit=5) == []
    finally:
        runtime.close()


def test_a_gpu_task_that_reaches_the_engine_fails_at_once_with_a_typed_error(tmp_path: Path, short_clip: Path) -> None:
    """E.g. a task created by a Step Functions deployment, then run by a local worker: the Choice routes
    chunk 0 to MatteFirstChunkOnGpu, whose dispatch function exists only on AWS."""
    runtime = Runtime.from_settings(Settings(home=tmp_path / "home"))
    try:
        local = submit_enhance(
            runtime, new_task_id(), short_clip, EnhanceOptions(output=OutputFormat(width=360, height=640, fps=15))
        )
        task = create_task(runtime, "enhance", {**local.input, "matting": "rvm"}, new_task_id())
        done = run_task(runtime, StageRegistry(ALL_STAGES), task.task_id)
        assert done.status == TaskStatus.FAILED
        assert done.error_code == "GPU_PROVIDER_UNAVAILABLE"
        assert "GpuDispatchFunctionArn" in (done.error_message or "")
        states = [t.state_name for t in runtime.tasks.list_transitions(task.task_id)]
        assert "Probe" in states and "Job" in states
        assert not {"Chunks", "Assemble"} & set(states)
        assert not any(run.stage == "matte" for run in runtime.tasks.list_stage_runs(task.task_id))
    finally:
        runtime.close()


def test_the_registry_knows_the_dispatch_but_will_not_run_it() -> None:
    registry = StageRegistry(ALL_STAGES)
    assert registry.resolve_any("${GpuDispatchFunctionArn}") is GPU_DISPATCH
    with pytest.raises(KeyError, match="cloud-only"):
        registry.resolve("${GpuDispatchFunctionArn}")
    invoke = registry.invoker(runtime=None)  # type: ignore[arg-type]  # never reaches the runtime
    with pytest.raises(ConfigurationError) as caught:
        invoke(GPU_TASK, {"FunctionName": "${GpuDispatchFunctionArn}", "Payload": {}}, None)  # type: ignore[arg-type]
    assert caught.value.code == "GPU_PROVIDER_UNAVAILABLE"


def _machine(resource: str, function: str, payload: dict[str, object]) -> StateMachine:
    return StateMachine.load({
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": resource,
                         "Parameters": {"FunctionName": function, "Payload": payload}, "End": True}},
    })


@pytest.mark.parametrize(("resource", "function", "payload", "message"), [
    (LAMBDA_INVOKE, "${GpuDispatchFunctionArn}", {"task_token.$": "$$.Task.Token"},
     "must be invoked with .*waitForTaskToken"),
    (GPU_TASK, "${MatteFunctionArn}", {"task_token.$": "$$.Task.Token"}, "not a callback"),
    (GPU_TASK, "${GpuDispatchFunctionArn}", {"x": 1}, r"must pass \$\$\.Task\.Token"),
])
def test_callback_tasks_are_checked_at_load_time(resource: str, function: str, payload: dict[str, object],
                                                message: str) -> None:
    with pytest.raises(AslDefinitionError, match=message):
        StageRegistry(ALL_STAGES).validate(_machine(resource, function, payload))


def test_the_enhance_machine_has_one_gpu_task_per_place_a_chunk_is_matted() -> None:
    definition = state_machines.definition("enhance")
    prepare = definition["States"]["Prepare"]["Branches"][1]["States"]
    chunk = definition["States"]["Chunks"]["ItemProcessor"]["States"]
    gpu = {name: state for name, state in {**prepare, **chunk}.items() if state.get("Resource") == GPU_TASK}
    assert sorted(gpu) == ["MatteFirstChunkOnGpu", "MatteOnGpu"]
    first, other = gpu["MatteFirstChunkOnGpu"], gpu["MatteOnGpu"]
    # The same Task but for the chunk it mattes and where its result goes (ASL has no shared states).
    assert first["Parameters"]["Payload"]["request"].pop("chunk.$") == "$.probe.Payload.chunks[0]"
    assert other["Parameters"]["Payload"]["request"].pop("chunk.$") == "$.chunk"
    same = {"Type", "Resource", "Parameters", "HeartbeatSeconds", "TimeoutSeconds", "Retry", "ResultSelector"}
    assert {k: first[k] for k in same} == {k: other[k] for k in same}
    assert first["HeartbeatSeconds"] < first["TimeoutSeconds"]
    assert "States.HeartbeatTimeout" in first["Retry"][0]["ErrorEquals"]
