"""The enhance state machine's matting branch as Step Functions runs it: the definition as deployed
(every ${...FunctionArn} replaced by a Lambda ARN), walked by the embedded engine standing in for Step
Functions, with each Lambda answered at its boundary:

* the stage Lambdas with canned outputs of their real shapes (the probe's media and chunks are real);
* the GPU dispatch Lambda by the real ``functions.gpu_dispatch.handler``, fed the Payload that the
  MatteOnGpu Task's Parameters render (``$$.Task.Token`` included), with Modal faked at
  ``modal.Function.from_name``;
* the Modal function's answer by the real ``modal_apps.matting`` request model and result, sent back with
  the real ``TaskReporter`` through a botocore Stubber that checks the exact SendTaskSuccess request
  (the token is the one this Task was given), and then becomes the Task's result, as with Step Functions.

What it cannot show: Step Functions' own handling of the callback (the waiting, HeartbeatSeconds, the
error of a dispatch Lambda that raises), which only a deployed stack shows.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import modal
import pytest
from botocore.stub import Stubber

import state_machines
from functions import gpu_dispatch
from modal_apps import matting
from modal_apps.gpu import TaskReporter
from shared.asl import StateMachine, TaskContext, run_execution
from shared.media.normalize import plan_chunks
from shared.media.probe import probe
from shared.pipeline.enhance import EnhanceOptions, OutputFormat, execution_input

SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:vidluxe-ci-{}"
CALLBACK = "arn:aws:states:::lambda:invoke.waitForTaskToken"
TASK = "tsk_0123456789abcdef0123456789abcdef"
FPS = 15


def _deployed() -> StateMachine:
    text = SUBSTITUTION.sub(lambda m: ARN.format(m[1]), json.dumps(state_machines.definition("enhance")))
    return StateMachine.load(json.loads(text))


class Cloud:
    """The Lambdas of the stack, and Modal behind the dispatch one; records what each was asked."""

    def __init__(self, clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        media = probe(clip)
        self.chunks = plan_chunks(media.duration_seconds, FPS, chunk_seconds=0.5)
        self.probe = {
            "source_key": f"uploads/{TASK}/source.mp4", "media": media.model_dump(mode="json"), "hints": {},
            "width": 360, "height": 640, "fps": FPS, "frames": sum(c.frames for c in self.chunks),
            "duration_seconds": media.duration_seconds, "has_audio": False,
            "chunks": [c.model_dump(mode="json") for c in self.chunks], "source": {"name": "clip.mp4"},
        }
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (function, payload)
        self.spawned: list[dict[str, Any]] = []  # the Modal calls
        monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
        monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
        monkeypatch.delenv("VIDLUXE_SSM_SECRETS", raising=False)
        monkeypatch.setattr(modal.Function, "from_name", lambda app, name, **_: _Function(self, app, name))

    def __call__(self, resource: str, parameters: dict[str, Any], context: TaskContext) -> Any:
        function = parameters["FunctionName"].rsplit("-", 1)[1]
        payload = parameters["Payload"]
        self.calls.append((function, payload))
        if resource == CALLBACK:
            assert function == "GpuDispatchFunctionArn"
            assert payload["task_token"] == context.context_object["Task"]["Token"]
            gpu_dispatch.handler(payload, _LambdaContext())  # returns at once; the GPU answers later
            # what the GPU's SendTaskSuccess carried for this token becomes the Task's result, unwrapped
            (spawn,) = [s for s in list(self.spawned) if s["token"] == payload["task_token"]]
            return spawn["answer"]
        return {"ExecutedVersion": "$LATEST", "Payload": self._stage(function, payload), "StatusCode": 200}

    def _stage(self, function: str, payload: dict[str, Any]) -> dict[str, Any]:
        tasks = f"tasks/{TASK}"
        if function == "ProbeFunctionArn":
            return self.probe
        if function == "LearnStyleFunctionArn":
            return {"style": {"source": "preset:warm"}}
        if function == "GenerateAssetsFunctionArn":
            return {"background_key": f"{tasks}/assets/bg.png"}
        if function == "PlanCompositionFunctionArn":
            return {"spec_key": f"{tasks}/plan/spec.json", "person_chroma_shift": [0.0, 0.0], "asset_keys": [],
                    "style": {"source": "preset:warm"}}
        if function == "MatteFunctionArn":
            return {"matte_key": f"{tasks}/matte/local/matte.mp4", "chunk": payload["chunk"]}
        if function == "RenderChunkFunctionArn":
            return {"index": payload["index"], "video_key": f"{tasks}/render/{payload['index']}.mp4"}
        if function == "AssembleFunctionArn":
            return {"video_key": f"{tasks}/assemble/video.mp4"}
        assert function == "FinalizeFunctionArn", function
        return {name: f"{tasks}/final/{name}" for name in (
            "final_key", "comparison_key", "asset_pack_key", "square_key", "gif_key", "contact_sheet_key")} | {
            "quality": {"frames": 1}}

    def renders(self) -> dict[int, str | None]:
        return {p["index"]: p.get("matte_key") for f, p in self.calls if f == "RenderChunkFunctionArn"}


class _Function:
    """``modal.Function.from_name(app, name)``: its ``spawn`` is where Modal takes over."""

    def __init__(self, cloud: Cloud, app: str, name: str) -> None:
        self.cloud, self.app, self.name = cloud, app, name

    def spawn(self, *, request: dict[str, Any], task_token: str) -> Any:
        # The Modal side: the request must be one the matting function accepts, and it reports the
        # Matte stage's output with the token it was given.
        parsed = matting.parse_request(request)
        answer = matting.result_of(parsed, self.name.removeprefix("matte_"))  # type: ignore[arg-type]
        sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x")
        with Stubber(sfn) as stub:
            stub.add_response("send_task_success", {}, {"taskToken": task_token, "output": json.dumps(answer)})
            TaskReporter(sfn, task_token).succeed(answer)
            stub.assert_no_pending_responses()
        self.cloud.spawned.append({"app": self.app, "function": self.name, "request": request,
                                   "token": task_token, "answer": answer})
        return type("Call", (), {"object_id": f"fc-{len(self.cloud.spawned)}"})()


class _LambdaContext:
    function_name, memory_limit_in_mb, aws_request_id = "vidluxe-ci-gpuDispatch", 512, "req-1"
    invoked_function_arn = ARN.format("GpuDispatchFunctionArn")


def _run(cloud: Cloud, matting_choice: str) -> dict[str, Any]:
    options = EnhanceOptions(output=OutputFormat(width=360, height=640, fps=FPS), chunk_seconds=1.0,
                             matting=matting_choice)  # type: ignore[arg-type]
    document = execution_input(options, source_key=f"uploads/{TASK}/source.mp4", source_name="clip.mp4")
    result = run_execution(_deployed(), document, execution_id=f"arn:aws:states:us-east-1:1:execution:e:{TASK}",
                           execution_name=TASK, invoke_task=cloud, max_workers=2)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert isinstance(result.output, dict)
    return result.output


def test_local_matting_keeps_todays_states(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud = Cloud(clip, monkeypatch)
    _run(cloud, "local")
    functions = [f for f, _ in cloud.calls]
    assert "GpuDispatchFunctionArn" not in functions and cloud.spawned == []
    assert functions.count("MatteFunctionArn") == 1
    first = next(p for f, p in cloud.calls if f == "MatteFunctionArn")
    # chunk 0 from the matte stored in Prepare, the others matted inline (no matte_key)
    assert cloud.renders() == {0: "tasks/" + TASK + "/matte/local/matte.mp4"} | {
        i: None for i in range(1, len(cloud.chunks))}
    assert first["chunk"] == cloud.probe["chunks"][0]


@pytest.mark.parametrize("choice", ["rvm", "modnet"])
def test_gpu_matting_mattes_every_chunk_on_modal_and_renders_from_those_mattes(
    clip: Path, monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    cloud = Cloud(clip, monkeypatch)
    assert len(cloud.chunks) >= 3
    output = _run(cloud, choice)

    functions = [f for f, _ in cloud.calls]
    assert "MatteFunctionArn" not in functions
    assert functions.count("GpuDispatchFunctionArn") == len(cloud.chunks)
    assert {(s["app"], s["function"]) for s in cloud.spawned} == {("vidluxe-matting", f"matte_{choice}")}
    assert len({s["token"] for s in cloud.spawned}) == len(cloud.chunks)  # one token per Task

    by_chunk = {s["request"]["chunk"]["index"]: s for s in cloud.spawned}
    assert sorted(by_chunk) == [c.index for c in cloud.chunks]
    for spawn in cloud.spawned:
        assert spawn["request"]["task_id"] == TASK
        key = spawn["request"]["output_key"]
        assert key.startswith(f"tasks/{TASK}/matte-gpu/") and key.endswith("/matte.mp4")
        assert spawn["answer"]["method"] == matting.METHODS[choice]
    # every chunk rendered from its own GPU matte; Finalize measures chunk 0's
    assert cloud.renders() == {i: by_chunk[c.index]["answer"]["matte_key"] for i, c in enumerate(cloud.chunks)}
    finalize = next(p for f, p in cloud.calls if f == "FinalizeFunctionArn")
    assert finalize["matte_key"] == by_chunk[cloud.chunks[0].index]["answer"]["matte_key"]
    assert output["final_key"].endswith("final_key")


def test_a_retried_gpu_task_names_the_same_output(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry (HeartbeatTimeout, a TransientError) has a new token and the same request: the dispatch
    derives the same output key, so a preempted run's matte is found instead of computed again."""
    cloud = Cloud(clip, monkeypatch)
    _run(cloud, "rvm")
    payload = next(p for f, p in cloud.calls if f == "GpuDispatchFunctionArn")
    again = gpu_dispatch.handler({**payload, "task_token": "a-new-token"}, _LambdaContext())
    assert again["output_key"] == cloud.spawned[0]["request"]["output_key"]


