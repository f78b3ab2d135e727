"""Shared fixtures for the media tests: the team's test media, and clips made from it on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shared.media.ffmpeg import run_ffmpeg

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
VIDEOS = TESTDATA / "videos"
STOCK = TESTDATA / "stock"
AUDIO = TESTDATA / "audio"

LANDSCAPE = VIDEOS / "liveportrait_s18_landscape_upperbody.mp4"  # 1280x720, moov at the front
SPEECH = AUDIO / "librispeech_198-209-0000.ogg"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The team's test media folder (beside the repository); the test is skipped without it."""
    if not LANDSCAPE.is_file():
        pytest.skip(f"test media not found under {TESTDATA}")
    return TESTDATA


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder for clips made once and shared by several tests."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def rotated_clip(testdata: Path, media_dir: Path) -> Callable[[int], Path]:
    """A 2 s copy of the landscape clip whose display matrix says: turn ``ccw`` degrees counter-clockwise.

    ``-display_rotation`` (an input option) is how this FFmpeg sets rotation; ``-metadata:s:v rotate=``
    is no longer turned into a display matrix. A phone held upright writes the equivalent of -90.
    """
    made: dict[int, Path] = {}

    def make(ccw: int) -> Path:
        if ccw not in made:
            out = media_dir / f"rotated_{ccw}.mp4"
            run_ffmpeg(
                ["-y", "-display_rotation", str(ccw), "-i", str(LANDSCAPE), "-t", "2", "-c", "copy", str(out)]
            )
            made[ccw] = out
        return made[ccw]

    return make


@pytest.fixture(scope="session")
def audio_only(testdata: Path, media_dir: Path) -> Path:
    out = media_dir / "speech.m4a"
    run_ffmpeg(["-y", "-i", str(SPEECH), "-t", "2", "-c:a", "aac", "-b:a", "64k", str(out)])
    return out

