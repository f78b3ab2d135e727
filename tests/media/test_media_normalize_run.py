"""normalize() on real clips (about 1 s of each, to stay fast): size, orientation, timing, audio, cleanup."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from av.sidedata.sidedata import Type as SideDataType
from PIL import Image

from shared.errors import MediaError
from shared.media.normalize import normalize
from shared.media.probe import probe
from shared.storage.tasks import ResourceUsage

Pixels = npt.NDArray[np.int16]
LANDSCAPE = "videos/liveportrait_s18_landscape_upperbody.mp4"
SMALL_W, SMALL_H = 360, 640  # for checks that do not need the full size


def _first_frame(path: Path) -> Pixels:
    """The first frame as stored (PyAV does not apply a display matrix), RGB, as int16 for differences."""
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)


def _resized(pixels: Pixels, width: int, height: int) -> Pixels:
    image = Image.fromarray(pixels.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image).astype(np.int16)


def _mean_difference(a: Pixels, b: Pixels) -> float:
    return float(np.abs(a - b).mean())


def _detail(pixels: Pixels) -> float:
    """Mean horizontal brightness step: high for a sharp picture, low for a blurred one."""
    return float(np.abs(np.diff(pixels.mean(axis=2), axis=1)).mean())


def _video_pts(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(p.pts for p in container.demux(stream) if p.pts is not None)


def _has_display_matrix(path: Path) -> bool:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return any(getattr(data, "type", None) == SideDataType.DISPLAYMATRIX for data in frame.side_data)


def test_landscape_gets_blurred_background_without_distortion(testdata: Path, tmp_path: Path) -> None:
    src = testdata / LANDSCAPE
    usage = ResourceUsage()
    out = normalize(src, tmp_path / "out.mp4", probe(src), max_seconds=1, usage=usage)
    video = out.video
    assert video is not None
    assert (video.width, video.height, video.rotation) == (1080, 1920, 0)
    assert (video.codec, video.pix_fmt, video.r_frame_rate) == ("h264", "yuv420p", 30.0)
    assert out.duration_seconds == pytest.approx(1.0, abs=0.1)
    assert usage.cpu_seconds > 0

    frame = _first_frame(tmp_path / "out.mp4")
    # 1280x720 fitted into 1080 wide is 1080x608, centred: rows 656..1264
    band = frame[656:1264]
    source = _first_frame(src)
    assert _mean_difference(band, _resized(source, 1080, 608)) < 6
    stretched = _resized(_resized(source, 1080, 1920)[656:1264], 1080, 608)
    assert _mean_difference(band, stretched) > 3 * _mean_difference(band, _resized(source, 1080, 608))
    # the padding is the picture, blurred and darkened: not black bars, and without sharp detail
    top = frame[:600]
    assert 15 < top.mean() < source.mean()
    assert _detail(top) < _detail(band) / 3


def test_phone_portrait_is_upright_without_rotation_metadata(
    rotated_clip: Callable[[int], Path], tmp_path: Path
) -> None:
    src = rotated_clip(-90)  # what a phone held upright writes: stored landscape, shown turned 90° clockwise
    info = probe(src)
    assert info.video is not None and info.video.rotation == 90
    out = normalize(src, tmp_path / "upright.mp4", info, max_seconds=1)
    assert out.video is not None
    assert (out.video.width, out.video.height, out.video.rotation) == (1080, 1920, 0)
    assert not _has_display_matrix(tmp_path / "upright.mp4")

    frame = _first_frame(tmp_path / "upright.mp4")
    stored = _first_frame(src)
    clockwise = _resized(np.rot90(stored, k=-1), 1080, 1920)
    counter = _resized(np.rot90(stored, k=1), 1080, 1920)
    assert _mean_difference(frame, clockwise) < 6
    assert _mean_difference(frame, counter) > 3 * _mean_difference(frame, clockwise)


def test_vfr_becomes_constant(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "videos/videoretalking_face1_talking.mp4"
    info = probe(src)
    assert info.video is not None and info.video.is_variable_frame_rate
    out = normalize(src, tmp_path / "cfr.mp4", info, max_seconds=1.5, width=SMALL_W, height=SMALL_H)
    assert out.video is not None
    assert not out.video.is_variable_frame_rate
    assert out.video.avg_frame_rate == pytest.approx(30.0, abs=0.01)
    pts = _video_pts(tmp_path / "cfr.mp4")
    assert len(pts) >= 43
    assert len({b - a for a, b in itertools.pairwise(pts)}) == 1  # evenly spaced
    assert out.audio is not None


def test_silent_vertical_clip_gets_no_audio_track(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "videos/liveportrait_d13_vertical_talking.mp4"
    out = normalize(src, tmp_path / "silent.mp4", probe(src), max_seconds=1, width=SMALL_W, height=SMALL_H)
    assert out.audio is None and not out.has_audio
    assert out.video is not None and (out.video.width, out.video.height) == (SMALL_W, SMALL_H)
    # already 9:16: the whole frame is scaled, nothing blurred around it
    expected = _resized(_first_frame(src), SMALL_W, SMALL_H)
    assert _mean_difference(_first_frame(tmp_path / "silent.mp4"), expected) < 6


@pytest.mark.parametrize(
    "name",
    ["stock/imageio_cockatoo.mp4", "stock/moviepy_big_buck_bunny_0_30.webm"],
    ids=["yuv444p-mp3", "vp8"],
)
def test_other_formats(testdata: Path, tmp_path: Path, name: str) -> None:
    src = testdata / name
    out = normalize(src, tmp_path / "out.mp4", probe(src), max_seconds=1, width=SMALL_W, height=SMALL_H)
    assert out.video is not None
    assert (out.video.codec, out.video.pix_fmt) == ("h264", "yuv420p")
    assert (out.video.width, out.video.height) == (SMALL_W, SMALL_H)
    assert out.audio is not None
    assert (out.audio.codec, out.audio.sample_rate, out.audio.channels) == ("aac", 48000, 2)
    assert out.container_format.startswith("mov,mp4")


def test_no_metadata_is_carried_over(testdata: Path, tmp_path: Path) -> None:
    src = testdata / LANDSCAPE  # carries creation_time
    normalize(src, tmp_path / "clean.mp4", probe(src), max_seconds=0.5, width=SMALL_W, height=SMALL_H)
    with av.open(str(tmp_path / "clean.mp4")) as container:
        assert "creation_time" not in container.metadata
        assert "rotate" not in container.streams.video[0].metadata


def test_failure_leaves_no_output(testdata: Path, tmp_path: Path) -> None:
    src = testdata / LANDSCAPE
    info = probe(src)
    assert info.audio is not None
    broken = info.model_copy(update={"audio": info.audio.model_copy(update={"index": 7})})  # no stream 7
    with pytest.raises(MediaError) as caught:
        normalize(src, tmp_path / "out.mp4", broken, max_seconds=1, width=SMALL_W, height=SMALL_H)
    assert caught.value.code == "FFMPEG_FAILED"
    assert list(tmp_path.iterdir()) == []


def test_cancellation_leaves_no_output(testdata: Path, tmp_path: Path) -> None:
    src = testdata / LANDSCAPE
    cancelled = threading.Event()
    threading.Timer(0.3, cancelled.set).start()
    with pytest.raises(MediaError) as caught:
        normalize(src, tmp_path / "out.mp4", probe(src), cancelled=cancelled, preset="medium")
    assert caught.value.code == "FFMPEG_CANCELLED"
    assert list(tmp_path.iterdir()) == []
