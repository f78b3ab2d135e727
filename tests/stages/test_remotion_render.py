"""VIDLUXE_RENDERER=remotion: the enhance pipeline end to end on the embedded engine with the S3 object
store (moto's server, over HTTP) and Remotion Lambda faked at the SDK boundary (``RemotionClient``).

The fake does what Remotion's browser and functions would do with the props: it fetches every presigned
URL over HTTP (so each must resolve, signed, against the store), decodes the person layer with libvpx (the
only VP9 decoder that reads the alpha plane) and checks it has a real alpha channel, draws an mp4 from the
layers with ffmpeg and writes it into Remotion's bucket, and answers with the SDK's own response objects
(``RenderMediaResponse``, ``RenderMediaProgress`` filled the way the SDK fills it).

Also: the routing of every renderer and matting choice on the definition as Step Functions runs it, and
the refusals (Remotion without its settings, or with a local object store) before any work.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import boto3
import httpx
import numpy as np
import pytest
import remotion_lambda
from remotion_lambda.models import RenderMediaParams, RenderMediaProgress, RenderMediaResponse

import shared.stages.remotion_render as stage_module
import state_machines
from shared.asl import StateMachine, TaskContext, run_execution
from shared.composition import CompositionSpec
from shared.errors import ConfigurationError
from shared.media.ffmpeg import ffmpeg_exe
from shared.media.probe import probe
from shared.media.render import person_box
from shared.pipeline.enhance import EnhanceOptions, OutputFormat, check_renderer, execution_input, submit_enhance
from shared.pipeline.execution import create_task, new_task_id, run_task
from shared.pipeline.registry import StageRegistry
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import execute_stage
from shared.settings import Settings
from shared.stages import ALL_STAGES
from shared.stages.remotion_render import REMOTION_RENDER
from shared.storage.costs import CostStore
from shared.storage.tasks import StageRunStatus, TaskStatus

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "talking_head.mp4"
REGION = "us-east-1"
FUNCTION = "remotion-render-4-0-529-mem2048mb-disk2048mb-120sec"
SERVE_URL = "https://remotionlambda-useast1-abcdefgh.s3.us-east-1.amazonaws.com/sites/vidluxe/index.html"
REMOTION_BUCKET = "remotionlambda-useast1-abcdefgh"
OPTIONS = EnhanceOptions(output=OutputFormat(width=180, height=320, fps=15), chunk_seconds=1.0, title="Hi")
REMOTION = {"renderer": "remotion", "remotion_function_name": FUNCTION, "remotion_serve_url": SERVE_URL,
            "remotion_region": REGION}



@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of the sample at 360x640 with a tone as audio (the sample is silent): two 1 s chunks."""
    out = tmp_path_factory.mktemp("clips") / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(SAMPLE), "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "2", "-map", "0:v", "-map", "1:a", "-vf", "scale=360:640", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", str(out)],
        check=True,
    )
    return out


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Credentials for moto; every S3 client without an endpoint of its own (the renderer's, which copies
    Remotion's output) reaches moto's server too."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", REGION), ("AWS_ENDPOINT_URL_S3", moto_endpoint)):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", region_name=REGION)
    if REMOTION_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=REMOTION_BUCKET)
    return client


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"home": tmp_path / "home", "object_store": "local", "task_store": "sqlite",
                              "cache": "local", **overrides}
    return Settings(**values)


@pytest.fixture
def s3_settings(s3: Any, moto_endpoint: str, tmp_path: Path) -> Settings:
    bucket = f"vidluxe-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return _settings(tmp_path, object_store="s3", s3_bucket=bucket, s3_prefix="env/test",
                     s3_endpoint_url=moto_endpoint, s3_region=REGION, **REMOTION)


