"""The Remotion renderer: the whole CompositionSpec drawn by the PremiumTalkingVideo composition
(remotion/) on Remotion Lambda, through the ``remotion-lambda`` SDK.

The flow, for one video:

1. :func:`encode_person_layer` turns the upload into the person layer the browser draws: frames fitted
   into the person's box with the matte (and the feathered edges) as an alpha plane, encoded as one
   VP9 WebM (yuva420p) for the whole video. The layer is made by :mod:`shared.media.person`, the same
   frames and alpha the ffmpeg renderer reads on its stdin.
2. :func:`render_props` builds the input props: the spec as ``model_dump(mode="json")`` (the zod schema
   in remotion/src/schema.ts mirrors it; tests/remotion checks the two) and a URL for every object key
   the spec names, presigned so the Lambda's browser can fetch them.
3. :meth:`RemotionRenderer.render` starts the render (``render_media_on_lambda``) and polls
   ``get_render_progress`` until ``done`` or a fatal error, with a timeout and a growing interval:
   Remotion's own webhook retries for only about 1.5 s, so polling is the path that survives a busy
   receiver.
4. The output is copied from Remotion's bucket into our object store under the stage's key, like any
   stage output.

Which renderer draws a video is the ``VIDLUXE_RENDERER`` setting (``ffmpeg`` by default), chosen when a
task is submitted; the pipeline's stage is :mod:`shared.stages.remotion_render`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from shared.composition import CompositionSpec
from shared.errors import ConfigurationError, TransientError, VidluxeError
from shared.media.ffmpeg import run_ffmpeg
from shared.media.person import matte_layer, stored_matte_layer
from shared.media.render import person_box
from shared.settings import Settings
from shared.storage.objects import ObjectStore
from shared.storage.tasks import ResourceUsage

COMPOSITION = "PremiumTalkingVideo"
PERSON_LAYER_ENCODER = (
    "-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p", "-b:v", "0", "-crf", "32", "-deadline", "realtime",
    "-cpu-used", "8", "-row-mt", "1", "-auto-alt-ref", "0",
)


class RemotionRenderError(VidluxeError):
    """Remotion Lambda reported a fatal error, the render timed out, or its output could not be read."""

    code = "REMOTION_RENDER_FAILED"


class RemotionConfigurationError(ConfigurationError, RemotionRenderError):
    """The settings cannot drive a Remotion render (REMOTION_NOT_CONFIGURED, REMOTION_NEEDS_S3): the
    operator's to fix, so a ConfigurationError, raised before any render is started."""

    code = "REMOTION_NOT_CONFIGURED"


NEEDS_S3 = (
    "VIDLUXE_RENDERER=remotion needs the S3 object store (VIDLUXE_OBJECT_STORE=s3): Remotion Lambda's "
    "browser fetches every layer by a presigned URL, and a local object store has none it could reach."
)


class RemotionLambda(Protocol):
    """What this module uses of ``remotion_lambda.RemotionClient`` (injected, so tests stub AWS under it)."""

    def render_media_on_lambda(self, render_params: Any) -> Any: ...

    def get_render_progress(self, render_id: str, bucket_name: str, log_level: str = "info") -> Any: ...


class S3Reader(Protocol):
    """The part of a boto3 S3 client that copies the output out of Remotion's bucket."""

    def download_file(self, Bucket: str, Key: str, Filename: str) -> None: ...


@dataclass(frozen=True)
class RemotionConfig:
    """Where the renders run: the deployed function, the site (serve URL) and their region."""

    function_name: str
    serve_url: str
    region: str
    composition: str = COMPOSITION
    poll_timeout: float = 900.0  # seconds to wait for one render
    first_interval: float = 1.0  # seconds between polls, growing by ``backoff`` up to ``max_interval``
    max_interval: float = 10.0
    backoff: float = 1.5
    frames_per_lambda: int | None = None


@dataclass(frozen=True)
class RenderedVideo:
    key: str  # in our object store
    render_id: str
    bucket: str  # Remotion's
    remote_key: str
    size_bytes: int | None
    cost_usd: float | None


def spec_object_keys(spec: CompositionSpec) -> list[str]:
    """The object keys the composition fetches (pure): background, overlays, text cards, and the upload
    when its audio is used (the person layer is a separate URL)."""
    keys = [spec.background.key, *(o.key for o in spec.overlays), *(t.key for t in spec.texts)]
    if spec.person.media.has_audio:
        keys.append(spec.person.source_key)
    return keys