def test_the_dispatch_reads_the_modal_token_from_ssm_and_fails_fast_without_it(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.errors import ConfigurationError

    names = ["/vidluxe/ci/MODAL_TOKEN_ID", "/vidluxe/ci/MODAL_TOKEN_SECRET"]
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIDLUXE_SSM_SECRETS", ",".join(names))  # as serverless.yml sets it
    spawned: list[str] = []
    monkeypatch.setattr(modal.Function, "from_name", lambda app, name, **_: type(
        "F", (), {"spawn": lambda self, **kw: spawned.append(kw["task_token"])})())
    event = {"app": "vidluxe-matting", "function": "matte_rvm", "task_token": "tok", "stage": "matte",
             "output_name": "matte.mp4", "request": {"task_id": TASK}}
    gpu_dispatch._load_secrets.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as caught:  # no parameters yet: not retried, nothing spawned
            gpu_dispatch.handler(event, _LambdaContext())
        assert caught.value.code == "MODAL_CREDENTIALS_MISSING" and spawned == []

        ssm = boto3.client("ssm", region_name="us-east-1")
        for name in names:
            ssm.put_parameter(Name=name, Value=f"value-of-{name.rsplit('/', 1)[1]}", Type="SecureString")
        gpu_dispatch.handler(event, _LambdaContext())
        assert spawned == ["tok"]
        assert os.environ["MODAL_TOKEN_ID"] == "value-of-MODAL_TOKEN_ID"
    finally:
        gpu_dispatch._load_secrets.cache_clear()
        for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
            os.environ.pop(name, None)