class FakeRemotion:
    """Remotion Lambda behind ``remotion_lambda.RemotionClient``: renders what the props name, fetched by URL."""

    def __init__(self, s3: Any, scratch: Path) -> None:
        self.s3 = s3
        self.scratch = scratch
        self.started: list[dict[str, Any]] = []  # the input props of each render
        self.fail_next = False
        self.clients: list[tuple[str, str, str]] = []
        self._done: dict[str, dict[str, Any]] = {}

    def client(self, region: str, serve_url: str, function_name: str, **_: Any) -> FakeRemotion:
        self.clients.append((region, serve_url, function_name))
        return self

    def render_media_on_lambda(self, params: RenderMediaParams) -> RenderMediaResponse:
        assert (params.composition, params.codec, params.region) == ("PremiumTalkingVideo", "h264", REGION)
        props = params.input_props
        assert props is not None
        self.started.append(props)
        render_id = f"r{len(self.started)}"
        spec = CompositionSpec.model_validate(props["spec"])
        folder = self.scratch / render_id
        folder.mkdir(parents=True)
        files = {key: self._fetch(url, folder / f"{i}-{key.rsplit('/', 1)[-1]}")
                 for i, (key, url) in enumerate(props["assets"].items())}
        person = self._fetch(props["person_video"], folder / "person.webm")
        check_alpha(person, spec)
        if self.fail_next:
            self.fail_next = False
            self._done[render_id] = _progress(render_id, fatal="delayRender() \"Loading <Video>\" timed out")
            return RenderMediaResponse(bucket_name=REMOTION_BUCKET, render_id=render_id)
        out = folder / "out.mp4"
        _draw(spec, files, person, out)
        self.s3.put_object(Bucket=REMOTION_BUCKET, Key=f"renders/{render_id}/out.mp4", Body=out.read_bytes())
        self._done[render_id] = _progress(render_id, size=out.stat().st_size)
        return RenderMediaResponse(bucket_name=REMOTION_BUCKET, render_id=render_id)

    def get_render_progress(self, render_id: str, bucket_name: str, log_level: str = "info") -> RenderMediaProgress:
        assert bucket_name == REMOTION_BUCKET
        progress = RenderMediaProgress()
        progress.__dict__.update(self._done[render_id])  # how the SDK fills it from the function's answer
        return progress

    @staticmethod
    def _fetch(url: str, path: Path) -> Path:
        """GET a presigned URL as Remotion's browser would: it must resolve, and live through the render
        (the poll timeout, 900 s). botocore signs with SigV4 or, for some endpoints, SigV2."""
        query = parse_qs(urlsplit(url).query)
        if "X-Amz-Signature" in query:
            lifetime = int(query["X-Amz-Expires"][0])
        else:
            assert "Signature" in query, url
            lifetime = int(query["Expires"][0]) - int(time.time())
        assert lifetime >= 900, url
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        path.write_bytes(response.content)
        return path


def _progress(render_id: str, *, size: int = 0, fatal: str | None = None) -> dict[str, Any]:
    """getRenderProgress()'s answer (Remotion's docs), as the function returns it."""
    done = fatal is None
    return {
        "overallProgress": 1.0 if done else 0.3, "chunks": 2, "done": done, "encodingStatus": None,
        "costs": {"accruedSoFar": 0.0042, "displayCost": "$0.004", "currency": "USD",
                  "disclaimer": "Estimated cost only."},
        "renderId": render_id, "renderMetadata": None,
        "outputFile": f"https://s3.{REGION}.amazonaws.com/{REMOTION_BUCKET}/renders/{render_id}/out.mp4"
        if done else None,
        "outKey": f"renders/{render_id}/out.mp4" if done else None, "outBucket": REMOTION_BUCKET if done else None,
        "timeToFinish": 4210 if done else None,
        "errors": [] if done else [{"message": fatal, "name": "Error", "chunk": 0, "frame": 3, "isFatal": True}],
        "fatalErrorEncountered": not done, "currentTime": 1700000000000, "renderSize": size,
        "outputSizeInBytes": size if done else None, "lambdasInvoked": 2, "framesRendered": 30,
    }


def check_alpha(webm: Path, spec: CompositionSpec) -> None:
    """The person layer is VP9 with an alpha plane (WebM's alpha_mode), transparent around the person and
    opaque on them, at the person's box for the whole video."""
    with av.open(str(webm)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9" and stream.metadata.get("alpha_mode") == "1"
    box = person_box(spec.width, spec.height, spec.person.scale)
    raw = subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-c:v", "libvpx-vp9", "-i", str(webm), "-vf", "alphaextract",
         "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
        check=True, capture_output=True,
    ).stdout
    alpha = np.frombuffer(raw, np.uint8).reshape(-1, box.height, box.width)
    assert len(alpha) == spec.frames
    assert (alpha < 16).mean() > 0.2 and (alpha > 240).mean() > 0.1, "alpha must cut the person out"


