"""Normalization plans: every stage decodes the original upload, a chunk (time range) at a time, as
upright, constant-rate, exactly ``width`` x ``height`` square-pixel yuv420p frames.

Nothing is transcoded up front: the only full-quality encode is the final one. The planners are pure
(they build ffmpeg arguments and filter chains; nothing runs here):

* :func:`plan_chunks` cuts the output timeline into :class:`~shared.media.models.Chunk` ranges;
* :func:`fit_filter` is the filter chain that turns the decoded video into output frames;
* :func:`plan_chunk_input` is the input part of a chunk's command (seek and ``-i``);
* :func:`hold_last_frame` pads a chunk whose video ends early;
* :func:`plan_chunk_decode` is a whole chunk decode, up to the output format and target.

Only :func:`read_decode_hints` reads the file (once per upload, see :class:`DecodeHints`).

The output timeline. Output frame ``n`` is the picture shown at ``n / fps`` seconds after the start of
the upload (ffmpeg's time 0: the container's start time is subtracted, so a video stream that starts
late, as a phone's often does, is padded with its first picture). The ``fps`` filter shows, at each
tick, the last input frame whose time (rounded to the nearest tick) is at or before the tick: it
duplicates and drops frames of any input timing, variable frame rates included.

Chunk boundaries are exact: decoding chunk after chunk gives the same frames, bit for bit, as one decode
of the whole clip. ffmpeg's ordinary ``-ss`` is not enough: it drops every frame before the seek point,
so when no source frame falls exactly on a chunk's first tick (25 fps to 30 fps, a variable-rate gap)
the chunk starts with the next source frame instead of the previous one. Instead, a chunk's input is
``-noaccurate_seek -ss (start - SEEK_MARGIN) -itsoffset -SEEK_MARGIN``: the demuxer jumps to the keyframe
before ``start - SEEK_MARGIN`` and every frame from there is decoded, while the timestamps are shifted
so that the chunk's start is exactly 0 (``-itsoffset`` undoes the margin). The chain's first filter,
``fps=<fps>:start_time=0``, then drops the lead-in frames but keeps the last one at or before 0 for the
first tick, rounding every source time as the whole decode does. The margin keeps seeks safe where the
frames after a keyframe are broken (open GOPs) or a demuxer lands a little late. Containers without a
reliable seek index (MPEG-TS, AVI, anything not in :data:`SEEKABLE_DEMUXERS`) and H.264 4:4:4 without
:class:`DecodeHints` are decoded from their start for every chunk, shifted the same way.

One condition: the shift is exact only when the chunk's start is a whole number of ticks of the video
stream's time base. Whole seconds always are (:func:`plan_chunks` with a whole ``chunk_seconds``, such
as the default 5), tenths of a second are in every common time base (1/90000, 1/1000, 1/600, 512 x the
frame rate). At other starts a source frame lying within a tick's rounding of the middle between two
output frames can land one output frame off (measured: the 20 fps cockatoo clip in 44-frame chunks at
30 fps, 14 of 168 frames, each one frame off); the frame count and A/V sync are unaffected.

Geometry: frames are upright because ffmpeg rotates them by the display matrix while decoding
(autorotate); anamorphic pixels are made square; an input of (nearly) the output's aspect ratio is
scaled to cover the frame and centre-cropped (at most ``fill_tolerance`` of an edge is lost), any other
is scaled to fit inside and padded with black. (Not a blurred copy of itself: the person is cut out by a
matte and composed over a generated background, and a second, blurred person would confuse the
segmentation model.)
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import av
import av.error

from shared.errors import InvalidInputError, MediaError
from shared.media.models import Chunk, DecodeHints, MediaInfo, VideoStreamInfo

SEEK_MARGIN_US = 500_000  # seek this far (microseconds) before a chunk's start; the lead-in is dropped
X264_BUG_FIXED_BUILD = 151  # x264 builds before this wrote 4:4:4 streams that FFmpeg decodes specially
_X264_NOTE = re.compile(rb"x264 - core (\d{1,5})")
_HINT_PACKETS = 4  # x264 writes its note into the first frame
_CHROMA444 = ("yuv444", "yuvj444", "gbr")  # pixel formats of H.264 High 4:4:4 streams
MAX_FPS = 120
# Demuxers that seek to the keyframe before a time by an index. Seeks in MPEG-TS and AVI land off
# keyframes (measured: frames differ from a whole decode), so they, like anything unlisted, are decoded
# from their start for every chunk: exact, only slower on long videos.
SEEKABLE_DEMUXERS = frozenset({"mov", "matroska"})


def plan_chunks(duration_seconds: float, fps: int, *, chunk_seconds: float = 5.0) -> list[Chunk]:
    """Cut ``round(duration_seconds * fps)`` output frames (at least one) into chunks of ``chunk_seconds``.

    Chunks are ``round(chunk_seconds * fps)`` frames long and follow each other without gap or overlap;
    a last chunk shorter than a third of that is merged into the one before it.

    Raises ValueError for a negative or non-finite duration, a frame rate below 1, or a chunk length
    that is not finite or rounds to no frame at all.
    """
    if not math.isfinite(duration_seconds) or duration_seconds < 0:
        raise ValueError(f"duration_seconds must be finite and not negative, got {duration_seconds}")
    if fps < 1:
        raise ValueError(f"fps must be at least 1, got {fps}")
    if not math.isfinite(chunk_seconds) or round(chunk_seconds * fps) < 1:
        raise ValueError(f"chunk_seconds must be at least one frame long at {fps} fps, got {chunk_seconds}")
    total = max(1, round(duration_seconds * fps))
    size = round(chunk_seconds * fps)
    starts = list(range(0, total, size))
    lengths = [min(size, total - start) for start in starts]
    if len(lengths) > 1 and 3 * lengths[-1] < size:
        starts.pop()
        tail = lengths.pop()
        lengths[-1] += tail
    return [
        Chunk(index=index, start_frame=start, frames=frames)
        for index, (start, frames) in enumerate(zip(starts, lengths, strict=True))
    ]


def fit_filter(info: MediaInfo, *, width: int, height: int, fps: int, fill_tolerance: float = 0.02) -> str:
    """The filter chain (comma-separated, no pad labels) from the decoded video to output frames.

    It expects the stream as ffmpeg decodes it (autorotated, timestamps shifted as
    :func:`plan_chunk_input` shifts them) and gives upright, ``fps`` constant-rate, exactly ``width`` x
    ``height``, square-pixel yuv420p frames, the first at time 0; see the module's documentation.

    Raises InvalidInputError with code INPUT_NO_VIDEO_STREAM when ``info`` has no video, and
    INVALID_NORMALIZE_OPTION for an odd or non-positive size, a frame rate outside 1..120 or a
    ``fill_tolerance`` outside [0, 1).
    """
    _check_options(width=width, height=height, fps=fps, fill_tolerance=fill_tolerance)
    video = _video(info)
    steps = [f"fps={fps}:start_time=0"]  # first: the lead-in frames are dropped before any scaling
    if abs(video.sample_aspect_ratio - 1.0) > 1e-3:  # anamorphic: make the pixels square first
        steps.append("scale=trunc(iw*sar/2)*2:ih,setsar=1")
    source_aspect = video.display_width / video.display_height
    # Shrinking, swscale's bilinear is an area-weighted filter: within 0.1 dB of bicubic's picture at a
    # 0.88 reduction (51 dB apart), for half the scaling CPU. Enlarging keeps bicubic, which is sharper.
    flags = ":flags=bilinear" if video.display_width >= width and video.display_height >= height else ""
    if abs(source_aspect / (width / height) - 1.0) <= fill_tolerance:
        steps += [
            f"scale={width}:{height}:force_original_aspect_ratio=increase:force_divisible_by=2{flags}",
            "format=yuv420p",
            f"crop={width}:{height}",
        ]
    else:
        steps += [
            f"scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2{flags}",
            "format=yuv420p",
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black",
        ]
    steps.append("setsar=1")
    return ",".join(steps)


def plan_chunk_input(
    info: MediaInfo, src: Path, *, fps: int, chunk: Chunk, hints: DecodeHints | None = None
) -> list[str]:
    """The input part of a chunk's ffmpeg command: decoder and seek options, then ``-i src``.

    Chunk 0 is just ``["-i", src]``; a later chunk is e.g. ``["-noaccurate_seek", "-ss", "4.500000",
    "-itsoffset", "-0.500000", "-i", src]``: the chunk's start becomes time 0, frames before it come out
    with negative times, and :func:`fit_filter` (whose ``fps`` filter uses them) must follow. Use it for
    the video only: audio from this input would start early.

    ``hints`` come from :func:`read_decode_hints`. Without them, an H.264 4:4:4 stream (where an old
    x264's quirks matter) is decoded from its start for every chunk: correct, only slower.

    Raises InvalidInputError with code INPUT_NO_VIDEO_STREAM or INVALID_NORMALIZE_OPTION (``fps``).
    """
    _check_options(fps=fps)
    video = _video(info)
    h264_444 = video.codec == "h264" and (video.pix_fmt or "").startswith(_CHROMA444)
    args: list[str] = []
    build = hints.x264_build if hints is not None and video.codec == "h264" else None
    if build is not None and build < X264_BUG_FIXED_BUILD:  # newer builds need no note (some dislike one)
        args += ["-x264_build", str(build)]
    start_us = _frame_time_us(chunk.start_frame, fps)
    seekable = info.container_format.split(",")[0] in SEEKABLE_DEMUXERS and not (h264_444 and hints is None)
    seek_us = max(0, start_us - SEEK_MARGIN_US) if seekable else 0
    if seek_us > 0:
        args += ["-noaccurate_seek", "-ss", _seconds(seek_us)]
    if seek_us != start_us:
        args += ["-itsoffset", _seconds(seek_us - start_us)]
    return [*args, "-i", str(src)]


def plan_chunk_decode(
    info: MediaInfo,
    src: Path,
    *,
    width: int,
    height: int,
    fps: int,
    chunk: Chunk,
    fill_tolerance: float = 0.02,
    hints: DecodeHints | None = None,
) -> list[str]:
    """ffmpeg arguments (without the binary, its global flags, the output format and target) that decode
    ``chunk`` of ``src`` into ``chunk.frames`` output frames.

    Append e.g. ``["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]``, or encoder options and a file.
    The plan is :func:`plan_chunk_input`, ``-map`` of the video stream, :func:`fit_filter`, then
    :func:`hold_last_frame`; fewer frames come out only when the video ends before the chunk begins.
    Frame timestamps start at 0 and step by ``1/fps``.

    Raises InvalidInputError with code INPUT_NO_VIDEO_STREAM or INVALID_NORMALIZE_OPTION.
    """
    chain = fit_filter(info, width=width, height=height, fps=fps, fill_tolerance=fill_tolerance)
    return plan_chunk_through(info, src, chain=f"{chain},{hold_last_frame(chunk)}", fps=fps, chunk=chunk, hints=hints)


def plan_chunk_through(
    info: MediaInfo, src: Path, *, chain: str, fps: int, chunk: Chunk, hints: DecodeHints | None = None
) -> list[str]:
    """Like :func:`plan_chunk_decode`, with the caller's filter ``chain`` (which must start with
    :func:`fit_filter` and end with :func:`hold_last_frame`, e.g. the person layer's chain).

    Raises InvalidInputError with code INPUT_NO_VIDEO_STREAM or INVALID_NORMALIZE_OPTION.
    """
    video = _video(info)
    return [
        *plan_chunk_input(info, src, fps=fps, chunk=chunk, hints=hints),
        "-map", f"0:{video.index}",
        "-vf", chain,
        "-an", "-sn", "-dn",
        "-fps_mode", "passthrough",
        "-frames:v", str(chunk.frames),
    ]  # fmt: skip


def hold_last_frame(chunk: Chunk) -> str:
    """A filter that repeats the last picture (at most ``chunk.frames`` times) if the video ends early.

    Append it to :func:`fit_filter` where a chunk must have all its frames: a container's duration, which
    :func:`plan_chunks` is usually given, often runs a frame or two past its video. The output still needs
    ``-frames:v chunk.frames`` to stop there.
    """
    return f"tpad=stop={chunk.frames}:stop_mode=clone"


def read_decode_hints(info: MediaInfo, src: Path) -> DecodeHints:
    """Read the :class:`DecodeHints` of ``src`` (probed as ``info``): the first packets of its video.

    Raises InvalidInputError with code INPUT_NO_VIDEO_STREAM when ``info`` has no video, and MediaError
    with code MEDIA_READ_FAILED when the file cannot be read.
    """
    video = _video(info)
    if video.codec != "h264":
        return DecodeHints()
    try:
        with av.open(str(src)) as container:
            stream = container.streams[video.index]
            for count, packet in enumerate(container.demux(stream), start=1):
                found = _X264_NOTE.search(bytes(packet))
                if found is not None:
                    return DecodeHints(x264_build=int(found.group(1)))
                if count >= _HINT_PACKETS:
                    break
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise MediaError(f"Cannot read the video of {src.name}: {exc}", code="MEDIA_READ_FAILED") from exc
    return DecodeHints()


def _video(info: MediaInfo) -> VideoStreamInfo:
    if info.video is None:
        raise InvalidInputError(
            f"{Path(info.path).name} has no video stream to normalize.", code="INPUT_NO_VIDEO_STREAM"
        )
    return info.video


def _check_options(*, width: int = 2, height: int = 2, fps: int = 1, fill_tolerance: float = 0.0) -> None:
    problems = []
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        problems.append(f"output size must be positive and even, got {width}x{height}")
    if not 1 <= fps <= MAX_FPS:
        problems.append(f"fps must be 1..{MAX_FPS}, got {fps}")
    if not 0 <= fill_tolerance < 1:
        problems.append(f"fill_tolerance must be in [0, 1), got {fill_tolerance}")
    if problems:
        raise InvalidInputError("Invalid normalize options: " + "; ".join(problems), code="INVALID_NORMALIZE_OPTION")


def _frame_time_us(frame: int, fps: int) -> int:
    """When output frame ``frame`` is shown, in whole microseconds (ffmpeg's time unit), rounded."""
    return (2 * frame * 1_000_000 + fps) // (2 * fps)


def _seconds(microseconds: int) -> str:
    """Exact decimal seconds for ffmpeg: 4500000 -> '4.500000', -33333 -> '-0.033333'."""
    sign = "-" if microseconds < 0 else ""
    whole, fraction = divmod(abs(microseconds), 1_000_000)
    return f"{sign}{whole}.{fraction:06d}"
