"""plan_chunk_decode on real clips: orientation, fit (cover-crop or black bars), formats, decode hints.

Frame counts and chunk boundaries are in test_media_chunks.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from shared.errors import InvalidInputError, MediaError
from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe
from shared.media.models import Chunk, DecodeHints, MediaInfo
from shared.media.normalize import plan_chunk_decode, read_decode_hints
from shared.media.probe import probe

Pixels = npt.NDArray[np.int16]
LANDSCAPE = "videos/liveportrait_s18_landscape_upperbody.mp4"  # 1280x720
NARROW = "videos/liveportrait_s20_vertical_upperbody.mp4"  # 480x908: 6% narrower than 9:16
VFR = "videos/videoretalking_face1_talking.mp4"
COCKATOO = "stock/imageio_cockatoo.mp4"  # x264 core 142, yuv444p, keyframes at 0, 3.8, 7.25 s
BUNNY = "stock/moviepy_big_buck_bunny_0_30.webm"
SMALL_W, SMALL_H = 180, 320


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([ffmpeg_exe(), *BASE_ARGS, *args], capture_output=True, timeout=120, check=False)


def _decode_rgb(
    info: MediaInfo, src: Path, chunk: Chunk, width: int, height: int, fill_tolerance: float = 0.02
) -> list[Pixels]:
    """A chunk as RGB frames (int16 for differences); ffmpeg must report no error."""
    plan = plan_chunk_decode(info, src, width=width, height=height, fps=30, chunk=chunk, fill_tolerance=fill_tolerance)
    result = _run([*plan, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
    assert result.returncode == 0 and not result.stderr, result.stderr.decode(errors="replace")
    frames = np.frombuffer(result.stdout, np.uint8).reshape(-1, height, width, 3).astype(np.int16)
    assert len(frames) == chunk.frames
    return list(frames)


def _first(info: MediaInfo, src: Path, width: int, height: int, fill_tolerance: float = 0.02) -> Pixels:
    return _decode_rgb(info, src, Chunk(index=0, start_frame=0, frames=1), width, height, fill_tolerance)[0]


def _stored_frame(path: Path, index: int = 0) -> Pixels:
    """A frame as stored (PyAV does not apply a display matrix), RGB."""
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                return frame.to_ndarray(format="rgb24").astype(np.int16)
    raise AssertionError(f"{path.name} has no frame {index}")


def _resized(pixels: Pixels, width: int, height: int) -> Pixels:
    image = Image.fromarray(pixels.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image).astype(np.int16)


def _mean_difference(a: Pixels, b: Pixels) -> float:
    return float(np.abs(a - b).mean())


def test_phone_portrait_decodes_upright(rotated_clip: Callable[[int], Path]) -> None:
    src = rotated_clip(-90)  # what a phone held upright writes: stored landscape, shown turned 90° clockwise
    info = probe(src)
    assert info.video is not None and info.video.rotation == 90
    # upright it is 720x1280, 9:16: scaled to cover, nothing cropped or padded; at the start and after a seek
    chunk = Chunk(index=1, start_frame=30, frames=1)
    for frame, index in (
        (_first(info, src, SMALL_W, SMALL_H), 0),
        (_decode_rgb(info, src, chunk, SMALL_W, SMALL_H)[0], 30),
    ):
        stored = _stored_frame(src, index)
        clockwise = _resized(np.rot90(stored, k=-1), SMALL_W, SMALL_H)
        counter = _resized(np.rot90(stored, k=1), SMALL_W, SMALL_H)
        assert _mean_difference(frame, clockwise) < 6
        assert _mean_difference(frame, counter) > 3 * _mean_difference(frame, clockwise)


def test_landscape_fits_between_black_bars_without_distortion(testdata: Path) -> None:
    src = testdata / LANDSCAPE
    frame = _first(probe(src), src, 360, 640)
    # 1280x720 fitted into 360 wide is 360x202, centred: rows 218..420 (even, for the chroma planes)
    rows = frame.max(axis=(1, 2))
    picture = np.flatnonzero(rows > 40)
    assert (picture.min(), picture.max()) == (218, 419)
    assert frame[:216].max() <= 2 and frame[422:].max() <= 2  # black: no blurred copy of the picture
    band = frame[220:418]
    source = _resized(_stored_frame(src), 360, 202)[2:200]
    assert _mean_difference(band, source) < 3
    stretched = _resized(_resized(_stored_frame(src), 360, 640)[220:418], 360, 198)
    assert _mean_difference(band, stretched) > 3 * _mean_difference(band, source)


def test_near_9x16_is_cover_cropped_else_pillarboxed(testdata: Path) -> None:
    src = testdata / NARROW
    info = probe(src)
    stored = _stored_frame(src)

    cropped = _first(info, src, 360, 640, fill_tolerance=0.07)  # 6% off is within 7%: cover and crop
    assert cropped[:, :4].mean() > 20 and cropped[:, -4:].mean() > 20  # picture to the edges
    covered = _resized(stored, 360, 682)[20:660]  # 908 x 360/480 = 681, made even; the centre 640 rows
    assert _mean_difference(cropped, covered) < 3

    boxed = _first(info, src, 360, 640)  # the default 2%: fitted inside, black bars left and right
    columns = np.flatnonzero(boxed.max(axis=(0, 2)) > 40)
    assert (columns.min(), columns.max()) == (10, 347)  # 480x908 fitted is 338x640, centred
    assert boxed[:, :10].max() <= 2 and boxed[:, 348:].max() <= 2
    fitted = _mean_difference(boxed[:, 10:348], _resized(stored, 338, 640))
    assert fitted < 6
    assert _mean_difference(boxed[:, 10:348], _resized(stored, 360, 640)[:, 11:349]) > 2 * fitted  # squeezed


@pytest.mark.parametrize(("name", "build"), [(COCKATOO, 142), (VFR, 148), (BUNNY, None)])
def test_read_decode_hints(testdata: Path, name: str, build: int | None) -> None:
    src = testdata / name
    assert read_decode_hints(probe(src), src) == DecodeHints(x264_build=build)


def test_read_decode_hints_errors(testdata: Path, audio_only: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as no_video:
        read_decode_hints(probe(audio_only, require_video=False), audio_only)
    assert no_video.value.code == "INPUT_NO_VIDEO_STREAM"
    info = probe(testdata / VFR)
    with pytest.raises(MediaError) as unreadable:
        read_decode_hints(info, tmp_path / "gone.mp4")
    assert unreadable.value.code == "MEDIA_READ_FAILED"


@pytest.mark.parametrize("name", [COCKATOO, BUNNY], ids=["yuv444p-old-x264", "vp8"])
def test_other_formats_decode_after_a_seek(testdata: Path, name: str) -> None:
    """A chunk past a keyframe: the seek lands there, the frames decode cleanly, in 4:2:0 at the size."""
    src = testdata / name
    info = probe(src)
    chunk = Chunk(index=3, start_frame=195, frames=15)  # 6.5 s: seeks to 6.0 s, after a keyframe of both
    plan = plan_chunk_decode(
        info, src, width=SMALL_W, height=SMALL_H, fps=30, chunk=chunk, hints=read_decode_hints(info, src)
    )
    assert "-ss" in plan
    result = _run([*plan, "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"])
    assert result.returncode == 0 and not result.stderr, result.stderr.decode(errors="replace")
    assert len(result.stdout) == chunk.frames * SMALL_W * SMALL_H * 3 // 2


def test_old_x264_444_needs_its_build_after_a_seek(testdata: Path) -> None:
    """Why DecodeHints exist: told nothing, FFmpeg decodes the cockatoo clip's keyframe at 3.8 s as a
    modern x264 stream and reports errors; with x264_build (read from its first frame) it is clean."""
    src = testdata / COCKATOO
    info = probe(src)
    chunk = Chunk(index=0, start_frame=130, frames=2)  # 4.33 s: seeks to 3.83 s, lands on 3.8 s
    wrong = plan_chunk_decode(info, src, width=SMALL_W, height=SMALL_H, fps=30, chunk=chunk, hints=DecodeHints())
    result = _run([*wrong, "-f", "null", "-"])
    assert b"error while decoding" in result.stderr