def render_props(
    spec: CompositionSpec,
    urls: Mapping[str, str],
    person_video: str | None,
    *,
    person_chroma_shift: tuple[float, float] = (0.0, 0.0),
) -> dict[str, Any]:
    """The composition's input props (pure). ``urls`` maps object keys to URLs the renderer's browser can
    fetch; every key of :func:`spec_object_keys` must be there. Raises KeyError naming a missing key."""
    keys = spec_object_keys(spec)
    missing = [key for key in keys if key not in urls]
    if missing:
        raise KeyError(f"no URL for the object keys {missing}: the browser fetches every layer by URL")
    return {
        "spec": spec.model_dump(mode="json"),
        "assets": {key: urls[key] for key in keys},
        "person_video": person_video,
        "person_chroma_shift": list(person_chroma_shift),
        "audio": spec.person.media.has_audio,
    }


def plan_person_layer_encode(spec: CompositionSpec, out: Path) -> list[str]:
    """ffmpeg arguments encoding the person layer, read as raw yuva420p frames of the person's box on
    stdin, into a VP9 WebM with alpha (pure)."""
    box = person_box(spec.width, spec.height, spec.person.scale)
    return [
        "-f", "rawvideo", "-pix_fmt", "yuva420p", "-s", f"{box.width}x{box.height}", "-framerate", str(spec.fps),
        "-i", "pipe:0", *PERSON_LAYER_ENCODER, "-an", "-frames:v", str(spec.frames), "-f", "webm", "-y", str(out),
    ]


def encode_person_layer(
    spec: CompositionSpec,
    source: Path,
    out: Path,
    *,
    mattes: Mapping[int, Path] | None = None,
    matte_scale: float = 0.5,
    keyframe_interval: int = 5,
    cancelled: threading.Event | None = None,
    usage: ResourceUsage | None = None,
) -> None:
    """Write the whole video's person layer to ``out`` (WebM, VP9 with alpha), chunk after chunk: a chunk
    with a stored matte in ``mattes`` uses it, the others are matted by the local model as they are
    decoded. The encoder's and decoders' CPU, and the feeding thread's, are added to ``usage``.
    Raises MediaError when decoding, matting or the encode fails, or ``cancelled`` is set."""
    stored = mattes or {}
    feed_usage = ResourceUsage()  # the layer's decoders and matting, beside the encoder's own CPU

    def feed(stream: IO[bytes]) -> None:
        started = time.thread_time()  # the feed runs on run_ffmpeg's writer thread, not the caller's
        try:
            for index in range(len(spec.chunks)):
                if index in stored:
                    stored_matte_layer(spec, index, source, stored[index], stream, cancelled=cancelled,
                                       usage=feed_usage)
                else:
                    matte_layer(spec, index, source, stream, matte_scale=matte_scale,
                                keyframe_interval=keyframe_interval, cancelled=cancelled, usage=feed_usage)
        finally:
            feed_usage.cpu_seconds += time.thread_time() - started

    try:
        run_ffmpeg(plan_person_layer_encode(spec, out), feed=feed, duration_seconds=spec.duration_seconds,
                   cancelled=cancelled, usage=usage)
    finally:
        if usage is not None:
            usage.cpu_seconds += feed_usage.cpu_seconds


_THROTTLED = {
    "TooManyRequestsException", "ThrottlingException", "Throttling", "SlowDown", "RequestLimitExceeded",
    "ServiceException", "ServiceUnavailable", "EC2ThrottledException", "ResourceConflictException",
}


def _failure(message: str, exc: Exception) -> VidluxeError:
    """What a failed call to AWS becomes: a TransientError (REMOTION_UNAVAILABLE, which the state
    machine retries) for throttling, a 5xx or a broken connection; otherwise a RemotionRenderError."""
    from botocore.exceptions import ClientError, HTTPClientError

    if isinstance(exc, HTTPClientError):  # connection refused or reset, timeouts
        return TransientError(message, code="REMOTION_UNAVAILABLE")
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if exc.response.get("Error", {}).get("Code") in _THROTTLED or status == 429 or status >= 500:
            return TransientError(message, code="REMOTION_UNAVAILABLE")
    return RemotionRenderError(message)


