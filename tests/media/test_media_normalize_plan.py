"""The pure planners of shared.media.normalize: chunks, the fit filter chain, chunk inputs and decodes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.errors import InvalidInputError
from shared.media.models import AudioStreamInfo, Chunk, DecodeHints, MediaInfo, VideoStreamInfo
from shared.media.normalize import (
    fit_filter,
    hold_last_frame,
    plan_chunk_decode,
    plan_chunk_input,
    plan_chunks,
)

SRC = Path("/in/my clip.mov")
MP4 = "mov,mp4,m4a,3gp,3g2,mj2"


def _info(
    width: int,
    height: int,
    *,
    rotation: int = 0,
    sar: float = 1.0,
    video_index: int = 0,
    codec: str = "h264",
    pix_fmt: str = "yuv420p",
    container: str = MP4,
) -> MediaInfo:
    shown = round(width * sar)
    display = (height, shown) if rotation in (90, 270) else (shown, height)
    video = VideoStreamInfo(
        index=video_index,
        codec=codec,
        width=width,
        height=height,
        rotation=rotation,
        sample_aspect_ratio=sar,
        display_width=display[0],
        display_height=display[1],
        avg_frame_rate=30.0,
        r_frame_rate=30.0,
        pix_fmt=pix_fmt,
    )
    sound = AudioStreamInfo(index=1 - video_index, codec="aac", sample_rate=44100, channels=2)
    return MediaInfo(
        path=str(SRC), container_format=container, duration_seconds=12, size_bytes=1, video=video, audio=sound
    )


NO_VIDEO = MediaInfo(path="/in/a.m4a", container_format=MP4, duration_seconds=1, size_bytes=1)


def _chunk(start_frame: int, frames: int = 150) -> Chunk:
    return Chunk(index=start_frame // 150, start_frame=start_frame, frames=frames)


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# --- plan_chunks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "fps", "chunk_seconds", "expected"),
    [
        (10.0, 30, 5.0, [(0, 150), (150, 150)]),  # exact multiple
        (11.0, 30, 5.0, [(0, 150), (150, 180)]),  # 30-frame tail < 50: merged into the last chunk
        (11.7, 30, 5.0, [(0, 150), (150, 150), (300, 51)]),  # 51 >= 50: a chunk of its own
        (350 / 30, 30, 5.0, [(0, 150), (150, 150), (300, 50)]),  # exactly a third is kept
        (349 / 30, 30, 5.0, [(0, 150), (150, 199)]),  # just under a third is merged
        (5.1, 30, 5.0, [(0, 153)]),  # one chunk and a 3-frame tail: one chunk
        (4.9, 30, 5.0, [(0, 147)]),  # shorter than a chunk
        (2.0, 30, 5.0, [(0, 60)]),
        (0.0, 30, 5.0, [(0, 1)]),  # at least one frame
        (0.01, 30, 5.0, [(0, 1)]),
        (4.12, 30, 5.0, [(0, 124)]),  # the 25 fps studio clip at 30 fps
        (9.426009, 30, 2.0, [(0, 60), (60, 60), (120, 60), (180, 60), (240, 43)]),
        (10.0, 25, 5.0, [(0, 125), (125, 125)]),
        (10.0, 24, 2.5, [(0, 60), (60, 60), (120, 60), (180, 60)]),
        (2.0, 30, 0.7, [(0, 21), (21, 21), (42, 18)]),
        (30.003, 30, 2.3, [*((69 * i, 69) for i in range(12)), (828, 72)]),  # 3-frame tail merged
        (1.0, 1, 1.0, [(0, 1)]),
    ],
)
def test_plan_chunks(duration: float, fps: int, chunk_seconds: float, expected: list[tuple[int, int]]) -> None:
    chunks = plan_chunks(duration, fps, chunk_seconds=chunk_seconds)
    assert [(c.start_frame, c.frames) for c in chunks] == expected
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start_frame == 0
    assert all(a.end_frame == b.start_frame for a, b in itertools.pairwise(chunks))  # no gap, no overlap
    assert chunks[-1].end_frame == max(1, round(duration * fps))


def test_plan_chunks_default_is_five_seconds() -> None:
    assert [c.frames for c in plan_chunks(20.0, 30)] == [150] * 4


@pytest.mark.parametrize(
    ("duration", "fps", "chunk_seconds"),
    [
        (-1.0, 30, 5.0),
        (math.nan, 30, 5.0),
        (math.inf, 30, 5.0),
        (10.0, 0, 5.0),
        (10.0, -30, 5.0),
        (10.0, 30, 0.0),
        (10.0, 30, -5.0),
        (10.0, 30, 0.01),  # rounds to no frame at 30 fps
        (10.0, 30, math.inf),
        (10.0, 30, math.nan),
    ],
)
def test_plan_chunks_rejects_bad_arguments(duration: float, fps: int, chunk_seconds: float) -> None:
    with pytest.raises(ValueError, match=r"duration_seconds|fps|chunk_seconds"):
        plan_chunks(duration, fps, chunk_seconds=chunk_seconds)


def test_chunk_model() -> None:
    chunk = Chunk(index=2, start_frame=300, frames=150)
    assert chunk.start_seconds(30) == 10.0
    assert chunk.start_seconds(25) == 12.0
    assert Chunk(index=0, start_frame=21, frames=1).start_seconds(30) == pytest.approx(0.7)
    assert chunk.end_frame == 450
    assert Chunk.model_validate(chunk.model_dump()) == chunk  # travels between stages as JSON
    with pytest.raises(ValidationError):
        chunk.frames = 1  # type: ignore[misc]  # frozen
    for bad in ({"index": -1}, {"start_frame": -1}, {"frames": 0}):
        with pytest.raises(ValidationError):
            Chunk(**{"index": 0, "start_frame": 0, "frames": 1, **bad})
    with pytest.raises(ValueError, match="fps"):
        chunk.start_seconds(0)


# --- fit_filter ------------------------------------------------------------------------------------

PAD = "pad"
COVER = "cover"


@pytest.mark.parametrize(
    ("info", "layout"),
    [
        (_info(720, 1280), COVER),  # 9:16 already: exact scale
        (_info(1080, 1920), COVER),
        (_info(2160, 3840), COVER),  # 4K vertical: scaled down
        (_info(1280, 720), PAD),  # landscape
        (_info(700, 700), PAD),  # square
        (_info(480, 908), PAD),  # 6% narrower than 9:16
        (_info(720, 1296), COVER),  # 1.2% off 9:16: crop a sliver rather than pad
        (_info(1280, 720, rotation=90), COVER),  # a phone held upright: displayed 720x1280
        (_info(1280, 720, rotation=270), COVER),
        (_info(1280, 720, rotation=180), PAD),
        (_info(540, 1920, sar=2.0), COVER),  # anamorphic pixels: displayed 1080x1920
    ],
    ids=[
        "9x16", "1080p-vertical", "4k-vertical", "landscape", "square", "narrow", "near-9x16",
        "rotated-90", "rotated-270", "rotated-180", "anamorphic",
    ],
)  # fmt: skip
def test_fit_filter_layout(info: MediaInfo, layout: str) -> None:
    chain = fit_filter(info, width=1080, height=1920, fps=30)
    steps = chain.split(",")
    assert steps[0] == "fps=30:start_time=0"  # first, so lead-in frames are dropped before scaling
    assert steps[-1] == "setsar=1"
    assert "format=yuv420p" in steps
    assert "[" not in chain and ";" not in chain  # a plain chain, no pad labels
    assert info.video is not None
    shrinking = info.video.display_width >= 1080 and info.video.display_height >= 1920
    flags = ":flags=bilinear" if shrinking else ""  # area-weighted when shrinking; bicubic when enlarging
    if layout == COVER:
        assert f"scale=1080:1920:force_original_aspect_ratio=increase:force_divisible_by=2{flags}" in steps
        assert "crop=1080:1920" in steps
        assert not any(step.startswith("pad=") for step in steps)
    else:
        assert f"scale=1080:1920:force_original_aspect_ratio=decrease:force_divisible_by=2{flags}" in steps
        assert "pad=1080:1920:(ow-iw)/2:(oh-ih)/2:color=black" in steps
        assert not any(step.startswith("crop=") for step in steps)
    for gone in ("split", "boxblur", "overlay", "eq="):  # no blurred copy of the picture any more
        assert gone not in chain
    assert ("iw*sar" in chain) is (info.video is not None and info.video.sample_aspect_ratio != 1.0)


def test_fit_filter_leaves_rotation_to_autorotate() -> None:
    """ffmpeg turns frames by the display matrix while decoding; nothing may turn them twice."""
    chain = fit_filter(_info(1280, 720, rotation=90), width=1080, height=1920, fps=30)
    assert "transpose" not in chain and "rotate" not in chain and "flip" not in chain


def test_fit_filter_size_fps_and_tolerance() -> None:
    chain = fit_filter(_info(1280, 720), width=360, height=640, fps=25)
    assert chain.startswith("fps=25:start_time=0,")
    assert "scale=360:640:force_original_aspect_ratio=decrease" in chain
    assert "pad=360:640:" in chain
    narrow = _info(480, 908)  # 6% off 9:16
    assert "crop=360:640" in fit_filter(narrow, width=360, height=640, fps=30, fill_tolerance=0.07)
    assert "pad=360:640" in fit_filter(_info(720, 1296), width=360, height=640, fps=30, fill_tolerance=0)


INVALID_OPTIONS: list[dict[str, Any]] = [
    {"width": 1081},
    {"width": 0},
    {"height": 0},
    {"height": -1920},
    {"fps": 0},
    {"fps": 240},
    {"fill_tolerance": -0.1},
    {"fill_tolerance": 1.0},
]


@pytest.mark.parametrize("options", INVALID_OPTIONS)
def test_invalid_options(options: dict[str, Any]) -> None:
    size = {"width": 1080, "height": 1920, "fps": 30, **options}
    with pytest.raises(InvalidInputError) as caught:
        fit_filter(_info(720, 1280), **size)
    assert caught.value.code == "INVALID_NORMALIZE_OPTION"
    with pytest.raises(InvalidInputError) as caught:
        plan_chunk_decode(_info(720, 1280), SRC, chunk=_chunk(0), **size)
    assert caught.value.code == "INVALID_NORMALIZE_OPTION"


@pytest.mark.parametrize("fps", [0, -1, 121])
def test_chunk_input_rejects_bad_fps(fps: int) -> None:
    with pytest.raises(InvalidInputError) as caught:
        plan_chunk_input(_info(720, 1280), SRC, fps=fps, chunk=_chunk(150))
    assert caught.value.code == "INVALID_NORMALIZE_OPTION"


def test_no_video() -> None:
    calls: list[Callable[[], object]] = [
        lambda: fit_filter(NO_VIDEO, width=1080, height=1920, fps=30),
        lambda: plan_chunk_input(NO_VIDEO, SRC, fps=30, chunk=_chunk(0)),
        lambda: plan_chunk_decode(NO_VIDEO, SRC, width=1080, height=1920, fps=30, chunk=_chunk(0)),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert caught.value.code == "INPUT_NO_VIDEO_STREAM"


# --- plan_chunk_input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_frame", "fps", "expected"),
    [
        (0, 30, []),  # the first chunk: decoded from the start, nothing shifted
        (150, 30, ["-noaccurate_seek", "-ss", "4.500000", "-itsoffset", "-0.500000"]),
        (300, 25, ["-noaccurate_seek", "-ss", "11.500000", "-itsoffset", "-0.500000"]),
        (1, 30, ["-itsoffset", "-0.033333"]),  # within the margin: no seek, only the shift
        (15, 30, ["-itsoffset", "-0.500000"]),
        (16, 30, ["-noaccurate_seek", "-ss", "0.033333", "-itsoffset", "-0.500000"]),
        (2, 3, ["-noaccurate_seek", "-ss", "0.166667", "-itsoffset", "-0.500000"]),  # 2/3 s, rounded to 1 µs
        (36000 * 30, 30, ["-noaccurate_seek", "-ss", "35999.500000", "-itsoffset", "-0.500000"]),  # 10 h in
    ],
)
def test_chunk_input_seeks_before_the_chunk_and_shifts_it_to_zero(
    start_frame: int, fps: int, expected: list[str]
) -> None:
    args = plan_chunk_input(_info(720, 1280), SRC, fps=fps, chunk=_chunk(start_frame))
    assert args == [*expected, "-i", str(SRC)]  # the path stays one argument, spaces and all


@pytest.mark.parametrize(
    ("container", "seeks"),
    [
        (MP4, True),
        ("matroska,webm", True),
        ("mpegts", False),  # seeks land off keyframes: measured frames differ from a whole decode
        ("avi", False),
        ("flv", False),
    ],
)
def test_chunk_input_seeks_only_in_indexed_containers(container: str, seeks: bool) -> None:
    args = plan_chunk_input(_info(720, 1280, container=container), SRC, fps=30, chunk=_chunk(300))
    assert ("-ss" in args) is seeks
    assert _option(args, "-itsoffset") == ("-0.500000" if seeks else "-10.000000")  # always shifted to 0


@pytest.mark.parametrize(
    ("pix_fmt", "hints", "seeks", "build"),
    [
        ("yuv420p", None, True, None),  # 4:2:0: old x264 builds decode the same
        ("yuv444p", None, False, None),  # unknown encoder: decoded from the start, where its note is
        ("yuv444p", DecodeHints(x264_build=142), True, "142"),  # told about the old build: seeks
        ("yuv444p", DecodeHints(x264_build=164), True, None),  # a fixed build needs no note
        ("yuv444p", DecodeHints(), True, None),  # not x264
        ("yuv420p", DecodeHints(x264_build=142), True, "142"),  # harmless where it does not matter
        ("gbrp", None, False, None),  # RGB H.264 is 4:4:4 too
    ],
)
def test_chunk_input_and_old_x264_444(pix_fmt: str, hints: DecodeHints | None, seeks: bool, build: str | None) -> None:
    args = plan_chunk_input(_info(1280, 720, pix_fmt=pix_fmt), SRC, fps=30, chunk=_chunk(150), hints=hints)
    assert ("-ss" in args) is seeks
    assert (_option(args, "-x264_build") if "-x264_build" in args else None) == build
    assert args[-2:] == ["-i", str(SRC)]


def test_x264_note_only_for_h264() -> None:
    vp8 = _info(1280, 720, codec="vp8", container="matroska,webm")
    args = plan_chunk_input(vp8, SRC, fps=30, chunk=_chunk(150), hints=DecodeHints(x264_build=142))
    assert "-x264_build" not in args and "-ss" in args


# --- plan_chunk_decode -------------------------------------------------------------------------------


def test_chunk_decode() -> None:
    info = _info(1280, 720, video_index=1)  # e.g. audio first: the map names the exact stream
    chunk = Chunk(index=3, start_frame=450, frames=150)
    args = plan_chunk_decode(info, SRC, width=360, height=640, fps=30, chunk=chunk)
    head = plan_chunk_input(info, SRC, fps=30, chunk=chunk)
    assert args[: len(head)] == head
    assert args[len(head) :] == [
        "-map", "0:1",
        "-vf", f"{fit_filter(info, width=360, height=640, fps=30)},tpad=stop=150:stop_mode=clone",
        "-an", "-sn", "-dn",
        "-fps_mode", "passthrough",
        "-frames:v", "150",
    ]  # fmt: skip
    assert hold_last_frame(chunk) == "tpad=stop=150:stop_mode=clone"


def test_chunk_decode_passes_options_through() -> None:
    info = _info(720, 1296, pix_fmt="yuv444p")
    hints = DecodeHints(x264_build=100)
    args = plan_chunk_decode(
        info, SRC, width=360, height=640, fps=24, chunk=_chunk(240, 48), fill_tolerance=0.0, hints=hints
    )
    assert _option(args, "-x264_build") == "100"
    assert _option(args, "-ss") == "9.500000"
    assert _option(args, "-vf").startswith("fps=24:start_time=0,")
    assert "pad=360:640" in _option(args, "-vf")  # fill_tolerance=0: no crop
    assert _option(args, "-frames:v") == "48"
