"""Normalization: any probed input to an upright, constant-frame-rate, vertical H.264/AAC MP4.

:func:`plan_normalize` is pure (it only builds ffmpeg's argument list); :func:`normalize` runs it.

What the output is:

* upright: ffmpeg rotates frames by the input's display matrix while decoding (autorotate), and the
  output carries no rotation, so players do not turn it a second time;
* constant frame rate (``fps`` filter), whatever the input's timing (phones record VFR);
* exactly ``width`` x ``height`` with square pixels and no distortion: an input of (nearly) the same
  aspect ratio is scaled to cover the frame and centre-cropped (at most ``fill_tolerance`` of an edge
  is lost); any other is scaled to fit inside, over a blurred, darkened, enlarged copy of itself
  rather than black bars;
* H.264 (yuv420p, High profile, keyframe every 2 s) with ``+faststart``; the first audio stream as
  AAC 48 kHz stereo, no audio track when the input has none; container metadata (phones store GPS
  position there) is dropped.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from shared.errors import InvalidInputError
from shared.media.ffmpeg import run_ffmpeg
from shared.media.models import MediaInfo
from shared.media.probe import probe
from shared.storage.tasks import ResourceUsage

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
AUDIO_BITRATE = "128k"
AUDIO_SAMPLE_RATE = 48000
BACKGROUND_SHRINK = 8  # the blurred background is blurred at 1/8 of the output size, then enlarged
BACKGROUND_EQ = "eq=brightness=-0.12:saturation=0.85"


def plan_normalize(
    info: MediaInfo,
    src: Path,
    dst: Path,
    *,
    width: int = 1080,
    height: int = 1920,
    fps: int = 30,
    crf: int = 20,
    preset: str = "veryfast",
    max_seconds: float | None = None,
    fill_tolerance: float = 0.02,
) -> list[str]:
    """The ffmpeg arguments (without the binary and its global flags) that normalize ``src`` into ``dst``.

    ``max_seconds`` keeps only the start of the input (previews, tests).

    Raises InvalidInputError with code INPUT_NO_VIDEO_STREAM when ``info`` has no video, and
    INVALID_NORMALIZE_OPTION for an odd or non-positive size, a frame rate outside 1..120, a CRF outside
    0..51, an unknown x264 preset or a non-positive ``max_seconds``.
    """
    _check_options(width, height, fps, crf, preset, max_seconds, fill_tolerance)
    video = info.video
    if video is None:
        raise InvalidInputError(f"{src.name} has no video stream to normalize.", code="INPUT_NO_VIDEO_STREAM")

    head = [f"fps={fps}"]
    if abs(video.sample_aspect_ratio - 1.0) > 1e-3:  # anamorphic: make the pixels square first
        head.insert(0, "scale=trunc(iw*sar/2)*2:ih,setsar=1")
    source_aspect = video.display_width / video.display_height
    if abs(source_aspect / (width / height) - 1.0) <= fill_tolerance:
        graph = f"[0:{video.index}]{','.join(head)},{_cover(width, height)},setsar=1,format=yuv420p[v]"
    else:
        graph = _blurred_pad_graph(f"[0:{video.index}]{','.join(head)}", width, height)

    args = ["-y", "-i", str(src), "-filter_complex", graph, "-map", "[v]"]
    if info.audio is not None:
        args += ["-map", f"0:{info.audio.index}"]
    if max_seconds is not None:
        args += ["-t", f"{max_seconds:g}"]
    args += [
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-profile:v", "high",
        "-pix_fmt", "yuv420p", "-g", str(2 * fps),
    ]  # fmt: skip
    if info.audio is not None:
        args += [
            "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(AUDIO_SAMPLE_RATE), "-ac", "2",
            "-af", "aresample=async=1:first_pts=0",
        ]  # fmt: skip
    args += [
        "-map_metadata", "-1", "-map_chapters", "-1", "-max_muxing_queue_size", "4096",
        "-movflags", "+faststart", "-f", "mp4", str(dst),
    ]  # fmt: skip
    return args


def _check_options(
    width: int,
    height: int,
    fps: int,
    crf: int,
    preset: str,
    max_seconds: float | None,
    fill_tolerance: float,
) -> None:
    problems = []
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        problems.append(f"output size must be positive and even, got {width}x{height}")
    if not 1 <= fps <= 120:
        problems.append(f"fps must be 1..120, got {fps}")
    if not 0 <= crf <= 51:
        problems.append(f"crf must be 0..51, got {crf}")
    if preset not in X264_PRESETS:
        problems.append(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")
    if max_seconds is not None and max_seconds <= 0:
        problems.append(f"max_seconds must be positive, got {max_seconds}")
    if not 0 <= fill_tolerance < 1:
        problems.append(f"fill_tolerance must be in [0, 1), got {fill_tolerance}")
    if problems:
        raise InvalidInputError(
            "Invalid normalize options: " + "; ".join(problems), code="INVALID_NORMALIZE_OPTION"
        )


def _cover(width: int, height: int) -> str:
    """Scale to cover ``width`` x ``height`` keeping the aspect ratio, then centre-crop to it."""
    return f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}"


def _blurred_pad_graph(head: str, width: int, height: int) -> str:
    """Fit the frame inside the output over a blurred, darkened, enlarged copy of itself.

    The background is cropped, blurred and darkened at 1/8 size, then enlarged: much cheaper than
    blurring at full size, and just as soft.
    """
    small_w = max(2, round(width / BACKGROUND_SHRINK / 2) * 2)
    small_h = max(2, round(height / BACKGROUND_SHRINK / 2) * 2)
    radius = max(2, min(small_w, small_h) // 12)
    background = (
        f"[bg]{_cover(small_w, small_h)},boxblur=lr={radius}:lp=2:cr={max(1, radius // 2)}:cp=2,"
        f"{BACKGROUND_EQ},scale={width}:{height},setsar=1[bgo]"
    )
    foreground = (
        f"[fg]scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1[fgo]"
    )
    return (
        f"{head},split=2[bg][fg];{background};{foreground};"
        "[bgo][fgo]overlay=(W-w)/2:(H-h)/2,format=yuv420p[v]"
    )


def normalize(
    src: Path,
    dst: Path,
    info: MediaInfo,
    *,
    width: int = 1080,
    height: int = 1920,
    fps: int = 30,
    crf: int = 20,
    preset: str = "veryfast",
    max_seconds: float | None = None,
    usage: ResourceUsage | None = None,
    cancelled: threading.Event | None = None,
    timeout: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> MediaInfo:
    """Normalize ``src`` (probed as ``info``) into ``dst`` and return the probed output.

    ``dst`` appears only complete: ffmpeg writes a hidden partial file beside it, renamed on success
    and removed on failure. CPU seconds go to ``usage``; ``cancelled``/``timeout`` stop ffmpeg.

    Raises InvalidInputError (see :func:`plan_normalize`), MediaError with code FFMPEG_FAILED,
    FFMPEG_TIMEOUT or FFMPEG_CANCELLED (see :func:`shared.media.ffmpeg.run_ffmpeg`), and InvalidInputError
    from :func:`shared.media.probe.probe` if the output cannot be read back.
    """
    partial = dst.with_name(f".{dst.name}.partial")
    args = plan_normalize(
        info, src, partial,
        width=width, height=height, fps=fps, crf=crf, preset=preset, max_seconds=max_seconds,
    )  # fmt: skip
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        expected = min(info.duration_seconds, max_seconds) if max_seconds else info.duration_seconds
        run_ffmpeg(
            args, usage=usage, timeout=timeout, cancelled=cancelled, progress=progress, duration_seconds=expected
        )
        os.replace(partial, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return probe(dst)