class RemotionRenderer:
    """Renders a CompositionSpec on Remotion Lambda and stores the video in our object store."""

    def __init__(
        self,
        config: RemotionConfig,
        client: RemotionLambda,
        s3: S3Reader,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._client = client
        self._s3 = s3
        self._sleep = sleep
        self._clock = clock

    def start(self, props: dict[str, Any]) -> tuple[str, str]:
        """Start the render; returns (render id, Remotion's bucket). Raises RemotionRenderError."""
        from remotion_lambda import RenderMediaParams

        params = RenderMediaParams(
            composition=self._config.composition, input_props=props, codec="h264",
            frames_per_lambda=self._config.frames_per_lambda, region=self._config.region,
        )
        try:
            started = self._client.render_media_on_lambda(params)
        except Exception as exc:  # the SDK raises its own errors and botocore's
            raise _failure(f"Remotion Lambda did not start the render: {exc}", exc) from exc
        if started is None:
            raise RemotionRenderError("Remotion Lambda answered the render request with no render id.")
        return str(started.render_id), str(started.bucket_name)

    def wait(self, render_id: str, bucket: str, on_progress: Callable[[float], None] | None = None) -> Any:
        """Poll the render's progress until it is done; returns the last progress document. ``on_progress``
        is told Remotion's ``overallProgress`` (0..1) after each poll.

        Raises RemotionRenderError on a fatal error (with Remotion's messages) or after ``poll_timeout``.
        """
        deadline = self._clock() + self._config.poll_timeout
        interval = self._config.first_interval
        while True:
            try:
                progress = self._client.get_render_progress(render_id=render_id, bucket_name=bucket)
            except Exception as exc:
                raise _failure(f"Could not read the progress of render {render_id}: {exc}", exc) from exc
            if progress is not None:
                if getattr(progress, "fatalErrorEncountered", False):
                    messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e)
                                for e in getattr(progress, "errors", [])]
                    raise RemotionRenderError(f"Remotion render {render_id} failed: {'; '.join(messages) or 'fatal'}")
                if getattr(progress, "done", False):
                    return progress
                if on_progress is not None:
                    on_progress(float(getattr(progress, "overallProgress", 0.0) or 0.0))
            if self._clock() + interval > deadline:
                raise RemotionRenderError(
                    f"Remotion render {render_id} was not done after {self._config.poll_timeout:.0f} s "
                    f"(bucket {bucket}); raise poll_timeout or lower frames_per_lambda."
                )
            self._sleep(interval)
            interval = min(self._config.max_interval, interval * self._config.backoff)

    def render(
        self, props: dict[str, Any], objects: ObjectStore, key: str, scratch: Path,
        on_progress: Callable[[float], None] | None = None,
    ) -> RenderedVideo:
        """Render, wait, and copy the video into ``objects`` at ``key``. Raises RemotionRenderError."""
        render_id, bucket = self.start(props)
        progress = self.wait(render_id, bucket, on_progress)
        remote_key = getattr(progress, "outKey", None)
        out_bucket = getattr(progress, "outBucket", None) or bucket
        if not remote_key:
            raise RemotionRenderError(f"Remotion render {render_id} is done but names no output key.")
        local = scratch / "remotion-output.mp4"
        try:
            self._s3.download_file(Bucket=out_bucket, Key=remote_key, Filename=str(local))
        except Exception as exc:
            raise _failure(f"Could not copy s3://{out_bucket}/{remote_key}: {exc}", exc) from exc
        objects.put_file(key, local, "video/mp4")
        costs = getattr(progress, "costs", None)
        cost = costs.get("accruedSoFar") if isinstance(costs, dict) else None
        return RenderedVideo(
            key=key, render_id=render_id, bucket=out_bucket, remote_key=str(remote_key),
            size_bytes=getattr(progress, "outputSizeInBytes", None), cost_usd=float(cost) if cost is not None else None,
        )


def remotion_renderer(config: RemotionConfig, session: Any | None = None) -> RemotionRenderer:
    """A renderer over the real SDK and boto3 (``session``: a boto3 Session; default credential chain)."""
    import boto3
    from remotion_lambda import RemotionClient

    session = session or boto3.Session(region_name=config.region)
    client = RemotionClient(
        region=config.region, serve_url=config.serve_url, function_name=config.function_name, session=session
    )
    return RemotionRenderer(config, client, session.client("s3", region_name=config.region))


def remotion_config(settings: Settings) -> RemotionConfig:
    """The Remotion config from the settings (VIDLUXE_REMOTION_*).

    Raises RemotionConfigurationError (REMOTION_NOT_CONFIGURED) naming each variable that is unset.
    """
    function_name, serve_url, region = (
        settings.remotion_function_name, settings.remotion_serve_url, settings.remotion_region
    )
    if not function_name or not serve_url or not region:
        unset = [f"VIDLUXE_{name.upper()}" for name, value in
                 (("remotion_function_name", function_name), ("remotion_serve_url", serve_url),
                  ("remotion_region", region)) if not value]
        raise RemotionConfigurationError(f"VIDLUXE_RENDERER=remotion needs {', '.join(unset)}.")
    return RemotionConfig(function_name=function_name, serve_url=serve_url, region=region)


def check_remotion_settings(settings: Settings) -> RemotionConfig:
    """What rendering on Remotion needs of the settings: the VIDLUXE_REMOTION_* variables and the S3
    object store. Raises RemotionConfigurationError: REMOTION_NOT_CONFIGURED, REMOTION_NEEDS_S3."""
    config = remotion_config(settings)
    if settings.object_store != "s3":
        raise RemotionConfigurationError(NEEDS_S3, code="REMOTION_NEEDS_S3")
    return config
