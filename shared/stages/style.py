"""Learn style: a StyleProfile from a reference image, a named preset, or keyframes of the video.

The profile is what the asset and compose stages draw from (see :mod:`shared.providers.style`). Order of
precedence: a reference image, then a preset, then the video's keyframes (a backdrop that flatters the
person), then the default preset. Profiles learned from an image or a video are cached by the content
hash of the file for 7 days, so a second run with the same reference or clip skips the analysis.

The provider (local analysis, or B-LoRA on Modal) is chosen by name with
:func:`shared.providers.style.build_style_provider` from ``VIDLUXE_STYLE_PROVIDER`` ("local" by default).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import av.error
import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydantic import model_validator

from shared.errors import InvalidInputError
from shared.media.ffmpeg import run_ffmpeg
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.providers.style import (
    PALETTE_SIZE,
    Lighting,
    StyleProfile,
    StyleProvider,
    Temperature,
    Texture,
    analyze_keyframes,
    analyze_reference,
    build_style_provider,
)
from shared.storage.cache import get_json, set_json

__all__ = [
    "DEFAULT_PRESET", "KEYFRAME_COUNT", "LEARN_STYLE", "PALETTE_SIZE", "PRESETS", "STYLE_CACHE_TTL_SECONDS",
    "LearnStyleInput", "LearnStyleOutput", "Lighting", "StyleProfile", "Temperature", "Texture",
    "analyze_keyframes", "analyze_reference", "learn_style", "sample_keyframes",
]

STYLE_CACHE_TTL_SECONDS = 7 * 24 * 3600
KEYFRAME_COUNT = 5
_CACHE_VERSION = "v2"  # v2: profiles carry a texture

PRESETS: dict[str, StyleProfile] = {
    "minimal": StyleProfile(
        source="preset:minimal", palette=["#f4f1ec", "#d9d4cc", "#b9b2a7", "#3a3835", "#8c867c"],
        temperature="neutral", contrast=0.35, brightness=0.82, lighting="soft", mood="calm", texture="paper",
    ),
    "cinematic": StyleProfile(
        source="preset:cinematic", palette=["#0f1c24", "#1f3a45", "#d98c4a", "#f2c38b", "#5b6e73"],
        temperature="cool", contrast=0.75, brightness=0.3, lighting="dramatic", mood="epic", texture="grain",
    ),
    "luxury": StyleProfile(
        source="preset:luxury", palette=["#14110f", "#2b2420", "#c9a45c", "#e8d5a8", "#6b5a45"],
        temperature="warm", contrast=0.7, brightness=0.25, lighting="dramatic", mood="elegant",
        texture="soft-focus",
    ),
    "warm": StyleProfile(
        source="preset:warm", palette=["#f6e3cf", "#e8b896", "#c97b5a", "#7a4a3a", "#f9d9a8"],
        temperature="warm", contrast=0.45, brightness=0.7, lighting="soft", mood="cozy", texture="grain",
    ),
    "fresh": StyleProfile(
        source="preset:fresh", palette=["#e9f6f2", "#bfe6da", "#7cc7b5", "#2f6f73", "#f7e8a8"],
        temperature="cool", contrast=0.4, brightness=0.8, lighting="natural", mood="bright", texture="smooth",
    ),
}
DEFAULT_PRESET = "minimal"


class LearnStyleInput(StageInput):
    preset: str | None = None
    reference_key: str | None = None
    video_key: str | None = None  # the normalized (or source) video: used when no reference and no preset

    @model_validator(mode="after")
    def _known_preset(self) -> LearnStyleInput:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        return self


class LearnStyleOutput(StageOutput):
    style: StyleProfile
    cache_hit: bool


def _provider(ctx: StageContext) -> StyleProvider:
    return build_style_provider(ctx.runtime.settings.style_provider)


def learn_style(inp: LearnStyleInput, ctx: StageContext) -> LearnStyleOutput:
    """Raises InvalidInputError (REFERENCE_NOT_IMAGE) when the reference cannot be read as an image, and
    MediaError when keyframes cannot be read from the video."""
    if inp.reference_key is not None:
        return _from_reference(inp.reference_key, ctx)
    if inp.preset is not None or inp.video_key is None:
        return LearnStyleOutput(style=PRESETS[inp.preset or DEFAULT_PRESET], cache_hit=False)
    return _from_video(inp.video_key, ctx)


def _from_reference(key: str, ctx: StageContext) -> LearnStyleOutput:
    provider = _provider(ctx)
    data = ctx.runtime.objects.get_bytes(key)
    digest = hashlib.sha256(data).hexdigest()
    cache_key = f"style:{_CACHE_VERSION}:{provider.name}:{digest}"
    cached = get_json(ctx.runtime.cache, cache_key)
    if cached is not None:
        return LearnStyleOutput(style=StyleProfile.model_validate(cached), cache_hit=True)
    style = provider.from_reference(data, source=f"reference:{digest[:16]}")
    set_json(ctx.runtime.cache, cache_key, style.model_dump(mode="json"), STYLE_CACHE_TTL_SECONDS)
    return LearnStyleOutput(style=style, cache_hit=False)


def _from_video(key: str, ctx: StageContext) -> LearnStyleOutput:
    provider = _provider(ctx)
    with ctx.runtime.objects.local_copy(key) as video:
        digest = _file_sha256(video)
        cache_key = f"style:{_CACHE_VERSION}:{provider.name}:keyframes:{digest}"
        cached = get_json(ctx.runtime.cache, cache_key)
        if cached is not None:
            return LearnStyleOutput(style=StyleProfile.model_validate(cached), cache_hit=True)
        frames = sample_keyframes(video, ctx.scratch, count=KEYFRAME_COUNT, ctx=ctx)
    style = provider.from_keyframes(frames, source=f"keyframes:{digest[:16]}")
    set_json(ctx.runtime.cache, cache_key, style.model_dump(mode="json"), STYLE_CACHE_TTL_SECONDS)
    return LearnStyleOutput(style=style, cache_hit=False)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _duration_seconds(path: Path) -> float:
    """The container's duration in seconds (0.0 when it does not say, or cannot be opened)."""
    try:
        with av.open(str(path)) as container:
            if container.duration:
                return float(container.duration) / 1_000_000
            stream = container.streams.video[0] if container.streams.video else None
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, OSError):
        return 0.0
    return 0.0


