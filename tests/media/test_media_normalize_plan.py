"""plan_normalize: the ffmpeg arguments for a table of inputs (pure: no ffmpeg runs here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.errors import InvalidInputError
from shared.media.models import AudioStreamInfo, MediaInfo, VideoStreamInfo
from shared.media.normalize import plan_normalize

SRC = Path("/in/my clip.mov")
DST = Path("/out/normalized clip.mp4")


def _info(
    width: int, height: int, *, rotation: int = 0, sar: float = 1.0, audio: bool = True, video_index: int = 0
) -> MediaInfo:
    shown = round(width * sar)
    display = (height, shown) if rotation in (90, 270) else (shown, height)
    video = VideoStreamInfo(
        index=video_index,
        codec="h264",
        width=width,
        height=height,
        rotation=rotation,
        sample_aspect_ratio=sar,
        display_width=display[0],
        display_height=display[1],
        avg_frame_rate=30.0,
        r_frame_rate=30.0,
    )
    sound = None
    if audio:
        sound = AudioStreamInfo(index=1 - video_index, codec="aac", sample_rate=44100, channels=2)
    return MediaInfo(
        path=str(SRC), container_format="mov", duration_seconds=5, size_bytes=1, video=video, audio=sound
    )


def _graph(args: list[str]) -> str:
    return args[args.index("-filter_complex") + 1]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


BLURRED = "blurred"
COVER = "cover"


@pytest.mark.parametrize(
    ("info", "layout"),
    [
        (_info(720, 1280), COVER),  # 9:16 already: exact scale
        (_info(1080, 1920), COVER),
        (_info(2160, 3840), COVER),  # 4K vertical: scaled down
        (_info(1280, 720), BLURRED),  # landscape
        (_info(700, 700), BLURRED),  # square
        (_info(480, 908), BLURRED),  # 6% narrower than 9:16
        (_info(720, 1296), COVER),  # 1.2% off 9:16: crop a sliver rather than pad
        (_info(1280, 720, rotation=90), COVER),  # a phone held upright: displayed 720x1280
        (_info(1280, 720, rotation=270), COVER),
        (_info(1280, 720, rotation=180), BLURRED),
        (_info(540, 1920, sar=2.0), COVER),  # anamorphic pixels: displayed 1080x1920
    ],
    ids=[
        "9x16", "1080p-vertical", "4k-vertical", "landscape", "square", "narrow", "near-9x16",
        "rotated-90", "rotated-270", "rotated-180", "anamorphic",
    ],
)  # fmt: skip
def test_layout(info: MediaInfo, layout: str) -> None:
    graph = _graph(plan_normalize(info, SRC, DST))
    assert graph.startswith("[0:0]")
    assert "fps=30" in graph
    assert graph.endswith("format=yuv420p[v]")
    if layout == COVER:
        assert "scale=1080:1920:force_original_aspect_ratio=increase,crop=1080:1920" in graph
        assert "split" not in graph and "overlay" not in graph
    else:
        for part in ("split=2", "boxblur", "eq=brightness=-", "overlay=(W-w)/2:(H-h)/2"):
            assert part in graph
        assert "scale=1080:1920:force_original_aspect_ratio=decrease:force_divisible_by=2" in graph
    assert "setsar=1" in graph
    assert ("iw*sar" in graph) is (info.video is not None and info.video.sample_aspect_ratio != 1.0)


def test_rotation_is_left_to_autorotate() -> None:
    """ffmpeg turns frames by the display matrix while decoding; nothing may turn them twice."""
    args = plan_normalize(_info(1280, 720, rotation=90), SRC, DST)
    graph = _graph(args)
    assert "transpose" not in graph and "rotate" not in graph
    assert "-noautorotate" not in args and "-display_rotation" not in args


def test_output_encoding() -> None:
    args = plan_normalize(_info(1280, 720), SRC, DST, fps=25, crf=18, preset="medium")
    assert args[:3] == ["-y", "-i", str(SRC)]
    assert args[-3:] == ["-f", "mp4", str(DST)]  # paths stay single arguments, spaces and all
    assert _option(args, "-c:v") == "libx264"
    assert _option(args, "-crf") == "18"
    assert _option(args, "-preset") == "medium"
    assert _option(args, "-pix_fmt") == "yuv420p"
    assert _option(args, "-g") == "50"
    assert _option(args, "-movflags") == "+faststart"
    assert _option(args, "-map_metadata") == "-1"
    assert "fps=25" in _graph(args)
    assert "-t" not in args


def test_audio_is_reencoded() -> None:
    args = plan_normalize(_info(1280, 720), SRC, DST)
    assert args[args.index("-map") : args.index("-map") + 4] == ["-map", "[v]", "-map", "0:1"]
    assert (_option(args, "-c:a"), _option(args, "-b:a")) == ("aac", "128k")
    assert (_option(args, "-ar"), _option(args, "-ac")) == ("48000", "2")


def test_streams_are_mapped_by_index() -> None:
    """Video is stream 1 here (e.g. audio first): the graph and the audio map name exact streams."""
    args = plan_normalize(_info(1280, 720, video_index=1), SRC, DST)
    assert _graph(args).startswith("[0:1]")
    assert _option(args[args.index("[v]") :], "-map") == "0:0"


def test_no_audio_track_without_audio() -> None:
    args = plan_normalize(_info(720, 1280, audio=False), SRC, DST)
    assert args.count("-map") == 1
    assert "-c:a" not in args and "-af" not in args


def test_max_seconds() -> None:
    args = plan_normalize(_info(720, 1280), SRC, DST, max_seconds=1.5)
    assert _option(args, "-t") == "1.5"
    assert args.index("-t") > args.index("-i")  # an output option: the start of the input is kept


def test_custom_size() -> None:
    graph = _graph(plan_normalize(_info(1280, 720), SRC, DST, width=360, height=640))
    assert "scale=360:640:force_original_aspect_ratio=decrease" in graph
    assert "crop=44:80" in graph  # the background is blurred at 1/8 size


@pytest.mark.parametrize(
    "options",
    [
        {"width": 1081},
        {"height": 0},
        {"fps": 0},
        {"fps": 240},
        {"crf": 52},
        {"preset": "warp"},
        {"max_seconds": 0},
    ],
)
def test_invalid_options(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        plan_normalize(_info(720, 1280), SRC, DST, **options)
    assert caught.value.code == "INVALID_NORMALIZE_OPTION"


def test_no_video() -> None:
    info = MediaInfo(path="a.m4a", container_format="mov", duration_seconds=1, size_bytes=1)
    with pytest.raises(InvalidInputError) as caught:
        plan_normalize(info, SRC, DST)
    assert caught.value.code == "INPUT_NO_VIDEO_STREAM"
