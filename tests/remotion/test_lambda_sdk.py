"""shared/providers/remotion.py through the real ``remotion-lambda`` SDK, stubbed at boto3: the SDK
builds the Lambda payloads itself (checked here against what Remotion's function reads), botocore's
Stubber answers with the shapes Remotion's function returns, and moto's S3 holds Remotion's bucket."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from shared.composition import BackgroundLayer, CompositionSpec, PersonLayer, TextLayer
from shared.errors import TransientError
from shared.media.models import Chunk, MediaInfo
from shared.providers.remotion import (
    RemotionConfig,
    RemotionRenderer,
    RemotionRenderError,
    plan_person_layer_encode,
    remotion_config,
    render_props,
)
from shared.settings import Settings
from shared.storage.local_objects import LocalObjectStore

REGION = "us-east-1"
FUNCTION = "remotion-render-4-0-529-mem2048mb-disk2048mb-120sec"
SERVE_URL = "https://remotionlambda-useast1-abcdefgh.s3.us-east-1.amazonaws.com/sites/vidluxe/index.html"
BUCKET = "remotionlambda-useast1-abcdefgh"
RENDER_ID = "8hfxlw"


def _spec() -> CompositionSpec:
    media = MediaInfo(path="u.mp4", container_format="mp4", duration_seconds=2.0, size_bytes=10)
    return CompositionSpec(
        width=360, height=640, fps=30, frames=60, chunks=[Chunk(index=0, start_frame=0, frames=60)],
        background=BackgroundLayer(key="bg.png"), person=PersonLayer(source_key="u.mp4", media=media),
        texts=[TextLayer(key="title.png", start=0.3, end=1.8, y=38)],
    )


def _payload(body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": StreamingBody(io.BytesIO(raw), len(raw))}


# What the function answers (Remotion's docs: renderMediaOnLambda() and getRenderProgress() return values,
# wrapped in the {"type": "success"} envelope the SDK checks).
STARTED = {
    "type": "success", "renderId": RENDER_ID, "bucketName": BUCKET,
    "cloudWatchLogs": f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}#logsV2:log-groups",
    "folderInS3Console": f"https://s3.console.aws.amazon.com/s3/buckets/{BUCKET}?prefix=renders/{RENDER_ID}/",
}


def _progress(done: bool, overall: float, **extra: Any) -> dict[str, Any]:
    return {
        "type": "success", "overallProgress": overall, "chunks": 2 if done else 1, "done": done,
        "encodingStatus": None, "costs": {"accruedSoFar": 0.0021, "displayCost": "$0.002", "currency": "USD",
                                          "disclaimer": "Estimated cost only."},
        "renderId": RENDER_ID, "renderMetadata": None,
        "outputFile": f"https://s3.{REGION}.amazonaws.com/{BUCKET}/renders/{RENDER_ID}/out.mp4" if done else None,
        "outKey": f"renders/{RENDER_ID}/out.mp4" if done else None, "outBucket": BUCKET if done else None,
        "timeToFinish": 4210 if done else None, "errors": [], "fatalErrorEncountered": False,
        "currentTime": 1700000000000, "renderSize": 1000, "outputSizeInBytes": 11 if done else None,
        "lambdasInvoked": 2, "framesRendered": 60 if done else 30, **extra,
    }


class _Session:
    """A boto3 Session whose Lambda client is stubbed; S3 comes from moto."""

    def __init__(self, lambda_client: Any) -> None:
        self._lambda = lambda_client

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._lambda if service == "lambda" else boto3.client(service, **kwargs)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=f"renders/{RENDER_ID}/out.mp4", Body=b"mp4-bytes!!")
        yield s3


def _renderer(lambda_client: Any, s3: Any, sleeps: list[float], timeout: float = 60.0) -> RemotionRenderer:
    from remotion_lambda import RemotionClient

    config = RemotionConfig(function_name=FUNCTION, serve_url=SERVE_URL, region=REGION, poll_timeout=timeout)
    client = RemotionClient(region=REGION, serve_url=SERVE_URL, function_name=FUNCTION, session=_Session(lambda_client))
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    return RemotionRenderer(config, client, s3, sleep=sleep, clock=lambda: now[0])


def _stubbed_lambda() -> tuple[Any, Stubber, list[dict[str, Any]]]:
    client = boto3.client("lambda", region_name=REGION)
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.lambda.Invoke", lambda params, **_: sent.append(json.loads(params["Payload"]))
    )
    return client, Stubber(client), sent


def test_a_render_is_started_polled_and_copied_into_the_object_store(aws: Any, tmp_path: Path) -> None:
    lambda_client, stub, sent = _stubbed_lambda()
    expected = {"FunctionName": FUNCTION, "Payload": ANY}
    stub.add_response("invoke", _payload(STARTED), expected)
    stub.add_response("invoke", _payload(_progress(False, 0.1)), expected)
    stub.add_response("invoke", _payload(_progress(False, 0.6)), expected)
    stub.add_response("invoke", _payload(_progress(True, 1.0)), expected)
    spec = _spec()
    props = render_props(spec, {"bg.png": "https://x/bg.png", "title.png": "https://x/title.png"},
                         "https://x/person.webm", person_chroma_shift=(1.5, -2.0))
    objects = LocalObjectStore(tmp_path / "objects")
    sleeps: list[float] = []
    with stub:
        video = _renderer(lambda_client, aws, sleeps).render(props, objects, "tasks/t/render/final.mp4", tmp_path)
        stub.assert_no_pending_responses()

    assert objects.get_bytes("tasks/t/render/final.mp4") == b"mp4-bytes!!"
    assert (video.render_id, video.bucket, video.remote_key) == (RENDER_ID, BUCKET, f"renders/{RENDER_ID}/out.mp4")
    assert video.size_bytes == 11 and video.cost_usd == pytest.approx(0.0021)
    assert sleeps == [1.0, 1.5]  # polled three times, the interval growing

    start, *polls = sent
    # What Remotion's function reads from a start payload (the SDK's own serialization).
    assert start["type"] == "start" and start["composition"] == "PremiumTalkingVideo"
    assert start["serveUrl"] == SERVE_URL and start["codec"] == "h264" and start["version"] == "4.0.529"
    assert start["inputProps"]["type"] == "payload"  # small props travel inline, not via the bucket
    assert json.loads(start["inputProps"]["payload"]) == props
    assert CompositionSpec.model_validate(props["spec"]) == spec  # what the zod schema mirrors
    for poll in polls:
        assert poll == {"type": "status", "renderId": RENDER_ID, "bucketName": BUCKET, "version": "4.0.529",
                        "logLevel": "info", "s3OutputProvider": None, "forcePathStyle": False}


def test_a_fatal_error_stops_polling_with_remotions_message(aws: Any, tmp_path: Path) -> None:
    lambda_client, stub, _ = _stubbed_lambda()
    stub.add_response("invoke", _payload(STARTED))
    error = {"message": "delayRender() \"Loading <Img>\" timed out", "name": "Error", "stack": "...", "chunk": 0,
             "frame": 12, "type": "renderer", "isFatal": True, "tmpDir": None, "attempt": 1, "totalAttempts": 1,
             "willRetry": False}
    stub.add_response("invoke", _payload(_progress(False, 0.2, fatalErrorEncountered=True, errors=[error])))
    with stub, pytest.raises(RemotionRenderError, match="Loading <Img>"):
        _renderer(lambda_client, aws, []).render({}, LocalObjectStore(tmp_path / "o"), "k.mp4", tmp_path)


def test_polling_gives_up_after_the_timeout(aws: Any, tmp_path: Path) -> None:
    lambda_client, stub, _ = _stubbed_lambda()
    stub.add_response("invoke", _payload(STARTED))
    for _ in range(6):
        stub.add_response("invoke", _payload(_progress(False, 0.1)))
    sleeps: list[float] = []
    with stub, pytest.raises(RemotionRenderError, match="not done after 10 s"):
        _renderer(lambda_client, aws, sleeps, timeout=10).render({}, LocalObjectStore(tmp_path / "o"), "k", tmp_path)
    assert sum(sleeps) <= 10


def test_an_error_answer_from_the_function_is_a_render_error(aws: Any, tmp_path: Path) -> None:
    lambda_client, stub, _ = _stubbed_lambda()
    stub.add_response("invoke", _payload({"type": "error", "message": "Version mismatch: 4.0.528 vs 4.0.529",
                                          "stack": "..."}))
    with stub, pytest.raises(RemotionRenderError, match="Version mismatch"):
        _renderer(lambda_client, aws, []).render({}, LocalObjectStore(tmp_path / "o"), "k", tmp_path)


@pytest.mark.parametrize(("code", "status"), [("TooManyRequestsException", 429), ("ServiceException", 500)])
def test_throttling_or_a_busy_lambda_is_transient_so_the_state_machine_retries(
    aws: Any, tmp_path: Path, code: str, status: int
) -> None:
    lambda_client, stub, _ = _stubbed_lambda()
    stub.add_client_error("invoke", service_error_code=code, http_status_code=status)
    with stub, pytest.raises(TransientError) as raised:
        _renderer(lambda_client, aws, []).render({}, LocalObjectStore(tmp_path / "o"), "k", tmp_path)
    assert raised.value.code == "REMOTION_UNAVAILABLE" and raised.value.error_name == "TransientError"


def test_a_refused_invocation_is_not_retried(aws: Any, tmp_path: Path) -> None:
    lambda_client, stub, _ = _stubbed_lambda()
    stub.add_client_error("invoke", service_error_code="AccessDeniedException", http_status_code=403)
    with stub, pytest.raises(RemotionRenderError, match="AccessDenied"):
        _renderer(lambda_client, aws, []).render({}, LocalObjectStore(tmp_path / "o"), "k", tmp_path)


def test_render_props_name_every_layer_and_refuse_a_missing_url() -> None:
    spec = _spec()
    with pytest.raises(KeyError, match=r"title\.png"):
        render_props(spec, {"bg.png": "u"}, None)
    props = render_props(spec, {"bg.png": "a", "title.png": "b", "other": "c"}, None)
    assert props["assets"] == {"bg.png": "a", "title.png": "b"} and props["audio"] is False


def test_the_person_layer_is_vp9_with_alpha_of_the_persons_box(tmp_path: Path) -> None:
    args = plan_person_layer_encode(_spec(), tmp_path / "p.webm")
    assert args[args.index("-s") + 1] == "316x564"  # person_box(360, 640, 0.88)
    assert "libvpx-vp9" in args and args[args.index("-pix_fmt", 6) + 1] == "yuva420p"


def test_the_renderer_setting_defaults_to_ffmpeg_and_remotion_needs_its_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().renderer == "ffmpeg"
    monkeypatch.setenv("VIDLUXE_RENDERER", "remotion")
    monkeypatch.setenv("VIDLUXE_REMOTION_REGION", REGION)
    settings = Settings()
    assert settings.renderer == "remotion"
    with pytest.raises(RemotionRenderError, match="VIDLUXE_REMOTION_FUNCTION_NAME, VIDLUXE_REMOTION_SERVE_URL"):
        remotion_config(settings)
    monkeypatch.setenv("VIDLUXE_REMOTION_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("VIDLUXE_REMOTION_SERVE_URL", SERVE_URL)
    assert remotion_config(Settings()) == RemotionConfig(function_name=FUNCTION, serve_url=SERVE_URL, region=REGION)
