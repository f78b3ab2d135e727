"""probe() on the team's test media and on rotated clips made from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shared.errors import InvalidInputError
from shared.media.probe import probe

# file, (width, height), fps, variable frame rate, has audio, codec, pix_fmt
VIDEOS = [
    ("videos/liveportrait_d13_vertical_talking.mp4", (720, 1280), 30.0, False, False, "h264", "yuv420p"),
    ("videos/liveportrait_s20_vertical_upperbody.mp4", (480, 908), 30.0, False, True, "h264", "yuv420p"),
    ("videos/liveportrait_s13_vertical_fullbody_studio.mp4", (720, 1080), 25.0, False, True, "h264", "yuv420p"),
    ("videos/liveportrait_s18_landscape_upperbody.mp4", (1280, 720), 30.0, False, True, "h264", "yuv420p"),
    ("videos/videoretalking_face1_talking.mp4", (700, 700), 30.0, True, True, "h264", "yuv420p"),
    ("stock/imageio_cockatoo.mp4", (1280, 720), 20.0, False, True, "h264", "yuv444p"),
    ("stock/moviepy_big_buck_bunny_0_30.webm", (1280, 720), 24.0, False, True, "vp8", "yuv420p"),
]


@pytest.mark.parametrize(("name", "size", "fps", "vfr", "has_audio", "codec", "pix_fmt"), VIDEOS)
def test_probe_testdata(
    testdata: Path,
    name: str,
    size: tuple[int, int],
    fps: float,
    vfr: bool,
    has_audio: bool,
    codec: str,
    pix_fmt: str,
) -> None:
    path = testdata / name
    info = probe(path)
    video = info.video
    assert video is not None
    assert (video.width, video.height) == size
    assert (video.display_width, video.display_height) == size
    assert video.rotation == 0
    assert video.r_frame_rate == fps
    assert video.is_variable_frame_rate is vfr
    assert video.codec == codec
    assert video.pix_fmt == pix_fmt
    assert info.has_audio is has_audio
    assert (info.audio is not None) is has_audio
    assert info.size_bytes == path.stat().st_size
    assert info.duration_seconds > 1


def test_vfr_clip_details(testdata: Path) -> None:
    info = probe(testdata / "videos/videoretalking_face1_talking.mp4")
    assert info.video is not None
    assert info.video.avg_frame_rate == pytest.approx(22.13, abs=0.01)
    assert info.video.frame_count == 135
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 44100, 2)
    assert info.duration_seconds == pytest.approx(6.13, abs=0.01)
    assert info.model_dump()["has_audio"] is True  # serialized with the model


def test_cockatoo_audio_is_mp3(testdata: Path) -> None:
    info = probe(testdata / "stock/imageio_cockatoo.mp4")
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("mp3", 16000, 1)


@pytest.mark.parametrize(
    ("ccw", "rotation"),
    [(-90, 90), (90, 270), (180, 180)],
    ids=["phone-portrait", "ccw-90", "upside-down"],
)
def test_rotation(rotated_clip: Callable[[int], Path], ccw: int, rotation: int) -> None:
    """FFmpeg's display rotation counts counter-clockwise; probe reports the clockwise turn (phones' 90)."""
    video = probe(rotated_clip(ccw)).video
    assert video is not None
    assert video.rotation == rotation
    assert (video.width, video.height) == (1280, 720)
    expected = (720, 1280) if rotation in (90, 270) else (1280, 720)
    assert (video.display_width, video.display_height) == expected


def test_too_long(testdata: Path) -> None:
    path = testdata / "videos/liveportrait_d13_vertical_talking.mp4"
    with pytest.raises(InvalidInputError) as caught:
        probe(path, max_duration_seconds=10)
    assert caught.value.code == "INPUT_TOO_LONG"
    assert caught.value.details["duration_seconds"] == pytest.approx(11.73, abs=0.01)
    assert probe(path, max_duration_seconds=12).duration_seconds < 12


def test_audio_only_allowed_when_video_not_required(audio_only: Path) -> None:
    info = probe(audio_only, require_video=False)
    assert info.video is None
    assert info.audio is not None and info.audio.codec == "aac"
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
