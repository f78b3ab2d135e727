"""Finalize: the deliverables beside final.mp4.

comparison.jpg puts the upload (upright, fitted to the frame) beside the same moment of the result;
the first chunk is measured (matte flicker, static-region SSIM of the output) and drawn as a contact
sheet (source, matte, result); assets.zip packs the backgrounds, cards, overlays, a matte preview and
the contact sheet; a square 1080x1080 cut and a GIF preview are made when asked.
"""

from __future__ import annotations

import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydantic import Field

from shared.composition import CompositionSpec
from shared.media.ffmpeg import run_ffmpeg
from shared.media.frames import read_frames
from shared.media.normalize import fit_filter, plan_chunk_through
from shared.media.qa import TemporalQA, TemporalReport, write_contact_sheet
from shared.media.render import even, person_box, person_chain
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.storage.tasks import ResourceUsage

GIF_SECONDS = 4.0
GIF_WIDTH = 360
GIF_FPS = 10
SQUARE_SIZE = 1080
QA_SECONDS = 3.0


class FinalizeInput(StageInput):
    spec_key: str
    video_key: str
    matte_key: str  # one chunk's matte, for the preview in the asset pack
    square: bool = False
    gif: bool = False
    asset_keys: list[str] = Field(default_factory=list)


class FinalizeOutput(StageOutput):
    final_key: str
    comparison_key: str
    asset_pack_key: str
    contact_sheet_key: str
    quality: dict[str, Any]  # TemporalReport of the first chunk: matte flicker, static-region SSIM
    square_key: str | None = None
    gif_key: str | None = None


def plan_still(src: Path, at_seconds: float, out: Path, chain: str | None = None) -> list[str]:
    """ffmpeg arguments for one frame at ``at_seconds``, optionally through a filter chain (pure)."""
    return ["-ss", f"{at_seconds:.3f}", "-i", str(src), "-frames:v", "1", *(["-vf", chain] if chain else []),
            "-update", "1", "-y", str(out)]


def plan_square(src: Path, width: int, height: int, out: Path) -> list[str]:
    """A square cut of the vertical video: the band from 12% down, where the head and shoulders are."""
    side = min(width, height)
    top = max(0, min(height - side, round(height * 0.12 / 2) * 2))
    crop = f"crop={side}:{side}:0:{top},scale={SQUARE_SIZE}:{SQUARE_SIZE}"
    return ["-i", str(src), "-map", "0:v:0", "-map", "0:a?", "-vf", crop,
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "copy",
            "-movflags", "+faststart", "-y", str(out)]


def plan_gif(src: Path, out: Path) -> list[str]:
    """A short looping GIF with a palette made for it (one pass: palettegen and paletteuse)."""
    graph = (f"[0:v]fps={GIF_FPS},scale={GIF_WIDTH}:-2:flags=lanczos,split[a][b];"
             "[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=sierra2_4a")
    return ["-t", f"{GIF_SECONDS}", "-i", str(src), "-filter_complex", graph, "-loop", "0", "-y", str(out)]


def finalize(inp: FinalizeInput, ctx: StageContext) -> FinalizeOutput:
    """Raises MediaError when ffmpeg fails."""
    objects = ctx.runtime.objects
    spec = CompositionSpec.model_validate_json(objects.get_bytes(inp.spec_key))
    at = spec.duration_seconds / 3
    scratch = ctx.scratch
    with (
        objects.local_copy(spec.person.source_key) as source,
        objects.local_copy(inp.matte_key) as matte,
        objects.local_copy(inp.video_key) as final,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="finalize-qa") as pool,
    ):
        # The QA decodes three streams and computes SSIMs: beside the stills and cuts below, it keeps a
        # second core busy instead of adding its time to the end of every task.
        qa_usage = ResourceUsage()
        measured = pool.submit(_measured_in_thread, spec, source, matte, final, qa_usage)
        try:
            chain = fit_filter(spec.person.media, width=spec.width, height=spec.height, fps=spec.fps)
            run_ffmpeg(plan_still(source, at, scratch / "before.png", chain), usage=ctx.usage, cancelled=ctx.cancelled)
            run_ffmpeg(plan_still(final, at, scratch / "after.png"), usage=ctx.usage, cancelled=ctx.cancelled)
            square_key = gif_key = None
            if inp.square:
                run_ffmpeg(plan_square(final, spec.width, spec.height, scratch / "square.mp4"),
                           usage=ctx.usage, cancelled=ctx.cancelled)
                square_key = ctx.output_key("final_square.mp4")
                objects.put_file(square_key, scratch / "square.mp4", "video/mp4")
            if inp.gif:
                run_ffmpeg(plan_gif(final, scratch / "preview.gif"), usage=ctx.usage, cancelled=ctx.cancelled)
                gif_key = ctx.output_key("preview.gif")
                objects.put_file(gif_key, scratch / "preview.gif", "image/gif")
            at_matte = min(1.0, spec.chunks[0].frames / spec.fps / 2)
            run_ffmpeg(plan_still(matte, at_matte, scratch / "matte.png"), usage=ctx.usage, cancelled=ctx.cancelled)
        finally:  # a failed still is the error reported; the QA's own error, if any, is raised below
            wait([measured])
            ctx.usage.cpu_seconds += qa_usage.cpu_seconds
        quality, rows = measured.result()
    sheet = write_contact_sheet(rows, scratch / "contact_sheet.png")
    contact_sheet_key = ctx.output_key("contact_sheet.png")
    objects.put_file(contact_sheet_key, sheet, "image/png")

    comparison_key = ctx.output_key("comparison.jpg")
    objects.put_bytes(comparison_key, side_by_side(scratch / "before.png", scratch / "after.png"), "image/jpeg")
    pack_key = ctx.output_key("assets.zip")
    objects.put_bytes(pack_key, _asset_pack(ctx, inp.asset_keys, scratch / "matte.png", sheet), "application/zip")
    return FinalizeOutput(
        final_key=inp.video_key, comparison_key=comparison_key, asset_pack_key=pack_key,
        contact_sheet_key=contact_sheet_key, quality=quality.as_dict(), square_key=square_key, gif_key=gif_key,
    )


