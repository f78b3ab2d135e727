"""Probe and normalize: validate the upload and bring it to the output geometry.

This is where bad input stops: a missing, empty, truncated or non-video file fails here with a typed
error code. A valid video is made upright (rotation metadata applied), constant frame rate, and fitted
to the output size without distortion, keeping its audio; every later stage reads only this file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidInputError
from shared.media.normalize import normalize
from shared.media.probe import probe
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput


class ProbeInput(StageInput):
    source_key: str
    width: int = Field(default=1080, ge=16, le=4096, multiple_of=2)
    height: int = Field(default=1920, ge=16, le=4096, multiple_of=2)
    fps: int = Field(default=30, ge=1, le=120)
    max_duration_seconds: float = Field(default=600.0, gt=0)


class SourceSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    container: str
    codec: str
    width: int
    height: int
    rotation: int
    frame_rate: float | None
    variable_frame_rate: bool
    duration_seconds: float
    size_bytes: int
    has_audio: bool


class ProbeOutput(StageOutput):
    video_key: str
    width: int
    height: int
    fps: int
    duration_seconds: float
    has_audio: bool
    source: SourceSummary


def probe_and_normalize(inp: ProbeInput, ctx: StageContext) -> ProbeOutput:
    """Raises InvalidInputError (INPUT_*) for unusable input and MediaError when ffmpeg fails."""
    with ctx.runtime.objects.local_copy(inp.source_key) as source:
        info = probe(source, max_duration_seconds=inp.max_duration_seconds)
        if info.video is None:  # probe raises first; this narrows the type
            raise InvalidInputError("The file has no video stream.", code="INPUT_NO_VIDEO_STREAM")
        normalized = ctx.scratch / "normalized.mp4"
        normalize(
            source, normalized, info, width=inp.width, height=inp.height, fps=inp.fps,
            usage=ctx.usage, cancelled=ctx.cancelled, progress=ctx.progress,
        )
    key = ctx.output_key("normalized.mp4")
    ctx.runtime.objects.put_file(key, normalized, "video/mp4")
    video = info.video
    return ProbeOutput(
        video_key=key,
        width=inp.width,
        height=inp.height,
        fps=inp.fps,
        duration_seconds=info.duration_seconds,
        has_audio=info.audio is not None,
        source=SourceSummary(
            container=info.container_format,
            codec=video.codec,
            width=video.display_width,
            height=video.display_height,
            rotation=video.rotation,
            frame_rate=video.avg_frame_rate,
            variable_frame_rate=video.is_variable_frame_rate,
            duration_seconds=info.duration_seconds,
            size_bytes=info.size_bytes,
            has_audio=info.audio is not None,
        ),
    )


PROBE = Stage("probe", ProbeInput, ProbeOutput, probe_and_normalize)