def _draw(spec: CompositionSpec, files: dict[str, Path], person: Path, out: Path) -> None:
    """The frame the composition draws, roughly: the background, the person layer at its box, the audio."""
    box = person_box(spec.width, spec.height, spec.person.scale)
    audio = ["-i", str(files[spec.person.source_key])] if spec.person.media.has_audio else []
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-loop", "1", "-framerate", str(spec.fps),
         "-i", str(files[spec.background.key]), "-c:v", "libvpx-vp9", "-i", str(person), *audio,
         "-filter_complex", f"[0:v]scale={spec.width}:{spec.height},setsar=1[bg];"
                            f"[bg][1:v]overlay={box.x}:{box.y},format=yuv420p[v]",
         "-map", "[v]", *(["-map", "2:a", "-c:a", "aac"] if audio else []), "-frames:v", str(spec.frames),
         "-c:v", "libx264", "-preset", "ultrafast", str(out)],
        check=True,
    )


@pytest.fixture
def remotion(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRemotion:
    fake = FakeRemotion(s3, tmp_path / "remotion")
    monkeypatch.setattr(remotion_lambda, "RemotionClient", fake.client)
    return fake


def test_enhance_renders_on_remotion_from_presigned_urls(
    s3_settings: Settings, remotion: FakeRemotion, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encodes: list[Path] = []
    encode = stage_module.encode_person_layer

    def counted(*args: Any, **kwargs: Any) -> None:
        encodes.append(args[2])
        encode(*args, **kwargs)

    monkeypatch.setattr(stage_module, "encode_person_layer", counted)
    registry = StageRegistry(ALL_STAGES)
    with Runtime.from_settings(s3_settings) as runtime:
        task = submit_enhance(runtime, new_task_id(), clip, OPTIONS)
        assert task.input["renderer"] == "remotion"

        remotion.fail_next = True  # Remotion's render fails: the task fails with its message ...
        failed = run_task(runtime, registry, task.task_id)
        assert failed.status == TaskStatus.FAILED and failed.error_code == "REMOTION_RENDER_FAILED"
        assert "Loading <Video>" in (failed.error_message or "")
        done = run_task(runtime, registry, task.task_id)  # ... and a retry renders again, the rest replayed
        assert done.status == TaskStatus.SUCCEEDED, (done.error_code, done.error_message)
        assert remotion.clients == [(REGION, SERVE_URL, FUNCTION)] * 2

        runs = runtime.tasks.list_stage_runs(task.task_id)
        by_stage = {(r.stage, r.status) for r in runs}
        assert not {"render_chunk", "assemble"} & {r.stage for r in runs}
        assert [r.status for r in runs if r.stage == "remotion_render"] == [StageRunStatus.FAILED,
                                                                             StageRunStatus.SUCCEEDED]
        # Every chunk's matte stored: chunk 0's in Prepare (reused by the Map, same input), chunk 1's in the Map.
        assert Counter(r.status for r in runs if r.stage == "matte") == Counter(
            {StageRunStatus.SUCCEEDED: 2, StageRunStatus.REUSED: 1})
        assert ("finalize", StageRunStatus.SUCCEEDED) in by_stage
        assert len(encodes) == 1, "the retry reuses the person layer the failed attempt stored"

        chunks = next(t for t in runtime.tasks.list_transitions(task.task_id) if t.state_name == "Chunks").output
        matte_keys = [item["matte_key"] for item in chunks["chunks"]]
        assert len(matte_keys) == 2 and all(runtime.objects.exists(key) for key in matte_keys)
        # Every layer the spec names went to the browser by URL, the upload's audio too.
        spec = CompositionSpec.model_validate(remotion.started[-1]["spec"])
        assert set(remotion.started[-1]["assets"]) == {spec.background.key, *(o.key for o in spec.overlays),
                                                       *(t.key for t in spec.texts), spec.person.source_key}
        assert spec.texts, "the title card is one of the layers"

        # Finalize took Remotion's video from the same place as Assemble's; it is the one Remotion wrote.
        output = done.output or {}
        final = output["final_key"]
        assert re.fullmatch(rf"tasks/{task.task_id}/remotion_render/[0-9a-f]{{16}}/final\.mp4", final)
        assert runtime.objects.get_bytes(final) == remotion.s3.get_object(
            Bucket=REMOTION_BUCKET, Key="renders/r2/out.mp4")["Body"].read()
        with runtime.objects.local_copy(final) as path:
            video = probe(path)
        assert video.video is not None and (video.video.width, video.video.height) == (180, 320)
        assert video.audio is not None and abs(video.duration_seconds - 2.0) < 0.3
        for key in ("comparison_key", "asset_pack_key", "contact_sheet_key"):
            assert runtime.objects.exists(output[key]), key

        # Remotion's own cost figure is in the ledger, once: the failed render reported none.
        assert runtime.costs is not None
        entries = [e for e in CostStore(runtime.costs.store.database).entries(task.task_id)
                   if e.provider == "remotion_lambda"]
        assert [(e.stage, e.resource, e.amount_usd) for e in entries] == [("remotion_render", "render_usd", 0.0042)]
        assert runtime.costs.summary(task.task_id).by_stage["remotion_render"] >= 0.0042

        # The same input again: the stored output, no render, no new cost.
        plan = next(t for t in runtime.tasks.list_transitions(task.task_id) if t.state_name == "Prepare").output
        payload = {"task_id": task.task_id, "spec_key": plan["prepared"]["plan"]["spec_key"],
                   "matte_keys": matte_keys, "person_chroma_shift": plan["prepared"]["plan"]["person_chroma_shift"]}
        again = execute_stage(REMOTION_RENDER, payload, runtime)
        assert again["video_key"] == final and len(remotion.started) == 2
        assert runtime.tasks.list_stage_runs(task.task_id)[-1].status == StageRunStatus.REUSED
        assert len([e for e in CostStore(runtime.costs.store.database).entries(task.task_id)
                    if e.provider == "remotion_lambda"]) == 1


@pytest.mark.parametrize(("overrides", "code", "names"), [
    ({"object_store": "s3", "s3_bucket": "b", "renderer": "remotion", "remotion_region": REGION},
     "REMOTION_NOT_CONFIGURED", ["VIDLUXE_REMOTION_FUNCTION_NAME", "VIDLUXE_REMOTION_SERVE_URL"]),
    (REMOTION, "REMOTION_NEEDS_S3", ["VIDLUXE_OBJECT_STORE=s3"]),
])
def test_submit_refuses_remotion_it_cannot_run_before_any_work(
    tmp_path: Path, clip: Path, overrides: dict[str, Any], code: str, names: list[str]
) -> None:
    settings = _settings(tmp_path, **overrides)
    with pytest.raises(ConfigurationError) as caught:
        check_renderer(settings)
    assert caught.value.code == code and all(name in caught.value.message for name in names)
    local = _settings(tmp_path, **{k: v for k, v in overrides.items() if not k.startswith(("object", "s3"))})
    with Runtime.from_settings(local) as runtime:
        with pytest.raises(ConfigurationError) as refused:
            submit_enhance(runtime, new_task_id(), clip, OPTIONS)
        assert refused.value.code in ("REMOTION_NOT_CONFIGURED", "REMOTION_NEEDS_S3")
        assert runtime.tasks.list_tasks(limit=5) == [] and runtime.objects.list_keys("tasks/") == []


def test_the_stage_refuses_a_local_store_or_missing_settings_before_reading_anything(tmp_path: Path) -> None:
    """The backstop for a task submitted elsewhere (another process's settings) reaching this runtime."""
    for overrides, code in (({}, "REMOTION_NOT_CONFIGURED"), (REMOTION, "REMOTION_NEEDS_S3")):
        with Runtime.from_settings(_settings(tmp_path, **overrides)) as runtime:
            task = create_task(runtime, "enhance", {}, new_task_id())
            payload = {"task_id": task.task_id, "spec_key": "tasks/none/spec.json", "matte_keys": ["none.mp4"]}
            with pytest.raises(ConfigurationError) as caught:
                execute_stage(REMOTION_RENDER, payload, runtime)  # the spec does not exist: never read
            assert caught.value.code == code
            (run,) = runtime.tasks.list_stage_runs(task.task_id)
            assert (run.status, run.error_code) == (StageRunStatus.FAILED, code)


def test_the_renderer_is_read_at_submission_and_travels_in_the_execution_input(tmp_path: Path) -> None:
    assert check_renderer(_settings(tmp_path)) == "ffmpeg"
    assert check_renderer(_settings(tmp_path, remotion_region=REGION)) == "ffmpeg"  # unused settings: no check
    assert execution_input(OPTIONS, source_key="k", source_name="a.mp4")["renderer"] == "ffmpeg"
    assert execution_input(OPTIONS, source_key="k", source_name="a.mp4", renderer="remotion")["renderer"] == "remotion"


# ------------------------------------------------------------- routing, as Step Functions runs the machine

TASK = "tsk_0123456789abcdef0123456789abcdef"
CALLBACK = "arn:aws:states:::lambda:invoke.waitForTaskToken"
CHUNKS = [{"index": i, "start_frame": 15 * i, "frames": 15} for i in range(3)]


class Lambdas:
    """Every Lambda of the deployed machine answered with its output's shape; records (function, payload)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, resource: str, parameters: dict[str, Any], context: TaskContext) -> Any:
        function = parameters["FunctionName"].rsplit(":", 1)[1]
        payload = parameters["Payload"]
        self.calls.append((function, payload))
        if resource == CALLBACK:  # the GPU function's SendTaskSuccess output, not wrapped in Payload
            return {"matte_key": f"gpu/{payload['request']['chunk']['index']}/matte.mp4"}
        answers: dict[str, Any] = {
            "ProbeFunctionArn": {"source_key": "s.mp4", "media": {}, "hints": {}, "width": 180, "height": 320,
                                 "fps": 15, "frames": 45, "chunks": CHUNKS, "source": {}, "duration_seconds": 3.0},
            "LearnStyleFunctionArn": {"style": {}},
            "GenerateAssetsFunctionArn": {},
            "PlanCompositionFunctionArn": {"spec_key": "spec.json", "person_chroma_shift": [0, 0], "asset_keys": [],
                                           "style": {}},
            "MatteFunctionArn": {"matte_key": f"local/{payload.get('chunk', {}).get('index')}/matte.mp4"},
            "RenderChunkFunctionArn": {"video_key": f"chunk-{payload.get('index')}.mp4"},
            "AssembleFunctionArn": {"video_key": "assembled.mp4"},
            "RemotionRenderFunctionArn": {"video_key": "remotion.mp4", "person_layer_key": "p.webm",
                                          "render_id": "r", "cost_usd": 0.01},
            "FinalizeFunctionArn": {"final_key": payload.get("video_key"), "comparison_key": "c", "asset_pack_key": "a",
                                    "contact_sheet_key": "s", "quality": {}, "square_key": None, "gif_key": None},
        }
        return {"ExecutedVersion": "$LATEST", "Payload": answers[function], "StatusCode": 200}

    def payloads(self, function: str) -> list[dict[str, Any]]:
        return [p for f, p in self.calls if f == function]


@pytest.mark.parametrize("renderer", ["ffmpeg", "remotion"])
@pytest.mark.parametrize("matting", ["local", "rvm"])
def test_the_deployed_machine_routes_on_the_renderer(renderer: str, matting: str) -> None:
    text = re.sub(r"\$\{([A-Za-z0-9_]+)\}", r"arn:aws:lambda:us-east-1:123456789012:function:\1",
                  json.dumps(state_machines.definition("enhance")))
    lambdas = Lambdas()
    options = EnhanceOptions(matting=matting)  # type: ignore[arg-type]
    document = execution_input(options, source_key="s.mp4", source_name="a.mp4", renderer=renderer)  # type: ignore[arg-type]
    result = run_execution(StateMachine.load(json.loads(text)), document, execution_id=f"arn:aws:states:::e:{TASK}",
                           execution_name=TASK, invoke_task=lambdas, max_workers=2)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    gpu = matting != "local"
    prepared = (lambdas.payloads("GpuDispatchFunctionArn") if gpu else lambdas.payloads("MatteFunctionArn"))[0]
    first = prepared["request"] if gpu else prepared
    (finalize,) = lambdas.payloads("FinalizeFunctionArn")
    if renderer == "ffmpeg":  # today's states: chunks rendered and joined, no Remotion
        assert not lambdas.payloads("RemotionRenderFunctionArn")
        assert sorted(p["index"] for p in lambdas.payloads("RenderChunkFunctionArn")) == [0, 1, 2]
        assert finalize["video_key"] == "assembled.mp4"
        return
    assert not lambdas.payloads("RenderChunkFunctionArn") and not lambdas.payloads("AssembleFunctionArn")
    # Every chunk's matte is stored by the chosen matting; chunk 0's request is Prepare's, so the stage's
    # output (local) or the dispatch's output key (GPU) is found instead of matted again.
    mattes = lambdas.payloads("GpuDispatchFunctionArn") if gpu else lambdas.payloads("MatteFunctionArn")
    requests = [p["request"] if gpu else p for p in mattes]
    assert sorted(r["chunk"]["index"] for r in requests) == [0, 0, 1, 2]
    assert [r for r in requests if r["chunk"]["index"] == 0] == [first, first]
    (render,) = lambdas.payloads("RemotionRenderFunctionArn")
    kind = "gpu" if gpu else "local"
    assert render == {"task_id": TASK, "spec_key": "spec.json", "person_chroma_shift": [0, 0],
                      "matte_keys": [f"{kind}/{i}/matte.mp4" for i in range(3)]}
    assert finalize["video_key"] == "remotion.mp4" and finalize["matte_key"] == f"{kind}/0/matte.mp4"
