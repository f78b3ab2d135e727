"""Render: draw each chunk of the CompositionSpec with ffmpeg, then join the chunks with the audio.

Chunks are independent (the spec holds everything a chunk needs), so the state machine renders them in
a Map, as many at once as there are workers, and on AWS each chunk is a Lambda. A chunk's person layer
is matted inline by the local model as the upload is decoded (one decode for matting and rendering), or
comes from a matte the Matte stage stored (``matte_key``: a GPU provider's, or the first chunk's, matted
beside the style work). Joining is a stream copy, so the H.264 encode of the chunks is the only
full-quality encode.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from pydantic import Field

from shared.composition import CompositionSpec
from shared.media.ffmpeg import run_ffmpeg
from shared.media.person import matte_layer, stored_matte_layer
from shared.media.render import concat_list_text, plan_assemble, plan_render_chunk
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.storage.tasks import ResourceUsage


class RenderChunkInput(StageInput):
    spec_key: str
    index: int = Field(ge=0)
    matte_key: str | None = None  # None: matte inline with the local model
    person_chroma_shift: tuple[float, float] = (0.0, 0.0)
    matte_scale: float = Field(default=0.5, ge=0.25, le=1.0)  # inline mattes are soft: half size is plenty
    keyframe_interval: int = Field(default=5, ge=1, le=60)


class RenderChunkOutput(StageOutput):
    index: int
    video_key: str
    frames: int
    keyframes: int  # frames the local model ran on (0 with a stored matte)


class AssembleInput(StageInput):
    spec_key: str
    chunk_keys: list[str] = Field(min_length=1)


class AssembleOutput(StageOutput):
    video_key: str


def _spec(ctx: StageContext, key: str) -> CompositionSpec:
    return CompositionSpec.model_validate_json(ctx.runtime.objects.get_bytes(key))


def render_chunk(inp: RenderChunkInput, ctx: StageContext) -> RenderChunkOutput:
    """Raises MediaError when decoding, matting or ffmpeg fails, IndexError for a chunk the spec does not
    have."""
    spec = _spec(ctx, inp.spec_key)
    chunk = spec.chunks[inp.index]
    keys = {spec.person.source_key, spec.background.key}
    keys |= {overlay.key for overlay in spec.overlays} | {text.key for text in spec.texts}
    out = ctx.scratch / "chunk.mp4"
    keyframes = 0
    feed_usage = ResourceUsage()  # the person layer's decoding and matting, beside ffmpeg's own CPU
    threads = ctx.runtime.settings.ffmpeg_threads
    with ExitStack() as stack:
        files = {key: stack.enter_context(ctx.runtime.objects.local_copy(key)) for key in sorted(keys)}
        source = files[spec.person.source_key]
        if inp.matte_key is not None:
            matte = stack.enter_context(ctx.runtime.objects.local_copy(inp.matte_key))

            def layer(stream: IO[bytes]) -> None:
                stored_matte_layer(
                    spec, inp.index, source, matte, stream, cancelled=ctx.cancelled, usage=feed_usage, threads=threads
                )
        else:

            def layer(stream: IO[bytes]) -> None:
                nonlocal keyframes
                keyframes = matte_layer(
                    spec, inp.index, source, stream, matte_scale=inp.matte_scale,
                    keyframe_interval=inp.keyframe_interval, cancelled=ctx.cancelled, usage=feed_usage,
                    threads=threads,
                ).keyframes

        def feed(stream: IO[bytes]) -> None:
            started = time.thread_time()
            try:
                layer(stream)
            finally:
                feed_usage.cpu_seconds += time.thread_time() - started

        try:
            run_ffmpeg(
                plan_render_chunk(
                    spec, inp.index, files, out, person_chroma_shift=inp.person_chroma_shift, threads=threads
                ),
                usage=ctx.usage, cancelled=ctx.cancelled, progress=ctx.progress,
                duration_seconds=chunk.frames / spec.fps, feed=feed,
            )
        finally:
            ctx.usage.cpu_seconds += feed_usage.cpu_seconds
    key = ctx.output_key(f"chunk-{inp.index:04d}.mp4")
    ctx.runtime.objects.put_file(key, out, "video/mp4")
    return RenderChunkOutput(index=inp.index, video_key=key, frames=chunk.frames, keyframes=keyframes)


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


RENDER_CHUNK = Stage("render_chunk", RenderChunkInput, RenderChunkOutput, render_chunk, version=2)
ASSEMBLE = Stage("assemble", AssembleInput, AssembleOutput, assemble)
