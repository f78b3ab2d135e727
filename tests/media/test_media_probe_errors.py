"""probe() on bad inputs made on the fly: every failure is an InvalidInputError with the right code."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from shared.errors import InvalidInputError
from shared.media.probe import probe
from shared.media.sniff import truncation_reason

MOOV_AT_END = "videos/liveportrait_d13_vertical_talking.mp4"
MOOV_AT_FRONT = "videos/liveportrait_s18_landscape_upperbody.mp4"  # "faststart": index before the data
WEBM = "stock/moviepy_big_buck_bunny_0_30.webm"


def _code(path: Path) -> str:
    with pytest.raises(InvalidInputError) as caught:
        probe(path)
    error = caught.value
    cause = json.loads(error.to_cause())  # what Step Functions and the task store see
    assert cause["code"] == error.code and cause["errorType"] == "InvalidInputError"
    assert "Traceback" not in error.message
    return str(error.code)


def _copy_head(src: Path, dst: Path, size: int) -> Path:
    with src.open("rb") as f:
        dst.write_bytes(f.read(size))
    return dst


def test_missing(tmp_path: Path) -> None:
    assert _code(tmp_path / "nope.mp4") == "INPUT_NOT_FOUND"


def test_directory(tmp_path: Path) -> None:
    assert _code(tmp_path) == "INPUT_NOT_FOUND"


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    assert _code(path) == "INPUT_EMPTY"


def test_text_renamed_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    assert _code(path) == "INPUT_NOT_VIDEO"


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(random.Random(7).randbytes(50_000))
    assert _code(path) == "INPUT_NOT_VIDEO"


@pytest.mark.parametrize("name", ["stock/imageio_astronaut.png", "stock/moviepy_vacation_2017.jpg"])
def test_still_image(testdata: Path, name: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        probe(testdata / name)
    assert caught.value.code == "INPUT_NOT_VIDEO"
    assert "still image" in caught.value.message


def test_png_renamed_mp4(testdata: Path, tmp_path: Path) -> None:
    path = tmp_path / "photo.mp4"
    path.write_bytes((testdata / "stock/imageio_astronaut.png").read_bytes())
    assert _code(path) == "INPUT_NOT_VIDEO"


def test_audio_only(audio_only: Path) -> None:
    assert _code(audio_only) == "INPUT_NO_VIDEO_STREAM"


def test_audio_with_cover_art_is_not_video(testdata: Path) -> None:
    """The OGG carries an embedded picture as an MJPEG 'video' stream: cover art is not a video."""
    assert _code(testdata / "audio/Kevin_MacLeod_-_Vibe_Ace.ogg") == "INPUT_NO_VIDEO_STREAM"


@pytest.mark.parametrize("name", [MOOV_AT_END, MOOV_AT_FRONT, WEBM])
@pytest.mark.parametrize("keep", [0.4, 4096], ids=["40pct", "4KB"])
def test_truncated(testdata: Path, tmp_path: Path, name: str, keep: float) -> None:
    src = testdata / name
    size = int(src.stat().st_size * keep) if keep < 1 else int(keep)
    path = _copy_head(src, tmp_path / f"cut{src.suffix}", size)
    with pytest.raises(InvalidInputError) as caught:
        probe(path)
    assert caught.value.code == "INPUT_TRUNCATED"
    assert "truncated" in caught.value.message


def test_truncated_index_past_end(testdata: Path, tmp_path: Path) -> None:
    """A cut MP4 whose 'mdat' size was patched to fit: the boxes add up, but the index points past the end."""
    data = bytearray((testdata / MOOV_AT_FRONT).read_bytes())
    cut = int(len(data) * 0.9)
    mdat = data.find(b"mdat") - 4
    data[mdat : mdat + 4] = (cut - mdat).to_bytes(4, "big")
    path = tmp_path / "patched.mp4"
    path.write_bytes(bytes(data[:cut]))
    assert truncation_reason(path) is None
    with pytest.raises(InvalidInputError) as caught:
        probe(path)
    assert caught.value.code == "INPUT_TRUNCATED"
    assert "index points to byte" in caught.value.message


def test_intact_files_are_not_truncated(testdata: Path, tmp_path: Path) -> None:
    for name in (MOOV_AT_END, MOOV_AT_FRONT, WEBM):
        assert truncation_reason(testdata / name) is None
    padded = tmp_path / "padded.mp4"  # trailing junk after the last box is not a truncation
    padded.write_bytes((testdata / MOOV_AT_FRONT).read_bytes() + b"\x00\x01\x02")
    assert truncation_reason(padded) is None
    assert probe(padded).video is not None


@pytest.mark.parametrize("name", [MOOV_AT_END, MOOV_AT_FRONT])
def test_garbage_data_behind_valid_header(testdata: Path, tmp_path: Path, name: str) -> None:
    """The container parses, but the frames are noise: caught here by decoding, not later by ffmpeg."""
    data = bytearray((testdata / name).read_bytes())
    mdat = data.find(b"mdat") + 4
    moov = data.find(b"moov")
    start, end = (mdat, moov - 4) if moov > mdat else (mdat, len(data))
    data[start:end] = random.Random(1).randbytes(end - start)
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(data))
    assert _code(path) == "INPUT_CORRUPT"


def test_unsupported_codec(testdata: Path, tmp_path: Path) -> None:
    """The sample entry's codec fourcc is changed to one no decoder knows."""
    data = bytearray((testdata / MOOV_AT_FRONT).read_bytes())
    entry = data.find(b"avc1", data.find(b"stsd"))
    data[entry : entry + 4] = b"zzzz"
    path = tmp_path / "unknown_codec.mp4"
    path.write_bytes(bytes(data))
    assert _code(path) == "INPUT_UNSUPPORTED_CODEC"
