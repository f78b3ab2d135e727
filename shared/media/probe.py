"""Probing an input with PyAV: what it is, and proof that its video decodes.

Every failure is an InvalidInputError with a stable code and a message that says what is wrong with the
file; no PyAV exception escapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.container import InputContainer
from av.sidedata.sidedata import Type as SideDataType
from av.stream import Disposition
from av.video.stream import VideoStream

from shared.errors import InvalidInputError
from shared.media.models import AudioStreamInfo, MediaInfo, VideoStreamInfo
from shared.media.sniff import truncation_reason
from shared.media.timing import is_variable_frame_rate

SCAN_SECONDS = 10.0  # how much of the video's packet timestamps are read to judge the frame rate
SCAN_PACKETS = 1200
# Demuxers for still images: a picture is not a video, even though FFmpeg reads it as a 1-frame stream.
_IMAGE_DEMUXERS = {"image2", "apng", "webp", "ico", "bmp", "tiff", "svg", "jpegxl_anim"}


def probe(
    path: Path, *, max_duration_seconds: float | None = None, require_video: bool = True
) -> MediaInfo:
    """Describe the media file at ``path`` and prove that its first video frame decodes.

    With ``require_video=False`` an audio-only file is accepted (``video`` is None).

    Raises InvalidInputError with code:
    INPUT_NOT_FOUND (no such file, or not a regular file), INPUT_UNREADABLE (permissions),
    INPUT_EMPTY (zero bytes), INPUT_NOT_VIDEO (not a media file, or a still image),
    INPUT_TRUNCATED (the file is cut short: sizes it declares run past its end),
    INPUT_NO_VIDEO_STREAM (e.g. an audio file; cover art does not count as video),
    INPUT_UNSUPPORTED_CODEC (no decoder for the video or audio codec),
    INPUT_CORRUPT (the container is fine but the first video frame does not decode),
    INPUT_TOO_LONG (longer than ``max_duration_seconds``).
    """
    size = _check_file(path)
    container = _open(path)
    try:
        return _describe(path, size, container, max_duration_seconds, require_video)
    finally:
        container.close()


def _check_file(path: Path) -> int:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise InvalidInputError(f"Input file not found: {path}", code="INPUT_NOT_FOUND") from None
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {path}: {exc.strerror}", code="INPUT_UNREADABLE") from None
    if not path.is_file():
        raise InvalidInputError(f"Input is not a regular file: {path}", code="INPUT_NOT_FOUND")
    if stat.st_size == 0:
        raise InvalidInputError(f"Input file is empty (0 bytes): {path.name}", code="INPUT_EMPTY")
    return stat.st_size


def _open(path: Path) -> InputContainer:
    try:
        return av.open(str(path), mode="r", metadata_errors="replace")
    except PermissionError:
        raise InvalidInputError(f"Cannot read {path}: permission denied", code="INPUT_UNREADABLE") from None
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
        _raise_if_truncated(path)
        raise InvalidInputError(
            f"{path.name} is not a video file FFmpeg can read ({_reason(exc)}).", code="INPUT_NOT_VIDEO"
        ) from None


def _raise_if_truncated(path: Path) -> None:
    try:
        reason = truncation_reason(path)
    except OSError:
        return
    if reason is not None:
        raise InvalidInputError(
            f"{path.name} looks truncated or corrupt: {reason}. Was the upload or recording interrupted?",
            code="INPUT_TRUNCATED",
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _describe(
    path: Path,
    size: int,
    container: InputContainer,
    max_duration_seconds: float | None,
    require_video: bool,
) -> MediaInfo:
    demuxer = container.format.name
    if demuxer.endswith("_pipe") or demuxer in _IMAGE_DEMUXERS:
        raise InvalidInputError(
            f"{path.name} is a still image ({demuxer}), not a video.", code="INPUT_NOT_VIDEO"
        )
    stream = _video_stream(container)
    audio = _audio_info(path, container)
    if stream is None and require_video:
        what = "an audio file" if audio is not None else "a file"
        raise InvalidInputError(
            f"{path.name} is {what} without a video stream.", code="INPUT_NO_VIDEO_STREAM"
        )
    _raise_if_truncated(path)
    duration = _duration(container, stream)
    if max_duration_seconds is not None and duration > max_duration_seconds:
        raise InvalidInputError(
            f"{path.name} is {duration:.1f} s long; the limit is {max_duration_seconds:g} s.",
            code="INPUT_TOO_LONG",
            details={"duration_seconds": round(duration, 3), "max_duration_seconds": max_duration_seconds},
        )
    video = None if stream is None else _video_info(path, size, container, stream, duration)
    return MediaInfo(
        path=str(path),
        container_format=demuxer,
        duration_seconds=round(duration, 6),
        size_bytes=size,
        bit_rate=container.bit_rate or None,
        video=video,
        audio=audio,
    )


def _video_stream(container: InputContainer) -> VideoStream | None:
    """The first video stream that is not a still picture (cover art in MP3/M4A/OGG, thumbnails)."""
    still = Disposition.attached_pic | Disposition.still_image | Disposition.timed_thumbnails
    for stream in container.streams.video:
        if not stream.disposition & still:
            return stream
    return None


def _audio_info(path: Path, container: InputContainer) -> AudioStreamInfo | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    context = stream.codec_context
    if context is None:  # PyAV leaves it unset when FFmpeg has no decoder
        raise InvalidInputError(
            f"{path.name} has an audio codec FFmpeg cannot decode ({_codec_tag(stream)}).",
            code="INPUT_UNSUPPORTED_CODEC",
        )
    return AudioStreamInfo(
        index=stream.index,
        codec=context.codec.canonical_name,
        sample_rate=context.sample_rate,
        channels=context.channels,
        bit_rate=context.bit_rate or None,
    )


def _codec_tag(stream: av.stream.Stream) -> str:
    try:
        tag = stream.codec_tag
    except (AttributeError, ValueError):
        tag = ""
    return f"codec tag {tag!r}" if tag and tag.strip("\x00") else "unknown codec"


def _duration(container: InputContainer, stream: VideoStream | None) -> float:
    if container.duration is not None and container.duration > 0:
        return float(container.duration / av.time_base)
    if stream is not None and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def _rate(value: Fraction | None) -> float | None:
    return round(float(value), 6) if value else None


def _video_info(
    path: Path, size: int, container: InputContainer, stream: VideoStream, duration: float
) -> VideoStreamInfo:
    context = stream.codec_context
    if context is None:
        raise InvalidInputError(
            f"{path.name} has a video codec FFmpeg cannot decode ({_codec_tag(stream)}).",
            code="INPUT_UNSUPPORTED_CODEC",
        )
    _check_index(path, size, stream)
    avg_rate, base_rate = _rate(stream.average_rate), _rate(stream.base_rate)
    rotation, timestamps, covered = _scan(path, container, stream)
    if rotation is None:
        rotation = _rotate_tag(stream)
    sar = stream.sample_aspect_ratio or context.sample_aspect_ratio
    sar_value = float(sar) if sar else 1.0
    shown_width = max(2, round(context.width * sar_value))
    display = (context.height, shown_width) if rotation in (90, 270) else (shown_width, context.height)
    stream_duration = None
    if stream.duration and stream.time_base:
        stream_duration = float(stream.duration * stream.time_base)
    return VideoStreamInfo(
        index=stream.index,
        codec=context.codec.canonical_name,
        profile=stream.profile,
        width=context.width,
        height=context.height,
        rotation=rotation,
        sample_aspect_ratio=round(sar_value, 6),
        display_width=display[0],
        display_height=display[1],
        avg_frame_rate=avg_rate,
        r_frame_rate=base_rate,
        is_variable_frame_rate=is_variable_frame_rate(
            timestamps, avg_frame_rate=avg_rate, r_frame_rate=base_rate, covers_whole_stream=covered
        ),
        pix_fmt=context.pix_fmt,
        frame_count=stream.frames or None,
        bit_rate=context.bit_rate or None,
        duration_seconds=round(stream_duration, 6) if stream_duration else (round(duration, 6) or None),
    )


def _check_index(path: Path, size: int, stream: VideoStream) -> None:
    """An index (MP4 sample table, AVI idx1) that points past the end of the file means it was cut."""
    entries = stream.index_entries
    if len(entries) == 0:
        return
    end = max(entry.pos + entry.size for entry in entries)
    if end > size:
        raise InvalidInputError(
            f"{path.name} looks truncated: its index points to byte {end} but the file has {size} bytes. "
            "Was the upload or recording interrupted?",
            code="INPUT_TRUNCATED",
        )


def _scan(
    path: Path, container: InputContainer, stream: VideoStream
) -> tuple[int | None, list[int], bool]:
    """Read the first ~10 s of video packets: decode up to the first good frame, collect timestamps.

    Returns (rotation from the first frame's display matrix, packet timestamps, whether the scan
    reached the end of the stream). Raises InvalidInputError INPUT_CORRUPT or INPUT_UNSUPPORTED_CODEC.
    """
    time_base = stream.time_base or Fraction(1, 90000)
    limit_ticks = int(SCAN_SECONDS / time_base)
    timestamps: list[int] = []
    rotation: int | None = None
    decoded = False
    reached_end = True
    first_pts: int | None = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                first_pts = packet.pts if first_pts is None else min(first_pts, packet.pts)
                timestamps.append(packet.pts)
            if not decoded:
                for frame in packet.decode():
                    if not frame.is_corrupt:
                        decoded = True
                        rotation = _clockwise(frame.rotation) if _has_display_matrix(frame) else None
                        break
            if decoded and (
                len(timestamps) >= SCAN_PACKETS
                or (first_pts is not None and packet.pts is not None and packet.pts - first_pts > limit_ticks)
            ):
                reached_end = False
                break
    except av.error.DecoderNotFoundError:
        raise InvalidInputError(
            f"{path.name} has a video codec FFmpeg cannot decode.", code="INPUT_UNSUPPORTED_CODEC"
        ) from None
    except av.error.FFmpegError as exc:
        if not decoded:
            raise InvalidInputError(
                f"{path.name} looks corrupt: its first video frame does not decode ({_reason(exc)}).",
                code="INPUT_CORRUPT",
            ) from None
        reached_end = False  # damage later in the file: the first frame is proof enough here
    if not decoded:
        raise InvalidInputError(
            f"{path.name} looks corrupt: no video frame decodes in its first {SCAN_SECONDS:g} s.",
            code="INPUT_CORRUPT",
        )
    return rotation, timestamps, reached_end


def _has_display_matrix(frame: av.VideoFrame) -> bool:
    side_data: Any = frame.side_data
    if isinstance(side_data, Mapping):  # PyAV 18: a mapping keyed by type (iterating gives the types)
        return SideDataType.DISPLAYMATRIX in side_data
    return any(getattr(data, "type", None) == SideDataType.DISPLAYMATRIX for data in side_data)


def _clockwise(counter_clockwise_degrees: float) -> int:
    """FFmpeg's display-matrix angle (counter-clockwise) as a clockwise quarter turn: 0, 90, 180 or 270."""
    return (-round(counter_clockwise_degrees / 90) * 90) % 360


def _rotate_tag(stream: VideoStream) -> int:
    """The legacy ``rotate`` tag (clockwise degrees), for demuxers that do not turn it into side data."""
    try:
        return round(float(stream.metadata.get("rotate", "0")) / 90) * 90 % 360
    except ValueError:
        return 0
