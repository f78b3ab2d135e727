"""Matte the person in one chunk: a grayscale alpha video, frame-aligned with the person layer.

The chunk is decoded from the upload with the same chain the renderer uses
(:func:`shared.media.render.person_chain`), so every matte pixel sits on its frame pixel. The embedded
provider is MediaPipe's selfie-segmentation model, run on keyframes with motion-aware interpolation,
temporal smoothing and guided edge refinement (:mod:`shared.media.matting`).
"""

from __future__ import annotations

from pydantic import Field

from shared.media.matting import matte_stream
from shared.media.models import Chunk, DecodeHints, MediaInfo
from shared.media.normalize import plan_chunk_through
from shared.media.render import even, person_chain
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput


class MatteInput(StageInput):
    source_key: str
    media: MediaInfo
    hints: DecodeHints = DecodeHints()
    width: int
    height: int
    fps: int
    person_scale: float = Field(default=0.88, gt=0.2, le=1.0)
    matte_scale: float = Field(default=0.5, ge=0.25, le=1.0)  # mattes are soft: half size is plenty, 4x cheaper
    chunk: Chunk
    keyframe_interval: int = Field(default=5, ge=1, le=60)


class MatteOutput(StageOutput):
    chunk: Chunk
    matte_key: str
    width: int
    height: int
    method: str
    frames: int
    keyframes: int


def matte_chunk(inp: MatteInput, ctx: StageContext) -> MatteOutput:
    """Raises MediaError when decoding or matting fails, InvalidInputError (INPUT_NO_VIDEO_STREAM) without video."""
    width, height = even(inp.width * inp.matte_scale), even(inp.height * inp.matte_scale)
    chain = person_chain(inp.media, inp.chunk, width=width, height=height, fps=inp.fps, scale=inp.person_scale)
    matte_path = ctx.scratch / "matte.mp4"
    with ctx.runtime.objects.local_copy(inp.source_key) as source:
        decode = plan_chunk_through(inp.media, source, chain=chain, fps=inp.fps, chunk=inp.chunk, hints=inp.hints)
        stats = matte_stream(
            decode, width, height, inp.fps, matte_path, keyframe_interval=inp.keyframe_interval,
            expected_frames=inp.chunk.frames, progress=ctx.progress, cancelled=ctx.cancelled,
        )
    key = ctx.output_key("matte.mp4")
    ctx.runtime.objects.put_file(key, matte_path, "video/mp4")
    return MatteOutput(
        chunk=inp.chunk, matte_key=key, width=width, height=height, method="mediapipe-selfie-segmentation",
        frames=stats.frames, keyframes=stats.keyframes,
    )


MATTE = Stage("matte", MatteInput, MatteOutput, matte_chunk, version=2)