def _measured_in_thread(
    spec: CompositionSpec, source: Path, matte: Path, final: Path, usage: ResourceUsage
) -> tuple[TemporalReport, list[tuple[str, list[NDArray[np.uint8]]]]]:
    """:func:`measure_first_chunk` on a helper thread, its own CPU counted in ``usage`` too."""
    started = time.thread_time()
    try:
        return measure_first_chunk(spec, source, matte, final, usage=usage)
    finally:
        usage.cpu_seconds += time.thread_time() - started


def measure_first_chunk(
    spec: CompositionSpec, source: Path, matte: Path, final: Path, *, usage: ResourceUsage | None = None
) -> tuple[TemporalReport, list[tuple[str, list[NDArray[np.uint8]]]]]:
    """Temporal QA of the first seconds at quarter size, and contact-sheet rows (source, matte, result).

    The source frames go through the person chain, so they line up with the matte and the output. The
    sample is the first chunk, at most QA_SECONDS of it: enough pairs for stable figures, cheap to decode.
    """
    first = spec.chunks[0]
    chunk = first.model_copy(update={"frames": min(first.frames, round(QA_SECONDS * spec.fps))})
    media = spec.person.media
    width, height = even(spec.width / 4), even(spec.height / 4)
    box = person_box(width, height, spec.person.scale)
    pad = f"pad={width}:{height}:{box.x}:{box.y}:black"  # the person layer where it sits in the frame
    frames = ["-frames:v", str(chunk.frames)]
    chain = f"{person_chain(media, chunk, size=box.size, fps=spec.fps)},{pad}"
    sources = read_frames(
        plan_chunk_through(media, source, chain=chain, fps=spec.fps, chunk=chunk, hints=spec.person.hints),
        width, height, usage=usage,
    )
    mattes = read_frames(
        ["-i", str(matte), "-vf", f"scale={box.width}:{box.height},format=gray,{pad}", *frames], width, height, "gray",
        usage=usage,
    )
    outputs = read_frames(["-i", str(final), "-map", "0:v:0", "-vf", f"scale={width}:{height}", *frames],
                          width, height, usage=usage)
    picks = {0, chunk.frames // 3, 2 * chunk.frames // 3, chunk.frames - 1}
    rows: list[tuple[str, list[NDArray[np.uint8]]]] = [("source", []), ("matte", []), ("result", [])]
    qa = TemporalQA(ssim_every=2)
    for index, (src, alpha, out) in enumerate(zip(sources, mattes, outputs, strict=False)):
        qa.add(alpha, source=src, output=out)
        if index in picks:
            for (_, images), image in zip(rows, (src, alpha, out), strict=True):
                images.append(image.copy())
    return qa.result(), rows


def side_by_side(before: Path, after: Path) -> bytes:
    """A JPEG of two frames at half size, left and right."""
    with Image.open(before) as left_image, Image.open(after) as right_image:
        left = left_image.convert("RGB").reduce(2)
        right = right_image.convert("RGB").resize(left.size)
    sheet = Image.new("RGB", (left.width * 2, left.height))
    sheet.paste(left, (0, 0))
    sheet.paste(right, (left.width, 0))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def _asset_pack(ctx: StageContext, keys: list[str], matte_preview: Path, contact_sheet: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as pack:
        for index, key in enumerate(keys):  # numbered: two stages may name files alike
            pack.writestr(f"{index:02d}_{key.rsplit('/', 1)[-1]}", ctx.runtime.objects.get_bytes(key))
        pack.write(matte_preview, "matte_preview.png")
        pack.write(contact_sheet, "contact_sheet.png")
    return buffer.getvalue()


FINALIZE = Stage("finalize", FinalizeInput, FinalizeOutput, finalize, version=3)
