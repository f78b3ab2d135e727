"""Render: draw each chunk of the CompositionSpec with ffmpeg, then join the chunks with the audio.

Chunks are independent (the spec and the chunk's matte hold everything it needs), so the state machine
mattes and renders them in a Map, as many at once as there are workers: one chunk renders while the next
is matted, both cores stay busy, and on AWS each chunk is a Lambda.
Joining is a stream copy, so the H.264 encode of the chunks is the only full-quality encode.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from pydantic import Field

from shared.composition import CompositionSpec
from shared.media.ffmpeg import run_ffmpeg
from shared.media.render import concat_list_text, plan_assemble, plan_render_chunk
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput


class RenderChunkInput(StageInput):
    spec_key: str
    index: int = Field(ge=0)
    matte_key: str
    person_chroma_shift: tuple[float, float] = (0.0, 0.0)


class RenderChunkOutput(StageOutput):
    index: int
    video_key: str
    frames: int
    matte_key: str  # the matte it was keyed with, passed on for the asset pack


class AssembleInput(StageInput):
    spec_key: str
    chunk_keys: list[str] = Field(min_length=1)


class AssembleOutput(StageOutput):
    video_key: str


def _spec(ctx: StageContext, key: str) -> CompositionSpec:
    return CompositionSpec.model_validate_json(ctx.runtime.objects.get_bytes(key))


def render_chunk(inp: RenderChunkInput, ctx: StageContext) -> RenderChunkOutput:
    """Raises MediaError when ffmpeg fails, IndexError for a chunk the spec does not have."""
    spec = _spec(ctx, inp.spec_key)
    chunk = spec.chunks[inp.index]
    keys = {spec.person.source_key, spec.background.key}
    keys |= {overlay.key for overlay in spec.overlays} | {text.key for text in spec.texts}
    out = ctx.scratch / "chunk.mp4"
    with ExitStack() as stack:
        files = {key: stack.enter_context(ctx.runtime.objects.local_copy(key)) for key in sorted(keys)}
        matte = stack.enter_context(ctx.runtime.objects.local_copy(inp.matte_key))
        run_ffmpeg(
            plan_render_chunk(spec, inp.index, files, matte, out, person_chroma_shift=inp.person_chroma_shift),
            usage=ctx.usage, cancelled=ctx.cancelled, progress=ctx.progress,
            duration_seconds=chunk.frames / spec.fps,
        )
    key = ctx.output_key(f"chunk-{inp.index:04d}.mp4")
    ctx.runtime.objects.put_file(key, out, "video/mp4")
    return RenderChunkOutput(index=inp.index, video_key=key, frames=chunk.frames, matte_key=inp.matte_key)


def assemble(inp: AssembleInput, ctx: StageContext) -> AssembleOutput:
    """Raises MediaError when ffmpeg fails."""
    spec = _spec(ctx, inp.spec_key)
    audio = spec.person.media.audio
    out = ctx.scratch / "final.mp4"
    concat_list = ctx.scratch / "chunks.txt"
    with ExitStack() as stack:
        chunk_files = [stack.enter_context(ctx.runtime.objects.local_copy(key)) for key in inp.chunk_keys]
        source: Path | None = None
        if audio is not None:
            source = stack.enter_context(ctx.runtime.objects.local_copy(spec.person.source_key))
        concat_list.write_text(concat_list_text(chunk_files))
        run_ffmpeg(
            plan_assemble(concat_list, source, audio.index if audio else None, out),
            usage=ctx.usage, cancelled=ctx.cancelled,
        )
    key = ctx.output_key("final.mp4")
    ctx.runtime.objects.put_file(key, out, "video/mp4")
    return AssembleOutput(video_key=key)


RENDER_CHUNK = Stage("render_chunk", RenderChunkInput, RenderChunkOutput, render_chunk)
ASSEMBLE = Stage("assemble", AssembleInput, AssembleOutput, assemble)
