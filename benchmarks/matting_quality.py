"""Matting quality of the local provider against issue 3's targets: accuracy on stills, stability on video.

Accuracy, over every image of ../shared/testdata/matting:
  p3m/   portraits with a soft reference alpha (<id>_alpha.png, P3M-Net predictions);
  cihp/  photos with hand-labelled human parsing, the person mask being label > 0 (several people,
         binary, low resolution);
  pymatting_lemur/  not a person: listed for completeness, in no mean and no target.
For each image: IoU (alpha > 0.5) and MAD (mean absolute alpha error, x1e-3) of the local provider
(``matte_rgb``: the model mask refined against the image, what ``matte_image`` writes) and of the raw
model mask upscaled (bilinear) to the image size.

Stability, over the sample videos (../shared/testdata/videos/*.mp4 and samples/talking_head.mp4): the
matte from ``matte_video`` against the raw model mask of every frame (the per-frame baseline):
  flicker      mean absolute alpha change between consecutive frames (0..1), ours and raw; it counts
               real motion too, which a correct matte follows (the dancing full-body clip is mostly
               that), so it is compared clip by clip;
  static SSIM  SSIM of consecutive composited frames (the person over a flat background) in regions
               where the source did not change (see shared.media.qa), ours and raw.

Targets (issue 3, "Quality, measured"):
  portraits: mean IoU >= 0.95; mean MAD at least 30 % below the raw mask's; no portrait worse than the
             raw mask (lower IoU or higher MAD);
  videos:    flicker at least 40 % below the raw mask's (on every video); static SSIM >= 0.95.

    python benchmarks/matting_quality.py [--no-video]

Prints tables and PASS/FAIL per target; always exits 0 (it is a report, not a test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from shared.media.matting import PersonSegmenter, matte_rgb, matte_video
from shared.media.qa import TemporalQA, TemporalReport

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
MATTING = TESTDATA / "matting"
VIDEOS = [*sorted((TESTDATA / "videos").glob("*.mp4")), ROOT / "samples" / "talking_head.mp4"]
BACKGROUND = np.array([46, 64, 92], np.float32)  # the flat backdrop composited frames are made on

IOU_TARGET = 0.95
MAD_REDUCTION_TARGET = 0.30
FLICKER_REDUCTION_TARGET = 0.40
STATIC_SSIM_TARGET = 0.95

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]


@dataclass(frozen=True)
class StillScore:
    group: str
    name: str
    size: tuple[int, int]
    iou: float
    mad: float
    raw_iou: float
    raw_mad: float
    seconds: float


@dataclass(frozen=True)
class VideoScore:
    name: str
    frames: int
    size: tuple[int, int]
    fps: float
    ours: TemporalReport
    raw: TemporalReport
    ours_moving: float  # the part of the flicker where the source moved (see MotionSplit)
    raw_moving: float


class MotionSplit:
    """Splits a matte's flicker into where the source moved and where it did not.

    The flicker counts every alpha change, and a correct matte changes where the person moves: on a
    dancing full-body clip that is most of it. Here a pixel "moved" when the source's luma changed by
    more than MOVED_LEVELS there or within MOVED_REACH pixels; the moving part of the flicker is the
    mean over all pixels of the alpha change at those pixels, so the two parts add up to the flicker.
    """

    MOVED_LEVELS = 6
    MOVED_REACH = 4

    def __init__(self) -> None:
        self._previous: tuple[NDArray[np.int16], list[NDArray[np.int16]]] | None = None
        self._moving = [0.0, 0.0]
        self._pairs = 0
        side = 2 * self.MOVED_REACH + 1
        self._kernel = np.ones((side, side), np.uint8)

    def add(self, rgb: U8, *alphas: U8) -> None:
        luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)
        current = [alpha.astype(np.int16) for alpha in alphas]
        if self._previous is not None:
            previous_luma, previous = self._previous
            changed = (np.abs(luma - previous_luma) > self.MOVED_LEVELS).astype(np.uint8)
            moved = cv2.dilate(changed, self._kernel).astype(bool)
            for index, (before, after) in enumerate(zip(previous, current, strict=True)):
                self._moving[index] += float(np.abs(after - before)[moved].sum()) / (255.0 * moved.size)
            self._pairs += 1
        self._previous = (luma, current)

    def moving(self) -> tuple[float, float]:
        return (self._moving[0] / self._pairs, self._moving[1] / self._pairs) if self._pairs else (0.0, 0.0)


# --- stills ------------------------------------------------------------------------------------------


def images() -> Iterator[tuple[str, Path, Path]]:
    """(group, image, reference) for every image with a reference under ../shared/testdata/matting."""
    for image in sorted((MATTING / "p3m").glob("*.jpg")):
        yield "p3m", image, image.with_name(f"{image.stem}_alpha.png")
    for image in sorted((MATTING / "cihp").glob("*.jpg")):
        yield "cihp", image, image.with_name(f"{image.stem}_parsing.png")
    for image in sorted((MATTING / "pymatting_lemur").glob("*.png")):
        if not image.stem.endswith(("_alpha", "_trimap")):
            yield "other", image, image.with_name(f"{image.stem}_alpha.png")


def load_reference(group: str, path: Path) -> F32:
    with Image.open(path) as image:
        array = np.asarray(image)
    if group == "cihp":
        return (array > 0).astype(np.float32)  # parsing labels: any body part is the person
    gray = array if array.ndim == 2 else np.asarray(Image.fromarray(array).convert("L"))
    return gray.astype(np.float32) / 255.0


def iou(alpha: F32, reference: F32) -> float:
    ours, theirs = alpha > 0.5, reference > 0.5
    union = (ours | theirs).sum()
    return float((ours & theirs).sum() / union) if union else 1.0


def mad(alpha: F32, reference: F32) -> float:
    return float(np.abs(alpha - reference).mean())


def score_stills(segmenter: PersonSegmenter) -> list[StillScore]:
    scores = []
    for group, path, reference_path in images():
        with Image.open(path) as image:
            rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        reference = load_reference(group, reference_path)
        started = time.perf_counter()
        alpha = matte_rgb(rgb, segmenter=segmenter).astype(np.float32) / 255.0
        seconds = time.perf_counter() - started
        raw = segmenter(rgb)
        scores.append(
            StillScore(
                group, path.stem, (rgb.shape[1], rgb.shape[0]), iou(alpha, reference), mad(alpha, reference),
                iou(raw, reference), mad(raw, reference), seconds,
            )
        )
    return scores


# --- videos ------------------------------------------------------------------------------------------


def decode(path: Path, fmt: str) -> Iterator[U8]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format=fmt), dtype=np.uint8)


def composite(rgb: U8, alpha: U8) -> U8:
    a = alpha.astype(np.float32)[..., None] * np.float32(1 / 255)
    out = rgb.astype(np.float32) * a + BACKGROUND * (1 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def score_video(path: Path, segmenter: PersonSegmenter, scratch: Path) -> VideoScore:
    matte = scratch / f"{path.stem}.matte.mp4"
    stats = matte_video(path, matte)
    ours, raw, split = TemporalQA(), TemporalQA(), MotionSplit()
    size = (0, 0)
    for rgb, alpha in zip(decode(path, "rgb24"), decode(matte, "gray"), strict=True):
        size = (rgb.shape[1], rgb.shape[0])
        baseline = np.round(segmenter(rgb) * 255).astype(np.uint8)
        ours.add(alpha, source=rgb, output=composite(rgb, alpha), baseline=baseline)
        raw.add(baseline, source=rgb, output=composite(rgb, baseline))
        split.add(rgb, alpha, baseline)
    matte.unlink()
    ours_moving, raw_moving = split.moving()
    return VideoScore(
        path.name, stats.frames, size, stats.fps_processed, ours.result(), raw.result(), ours_moving, raw_moving
    )


# --- report ------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report_stills(scores: list[StillScore]) -> list[tuple[str, bool]]:
    print("Accuracy on stills: IoU (alpha > 0.5) and MAD x1e-3; local = refined provider, raw = model mask")
    print(f"{'group':<6} {'image':<12} {'size':>10} {'IoU local':>10} {'IoU raw':>8} {'MAD local':>10} "
          f"{'MAD raw':>8} {'time s':>7}")  # fmt: skip
    for group in ("p3m", "cihp", "other"):
        rows = [score for score in scores if score.group == group]
        for row in rows:
            worse = " <- worse than raw" if group == "p3m" and _worse(row) else ""
            print(f"{row.group:<6} {row.name:<12} {row.size[0]:>4}x{row.size[1]:<5} {row.iou:>10.4f} "
                  f"{row.raw_iou:>8.4f} {row.mad * 1e3:>10.1f} {row.raw_mad * 1e3:>8.1f} "
                  f"{row.seconds:>7.2f}{worse}")  # fmt: skip
        if rows and group != "other":
            print(f"{group:<6} {'MEAN':<12} {'':>10} {_mean(r.iou for r in rows):>10.4f} "
                  f"{_mean(r.raw_iou for r in rows):>8.4f} {_mean(r.mad for r in rows) * 1e3:>10.1f} "
                  f"{_mean(r.raw_mad for r in rows) * 1e3:>8.1f} {_mean(r.seconds for r in rows):>7.2f}")  # fmt: skip
    print("(other: not a person; in no mean and no target)")
    portraits = [score for score in scores if score.group == "p3m"]
    if not portraits:
        return [("portraits found", False)]
    mean_iou = _mean(r.iou for r in portraits)
    local_mad, raw_mad = _mean(r.mad for r in portraits), _mean(r.raw_mad for r in portraits)
    reduction = 1 - local_mad / raw_mad if raw_mad else 0.0
    worse_names = [r.name for r in portraits if _worse(r)]
    return [
        (f"portraits: mean IoU {mean_iou:.4f} >= {IOU_TARGET}", mean_iou >= IOU_TARGET),
        (f"portraits: MAD {local_mad * 1e3:.1f} vs raw {raw_mad * 1e3:.1f} x1e-3, {reduction:.0%} lower "
         f"(target >= {MAD_REDUCTION_TARGET:.0%})", reduction >= MAD_REDUCTION_TARGET),
        (f"portraits: none worse than raw ({', '.join(worse_names) or 'none is'})", not worse_names),
    ]


def report_videos(scores: list[VideoScore]) -> list[tuple[str, bool]]:
    print("\nTemporal stability: flicker x1e-3 (mean |alpha change| per frame), static-region SSIM of "
          "consecutive composited frames")  # fmt: skip
    print(f"{'video':<46} {'frames':>6} {'size':>9} {'fps':>6} {'flicker':>8} {'raw':>7} {'lower':>6} "
          f"{'SSIM':>7} {'min':>7} {'raw':>7} {'static':>7} | {'moved':>6} {'raw':>6} {'still':>6} {'raw':>6} "
          f"{'lower':>6}")  # fmt: skip
    for row in scores:
        ours, raw = row.ours, row.raw
        ours_still, raw_still = ours.flicker - row.ours_moving, raw.flicker - row.raw_moving
        print(f"{row.name:<46} {row.frames:>6} {row.size[0]:>4}x{row.size[1]:<4} {row.fps:>6.1f} "
              f"{ours.flicker * 1e3:>8.3f} {raw.flicker * 1e3:>7.3f} {ours.flicker_reduction or 0:>6.0%} "
              f"{ours.static_ssim or 0:>7.4f} {ours.static_ssim_min or 0:>7.4f} {raw.static_ssim or 0:>7.4f} "
              f"{ours.static_fraction:>7.0%} | {row.ours_moving * 1e3:>6.3f} {row.raw_moving * 1e3:>6.3f} "
              f"{ours_still * 1e3:>6.3f} {raw_still * 1e3:>6.3f} "
              f"{1 - ours_still / raw_still if raw_still else 0:>6.0%}")  # fmt: skip
    if not scores:
        return [("sample videos found", False)]
    flicker, raw_flicker = _mean(r.ours.flicker for r in scores), _mean(r.raw.flicker for r in scores)
    ssim = _mean(r.ours.static_ssim or 0.0 for r in scores)
    frames = sum(r.frames for r in scores)
    seconds = sum(r.frames / r.fps for r in scores if r.fps)
    print(f"{'MEAN':<46} {frames:>6} {'':>9} {frames / seconds:>6.1f} {flicker * 1e3:>8.3f} "
          f"{raw_flicker * 1e3:>7.3f} {1 - flicker / raw_flicker:>6.0%} {ssim:>7.4f}")  # fmt: skip
    print("(moved / still: the flicker split by whether the source moved there (luma change > "
          f"{MotionSplit.MOVED_LEVELS} within {MotionSplit.MOVED_REACH} px); a correct matte follows motion)")
    mean_reduction = _mean(r.ours.flicker_reduction or 0.0 for r in scores)
    least = min(scores, key=lambda r: r.ours.flicker_reduction or 0.0)
    lowest = min(scores, key=lambda r: r.ours.static_ssim or 0.0)
    return [
        (f"videos: flicker {mean_reduction:.0%} below raw on average per video, least "
         f"{least.ours.flicker_reduction or 0:.0%} ({least.name}) (target >= {FLICKER_REDUCTION_TARGET:.0%} on each)",
         all((r.ours.flicker_reduction or 0.0) >= FLICKER_REDUCTION_TARGET for r in scores)),
        (f"videos: static-region SSIM {ssim:.4f} on average, lowest {lowest.ours.static_ssim or 0:.4f} "
         f"({lowest.name}) (target >= {STATIC_SSIM_TARGET} on each)",
         all((r.ours.static_ssim or 0.0) >= STATIC_SSIM_TARGET for r in scores)),
    ]  # fmt: skip


def _worse(row: StillScore) -> bool:
    return row.iou < row.raw_iou or row.mad > row.raw_mad


def _mean(values: object) -> float:
    return float(np.mean(list(values)))  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--no-video", action="store_true", help="stills only")
    args = parser.parse_args(argv)
    checks: list[tuple[str, bool]] = []
    with PersonSegmenter() as segmenter:
        checks += report_stills(score_stills(segmenter))
        if not args.no_video:
            with tempfile.TemporaryDirectory() as scratch:
                videos = [score_video(path, segmenter, Path(scratch)) for path in VIDEOS if path.is_file()]
            checks += report_videos(videos)
    print("\nTargets:")
    for text, ok in checks:
        print(f"  {verdict(ok)}  {text}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
