"""Quality metrics: synthetic frames with known answers, one real clip, and the contact sheet."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from shared.media.ffmpeg import run_ffmpeg
from shared.media.matting import PersonSegmenter, matte_video
from shared.media.qa import (
    SSIM_C1,
    TemporalQA,
    alpha_flicker,
    ssim_factor,
    static_mask,
    static_region_ssim,
    write_contact_sheet,
)

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
TALKING = TESTDATA / "videos" / "liveportrait_d13_vertical_talking.mp4"


def _flat(value: int, shape: tuple[int, ...] = (64, 48)) -> NDArray[np.uint8]:
    return np.full(shape, value, np.uint8)


def _texture(shape: tuple[int, int], seed: int = 0) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


# --- flicker -----------------------------------------------------------------------------------------


def test_flicker_of_still_and_blinking_mattes() -> None:
    assert alpha_flicker([_flat(0)] * 5) == 0.0
    assert alpha_flicker([_flat(0), _flat(255), _flat(0)]) == 1.0
    assert alpha_flicker([_flat(0)]) == 0.0 and alpha_flicker([]) == 0.0


def test_flicker_is_the_mean_absolute_change() -> None:
    half = _flat(0)
    half[:, :24] = 255  # half the pixels change by the full range: 0.5
    quarter = _flat(0)
    quarter[:32, :24] = 255  # a quarter
    assert alpha_flicker([_flat(0), half]) == pytest.approx(0.5)
    assert alpha_flicker(iter([_flat(0), half, quarter])) == pytest.approx((0.5 + 0.25) / 2)
    assert alpha_flicker([_flat(100), _flat(151)]) == pytest.approx(0.2)


def test_flicker_rejects_mismatched_frames() -> None:
    with pytest.raises(ValueError):
        alpha_flicker([_flat(0), _flat(0, (32, 32))])
    with pytest.raises(ValueError):
        alpha_flicker([_flat(0, (8, 8, 3))])


# --- static-region SSIM ------------------------------------------------------------------------------


def test_identical_frames_score_one() -> None:
    frame = _texture((300, 200))
    mask = static_mask(frame, frame)
    assert mask.all()
    assert static_region_ssim(frame, frame, mask) == pytest.approx(1.0)


def test_flat_frames_have_the_closed_form_score() -> None:
    # two flat frames p and q: SSIM = (2pq + C1) / (p^2 + q^2 + C1) (the structure term is 1)
    p, q = 100, 110
    mask = np.ones((40, 40), bool)
    expected = (2 * p * q + SSIM_C1) / (p * p + q * q + SSIM_C1)
    assert static_region_ssim(_flat(p, (40, 40)), _flat(q, (40, 40)), mask) == pytest.approx(expected, rel=1e-5)


def test_static_pixels_come_from_the_source() -> None:
    source = _texture((120, 160))
    moved = source.copy()
    moved[:, :40] = 255 - moved[:, :40]  # the left quarter changes in the source
    mask = static_mask(source, moved)
    assert mask.shape == (120, 160)  # below 384 px: no reduction
    assert not mask[:, :40].any()
    assert not mask[:, 40:45].any()  # within the SSIM window (radius 5) of the change
    assert mask[:, 45:].all()
    # codec-like noise of a level or two is not a change
    noisy = (source.astype(np.int16) + np.random.default_rng(1).integers(-2, 3, source.shape)).clip(0, 255)
    assert static_mask(source, noisy.astype(np.uint8)).all()


def test_output_changes_where_the_source_moved_do_not_count() -> None:
    source = _texture((120, 160))
    moved = source.copy()
    moved[:, :40] = 0
    mask = static_mask(source, moved)
    output_before, output_after = source.copy(), moved.copy()
    assert static_region_ssim(output_before, output_after, mask) == pytest.approx(1.0)
    # a change the source did not have (an outline that jitters over still background) does count
    output_after[:, 60:70] = 255 - output_after[:, 60:70]
    assert static_region_ssim(output_before, output_after, mask) < 0.9


def test_no_static_pixel_gives_nan_and_full_resolution_masks_are_reduced() -> None:
    frame = _texture((1080, 720))
    assert ssim_factor(1080, 720) == 3
    assert math.isnan(static_region_ssim(frame, frame, np.zeros((360, 240), bool)))
    full = np.ones((1080, 720), bool)
    assert static_region_ssim(frame, frame, full) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        static_region_ssim(frame, frame, np.ones((10, 10), bool))


# --- over a video ------------------------------------------------------------------------------------


def test_temporal_qa_accumulates_flicker_baseline_and_ssim() -> None:
    source = _texture((96, 128))
    matte = _flat(0, (96, 128))
    matte[20:80, 30:100] = 255
    jitter = matte.copy()
    jitter[20:80, 100:104] = 255  # the baseline's outline jumps by 4 px every other frame
    qa = TemporalQA()
    for index in range(5):
        qa.add(matte, source=source, baseline=jitter if index % 2 else matte)
    report = qa.result()
    assert report.frames == 5
    assert report.flicker == 0.0
    assert report.baseline_flicker == pytest.approx(60 * 4 / (96 * 128))
    assert report.flicker_reduction == pytest.approx(1.0)
    assert report.static_ssim == pytest.approx(1.0)  # the matte is the output: still
    assert report.static_fraction == 1.0
    assert set(report.as_dict()) >= {"flicker", "baseline_flicker", "static_ssim"}


def test_temporal_qa_without_source_or_baseline() -> None:
    qa = TemporalQA()
    qa.add(_flat(0))
    qa.add(_flat(255))
    report = qa.result()
    assert report.flicker == 1.0
    assert report.baseline_flicker is None and report.flicker_reduction is None
    assert report.static_ssim is None


@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not TALKING.is_file():
        pytest.skip(f"test media not found under {TESTDATA}")
    out = tmp_path_factory.mktemp("qa") / "talking.mp4"
    run_ffmpeg(["-y", "-i", str(TALKING), "-t", "1", "-vf", "scale=360:640", "-an", "-c:v", "libx264",
                "-preset", "ultrafast", "-crf", "16", str(out)])  # fmt: skip
    return out


def _frames(path: Path, fmt: str) -> Iterator[NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format=fmt)


def test_real_clip_matte_is_steadier_than_the_raw_model(talking_clip: Path, tmp_path: Path) -> None:
    matte_video(talking_clip, tmp_path / "matte.mp4")
    qa = TemporalQA()
    with PersonSegmenter() as segmenter:
        for rgb, alpha in zip(_frames(talking_clip, "rgb24"), _frames(tmp_path / "matte.mp4", "gray"), strict=True):
            raw = np.round(segmenter(rgb) * 255).astype(np.uint8)
            qa.add(alpha, source=rgb, baseline=raw)
    report = qa.result()
    assert report.frames == 30
    assert report.baseline_flicker is not None and report.flicker_reduction is not None
    assert report.flicker < report.baseline_flicker  # measured 0.00030 against 0.00036
    assert report.static_ssim is not None and report.static_ssim > 0.95  # measured 0.99996
    assert 0.3 < report.static_fraction <= 1.0  # measured 0.78


# --- contact sheet -----------------------------------------------------------------------------------


def test_contact_sheet_has_a_labelled_row_per_series(tmp_path: Path) -> None:
    rgb = _texture((200, 100))
    gray = _flat(128, (200, 100))
    rgba = np.dstack([rgb, gray])
    out = write_contact_sheet(
        [("source", [rgb, rgb, rgb]), ("matte", [gray, gray, gray]), ("result", [rgba, rgba, rgba])],
        tmp_path / "sheets" / "sheet.png",
        thumb_height=100,
    )
    assert out == tmp_path / "sheets" / "sheet.png"
    with Image.open(out) as sheet:
        assert sheet.mode == "RGB"
        assert sheet.height == 3 * 100 + 4 * 8
        assert sheet.width == 200 + 3 * (50 + 8) + 8
        pixels = np.asarray(sheet)
    assert pixels[8 + 100 + 8 + 50, 200 + 25].tolist() == [128, 128, 128]  # the matte row's gray
    assert [path.name for path in out.parent.iterdir()] == ["sheet.png"]
    with pytest.raises(ValueError):
        write_contact_sheet([], tmp_path / "empty.png")


def test_contact_sheet_makes_room_for_long_labels(tmp_path: Path) -> None:
    gray = _flat(128, (100, 100))
    short = write_contact_sheet([("a", [gray])], tmp_path / "short.png", thumb_height=100)
    long = write_contact_sheet([("source at 0.0 s, 1.5 s, 3.0 s and 4.5 s", [gray])], tmp_path / "long.png",
                               thumb_height=100)  # fmt: skip
    with Image.open(short) as first, Image.open(long) as second:
        assert second.width > first.width
