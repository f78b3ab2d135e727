"""Matte the person in one chunk: a grayscale alpha video of the person's box, frame-aligned with it.

The renderer normally mattes inline (:mod:`shared.media.person`); this stage stores a chunk's matte
where it must exist as a file: the first chunk's (matted beside the style work, and kept for the QA
and the asset pack's preview) and, in the cloud, a GPU provider's. The chunk is decoded with the
renderer's chain (:func:`shared.media.render.person_chain`) at a ``matte_scale`` copy of the box, so
every matte pixel sits on its frame pixel. The embedded provider is MediaPipe's selfie-segmentation
model, run on keyframes with motion-aware interpolation, temporal smoothing and guided edge refinement
(:mod:`shared.media.matting`).
"""

from __future__ import annotations

from pydantic import Field

from shared.media.matting import matte_stream
from shared.media.models import Chunk, DecodeHints, MediaInfo
from shared.media.normalize import plan_chunk_through
from shared.media.render import even, person_box, person_chain
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
    box = person_box(inp.width, inp.height, inp.person_scale)
    width, height = even(box.width * inp.matte_scale), even(box.height * inp.matte_scale)
    chain = person_chain(inp.media, inp.chunk, size=(width, height), fps=inp.fps)
    matte_path = ctx.scratch / "matte.mp4"
    with ctx.runtime.objects.local_copy(inp.source_key) as source:
        decode = plan_chunk_through(inp.media, source, chain=chain, fps=inp.fps, chunk=inp.chunk, hints=inp.hints)
        stats = matte_stream(
            decode, width, height, inp.fps, matte_path, keyframe_interval=inp.keyframe_interval,
            expected_frames=inp.chunk.frames, progress=ctx.progress, cancelled=ctx.cancelled, usage=ctx.usage,
        )
    key = ctx.output_key("matte.mp4")
    ctx.runtime.objects.put_file(key, matte_path, "video/mp4")
    return MatteOutput(
        chunk=inp.chunk, matte_key=key, width=width, height=height, method="mediapipe-selfie-segmentation",
        frames=stats.frames, keyframes=stats.keyframes,
    )


MATTE = Stage("matte", MatteInput, MatteOutput, matte_chunk, version=3)
