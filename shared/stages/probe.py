"""Probe: validate the upload and plan its chunks.

This is where bad input stops: a missing, empty, truncated or non-video file fails here with a typed
error code. Nothing is transcoded: later stages decode the upload itself, chunk by chunk, upright and
at the output size (see :mod:`shared.media.normalize`), so the final encode is the only full encode.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidInputError
from shared.media.models import Chunk, DecodeHints, MediaInfo
from shared.media.normalize import plan_chunks, read_decode_hints
from shared.media.probe import probe
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput


class ProbeInput(StageInput):
    source_key: str
    source_name: str | None = None  # the user's file name, used in error messages
    width: int = Field(default=1080, ge=16, le=4096, multiple_of=2)
    height: int = Field(default=1920, ge=16, le=4096, multiple_of=2)
    fps: int = Field(default=30, ge=1, le=120)
    max_duration_seconds: float = Field(default=600.0, gt=0)
    chunk_seconds: float = Field(default=5.0, ge=1.0, le=60.0)


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
    source_key: str
    media: MediaInfo
    hints: DecodeHints  # what a decoder starting mid-stream must be told
    width: int
    height: int
    fps: int
    frames: int
    duration_seconds: float
    has_audio: bool
    chunks: list[Chunk]
    source: SourceSummary


def probe_source(inp: ProbeInput, ctx: StageContext) -> ProbeOutput:
    """Raises InvalidInputError (INPUT_*) for unusable input."""
    with ctx.runtime.objects.local_copy(inp.source_key) as source:
        try:
            media = probe(source, max_duration_seconds=inp.max_duration_seconds)
        except InvalidInputError as exc:
            if not inp.source_name:
                raise
            # Say it in the user's terms: they know their file's name, not the stored copy's.
            raise InvalidInputError(
                exc.message.replace(source.name, inp.source_name), code=exc.code, details=exc.details
            ) from None
        hints = read_decode_hints(media, source)
    video = media.video
    if video is None:  # probe raises first; this narrows the type
        raise InvalidInputError("The file has no video stream.", code="INPUT_NO_VIDEO_STREAM")
    chunks = plan_chunks(media.duration_seconds, inp.fps, chunk_seconds=inp.chunk_seconds)
    return ProbeOutput(
        source_key=inp.source_key,
        media=media,
        hints=hints,
        width=inp.width,
        height=inp.height,
        fps=inp.fps,
        frames=sum(chunk.frames for chunk in chunks),
        duration_seconds=media.duration_seconds,
        has_audio=media.audio is not None,
        chunks=chunks,
        source=SourceSummary(
            container=media.container_format,
            codec=video.codec,
            width=video.display_width,
            height=video.display_height,
            rotation=video.rotation,
            frame_rate=video.avg_frame_rate,
            variable_frame_rate=video.is_variable_frame_rate,
            duration_seconds=media.duration_seconds,
            size_bytes=media.size_bytes,
            has_audio=media.audio is not None,
        ),
    )


PROBE = Stage("probe", ProbeInput, ProbeOutput, probe_source, version=3)