def sample_keyframes(
    video: Path, scratch: Path, *, count: int = KEYFRAME_COUNT, ctx: StageContext | None = None, width: int = 256,
) -> list[NDArray[np.uint8]]:
    """``count`` RGB frames spread evenly over ``video`` (at the middle of equal slices), ``width`` wide.

    One ffmpeg run with one fast input seek per frame, so a long video is not decoded end to end.
    Raises MediaError when ffmpeg fails, InvalidInputError (VIDEO_NO_FRAMES) when no frame came out.
    """
    duration = _duration_seconds(video)
    times = [duration * (index + 0.5) / count for index in range(count)] if duration > 0.5 else [0.0]
    args: list[str] = ["-y"]
    for time in times:
        args += ["-ss", f"{time:.3f}", "-i", str(video)]
    outputs = [scratch / f"keyframe{index:02d}.png" for index in range(len(times))]
    for index, out in enumerate(outputs):
        args += ["-map", f"{index}:v:0", "-frames:v", "1", "-vf", f"scale={width}:-2", str(out)]
    run_ffmpeg(
        args, usage=ctx.usage if ctx else None, timeout=120,
        cancelled=ctx.cancelled if ctx else None,
    )
    frames: list[NDArray[np.uint8]] = []
    for out in outputs:
        if out.is_file() and out.stat().st_size > 0:
            with Image.open(out) as image:
                frames.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    if not frames:
        raise InvalidInputError(f"No frame could be read from {video.name} to learn a style from.",
                                code="VIDEO_NO_FRAMES")
    return frames


LEARN_STYLE = Stage("learn_style", LearnStyleInput, LearnStyleOutput, learn_style, version=2)
