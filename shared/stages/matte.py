"""Matte the person: a grayscale alpha video, frame-aligned with the normalized video.

The embedded provider is MediaPipe's selfie-segmentation model (shipped inside the mediapipe wheel), run
on keyframes with motion-aware interpolation, temporal smoothing and guided edge refinement; see
:mod:`shared.media.matting`.
"""

from __future__ import annotations

from pydantic import Field

from shared.media.matting import matte_video
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput


class MatteInput(StageInput):
    video_key: str
    keyframe_interval: int = Field(default=5, ge=1, le=60)


class MatteOutput(StageOutput):
    matte_key: str
    method: str
    frames: int
    keyframes: int


def matte_person(inp: MatteInput, ctx: StageContext) -> MatteOutput:
    with ctx.runtime.objects.local_copy(inp.video_key) as video:
        matte_path = ctx.scratch / "matte.mp4"
        stats = matte_video(
            video, matte_path, keyframe_interval=inp.keyframe_interval, output="mp4",
            progress=ctx.progress, cancelled=ctx.cancelled,
        )
    key = ctx.output_key("matte.mp4")
    ctx.runtime.objects.put_file(key, matte_path, "video/mp4")
    return MatteOutput(
        matte_key=key, method="mediapipe-selfie-segmentation", frames=stats.frames, keyframes=stats.keyframes
    )


MATTE = Stage("matte", MatteInput, MatteOutput, matte_person)
