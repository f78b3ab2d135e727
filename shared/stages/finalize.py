"""Finalize: publish the deliverables of a task under its outputs.

final.mp4 is the composed video; comparison.jpg puts a frame of the normalized source beside the same
frame of the result, so a user (and a reviewer) sees the difference at a glance.
"""

from __future__ import annotations

from pydantic import Field

from shared.media.ffmpeg import run_ffmpeg
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput


class FinalizeInput(StageInput):
    video_key: str
    source_video_key: str
    duration_seconds: float = Field(gt=0)


class FinalizeOutput(StageOutput):
    final_key: str
    comparison_key: str


def plan_comparison(*, before: str, after: str, at_seconds: float, out: str) -> list[str]:
    """ffmpeg arguments for a side-by-side before/after still at half size (pure)."""
    return [
        "-ss", f"{at_seconds:.3f}", "-i", before, "-ss", f"{at_seconds:.3f}", "-i", after,
        "-filter_complex", "[0:v]scale=iw/2:ih/2[a];[1:v]scale=iw/2:ih/2[b];[a][b]hstack=inputs=2[v]",
        "-map", "[v]", "-frames:v", "1", "-q:v", "3", "-y", out,
    ]


def finalize(inp: FinalizeInput, ctx: StageContext) -> FinalizeOutput:
    objects = ctx.runtime.objects
    comparison = ctx.scratch / "comparison.jpg"
    with objects.local_copy(inp.source_video_key) as before, objects.local_copy(inp.video_key) as after:
        run_ffmpeg(
            plan_comparison(
                before=str(before), after=str(after), at_seconds=inp.duration_seconds / 3, out=str(comparison)
            ),
            usage=ctx.usage, cancelled=ctx.cancelled,
        )
        final_key = ctx.output_key("final.mp4")
        objects.put_file(final_key, after, "video/mp4")
    comparison_key = ctx.output_key("comparison.jpg")
    objects.put_file(comparison_key, comparison, "image/jpeg")
    return FinalizeOutput(final_key=final_key, comparison_key=comparison_key)


FINALIZE = Stage("finalize", FinalizeInput, FinalizeOutput, finalize)
