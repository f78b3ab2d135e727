"""Quality figures for mattes and composited videos: flicker, static-region SSIM, and a contact sheet.

The metrics are functions of numpy arrays (no files, no ffmpeg): the caller decodes the frames.

* :func:`alpha_flicker`: the mean absolute change of a matte between consecutive frames, on a 0..1
  scale. A perfectly still matte scores 0; a raw per-frame segmentation of a talking head typically
  scores a few thousandths, most of it at the outline.
* :func:`static_region_ssim`: SSIM (Wang et al. 2004) between two consecutive *output* frames,
  averaged only over the pixels where the *source* did not change: there the output must not change
  either, so anything below 1 is flicker the processing added (a jittering outline, a breathing matte,
  grain). Which pixels are static is decided by :func:`static_mask` from the two source frames.
* :class:`TemporalQA`: accumulates both over a video, frame by frame, in bounded memory, beside the
  flicker of a baseline matte (the raw per-frame model mask) when one is given; its :meth:`result`
  is what report.json quotes.
* :func:`write_contact_sheet`: labelled rows of thumbnails in one PNG, to look at the result.

"Static", precisely: SSIM is computed on luma (BT.601 Y; an alpha matte is its own luma) on a grid
reduced by ``f = max(1, round(min(height, width) / 256))`` with block means, as Wang et al.'s reference
implementation does for viewing-distance independence. A grid pixel is static when, in the source
frames reduced the same way, the luma changes by at most :data:`STATIC_LEVELS` (of 255) at every grid
pixel within the SSIM window around it (radius :data:`WINDOW_RADIUS`). Compression noise in a still
background stays within that threshold (measured on the sample clips: 90 to 97 % of pixels change by 4
levels or less between frames at full resolution, more on the reduced grid); a moving head does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]
Mask = NDArray[np.bool_]

STATIC_LEVELS = 4  # source luma change (of 255) still counted as "no change" (codec noise)
WINDOW_SIGMA = 1.5  # SSIM's Gaussian window (Wang et al.)
WINDOW_RADIUS = 5  # ... truncated to 11 x 11
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2
SSIM_GRID = 256  # the reduced grid's short side is about this (see the module docstring)

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_TAPS = np.exp(-0.5 * (np.arange(-WINDOW_RADIUS, WINDOW_RADIUS + 1) / WINDOW_SIGMA) ** 2).astype(np.float32)
_TAPS /= _TAPS.sum()


# =====================================================================================================
# Metrics
# =====================================================================================================


def alpha_flicker(frames: Iterable[NDArray[Any]]) -> float:
    """The mean absolute change between consecutive 8-bit alpha frames, on a 0..1 scale.

    The mean over every pixel of every consecutive pair of ``|a[t] - a[t-1]| / 255``; 0.0 when there
    are fewer than two frames. Frames are consumed one at a time (a generator is fine).
    """
    total, pairs = 0.0, 0
    previous: F32 | None = None
    for frame in frames:
        current = _as_alpha(frame)
        if previous is not None:
            total += _mean_change(previous, current)
            pairs += 1
        previous = current
    return total / pairs if pairs else 0.0


def ssim_factor(height: int, width: int) -> int:
    """The block size frames are reduced by before SSIM: ``max(1, round(min(height, width) / 256))``."""
    return max(1, round(min(height, width) / SSIM_GRID))


def static_mask(prev_source: NDArray[Any], next_source: NDArray[Any], *, levels: int = STATIC_LEVELS) -> Mask:
    """Where two consecutive *source* frames (H x W x 3 RGB or H x W luma, uint8) barely differ.

    The result is on the reduced SSIM grid (``H // f`` x ``W // f``, see :func:`ssim_factor`): a pixel
    is True when the block-mean luma changes by at most ``levels`` everywhere within the SSIM window
    around it. Pass it to :func:`static_region_ssim` for the output frames of the same two instants.
    """
    if prev_source.shape != next_source.shape:
        raise ValueError(f"source frames differ in shape: {prev_source.shape} and {next_source.shape}")
    factor = ssim_factor(*prev_source.shape[:2])
    return _static(_reduce(_luma(prev_source), factor), _reduce(_luma(next_source), factor), levels)


def _static(prev_luma: F32, next_luma: F32, levels: int = STATIC_LEVELS) -> Mask:
    return _window_max(np.abs(next_luma - prev_luma)) <= np.float32(levels)


def static_region_ssim(prev_rgb: NDArray[Any], next_rgb: NDArray[Any], static_mask: Mask) -> float:
    """The mean SSIM of two consecutive *output* frames over the static pixels of ``static_mask``.

    ``prev_rgb`` and ``next_rgb`` are H x W x 3 RGB or H x W gray/alpha, uint8. ``static_mask`` is
    either from :func:`static_mask` (reduced grid) or a full-resolution H x W boolean array (reduced
    here: a block is static when all its pixels are). SSIM is computed on luma on the reduced grid
    with an 11 x 11 Gaussian window (sigma 1.5). Returns NaN when no pixel is static.
    """
    if prev_rgb.shape != next_rgb.shape:
        raise ValueError(f"frames differ in shape: {prev_rgb.shape} and {next_rgb.shape}")
    factor = ssim_factor(*prev_rgb.shape[:2])
    first, second = _reduce(_luma(prev_rgb), factor), _reduce(_luma(next_rgb), factor)
    mask = static_mask
    if mask.shape != first.shape:
        if mask.shape != prev_rgb.shape[:2]:
            raise ValueError(f"static_mask has shape {mask.shape}; expected {first.shape} or {prev_rgb.shape[:2]}")
        mask = _reduce(mask.astype(np.float32), factor) >= np.float32(1.0)
    return _masked_ssim(first, second, mask)


def _masked_ssim(first: F32, second: F32, mask: Mask) -> float:
    if not mask.any():
        return math.nan
    return float(_ssim_map(first, second)[mask].mean(dtype=np.float64))


# =====================================================================================================
# Over a video
# =====================================================================================================


@dataclass(frozen=True)
class TemporalReport:
    """Temporal quality of one video's matte and output (JSON-ready via :meth:`as_dict`).

    ``flicker``: :func:`alpha_flicker` of the matte. ``baseline_flicker``: the same of the baseline
    matte (the raw per-frame model mask), None without one; ``flicker_reduction`` is
    ``1 - flicker / baseline_flicker``. ``static_ssim``: the mean over consecutive frame pairs of
    :func:`static_region_ssim` of the output frames (the matte itself when no output was given),
    None when no pair had a static pixel; ``static_ssim_min`` the worst pair; ``static_fraction`` the
    mean share of static pixels.
    """

    frames: int
    flicker: float
    baseline_flicker: float | None
    flicker_reduction: float | None
    static_ssim: float | None
    static_ssim_min: float | None
    static_fraction: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TemporalQA:
    """Temporal figures accumulated over a video, one frame at a time; holds only the previous frame.

    Call :meth:`add` for every frame in order with its matte, and optionally the source frame (needed
    for static-region SSIM), the output frame (the composited result; the matte is used when absent)
    and a baseline matte to compare the flicker with. ``ssim_every`` computes the SSIM on every n-th
    pair only (the flicker always uses every pair).
    """

    def __init__(self, *, ssim_every: int = 1) -> None:
        if ssim_every < 1:
            raise ValueError(f"ssim_every must be >= 1, not {ssim_every}")
        self._ssim_every = ssim_every
        self._frames = 0
        self._previous: tuple[F32, F32 | None, F32 | None, F32 | None] | None = None
        self._change = 0.0
        self._baseline_change = 0.0
        self._baseline_pairs = 0
        self._ssims: list[float] = []
        self._static_fractions: list[float] = []

    def add(
        self,
        alpha: NDArray[Any],
        *,
        source: NDArray[Any] | None = None,
        output: NDArray[Any] | None = None,
        baseline: NDArray[Any] | None = None,
    ) -> None:
        current = _as_alpha(alpha)
        base = None if baseline is None else _as_alpha(baseline)
        shown = output if output is not None else alpha
        factor = ssim_factor(*current.shape)
        source_luma = None if source is None else _reduce(_luma(source), factor)
        shown_luma = None if source is None else _reduce(_luma(shown), factor)
        if self._previous is not None:
            prev_alpha, prev_base, prev_source, prev_shown = self._previous
            self._change += _mean_change(prev_alpha, current)
            if base is not None and prev_base is not None:
                self._baseline_change += _mean_change(prev_base, base)
                self._baseline_pairs += 1
            due = (self._frames - 1) % self._ssim_every == 0
            if due and source_luma is not None and shown_luma is not None and prev_source is not None:
                assert prev_shown is not None
                mask = _static(prev_source, source_luma)
                self._static_fractions.append(float(mask.mean()))
                score = _masked_ssim(prev_shown, shown_luma, mask)
                if not math.isnan(score):
                    self._ssims.append(score)
        # what the next pair needs: the matte, the baseline, and the reduced luma planes
        self._previous = (current, base, source_luma, shown_luma)
        self._frames += 1

    def result(self) -> TemporalReport:
        pairs = max(0, self._frames - 1)
        flicker = self._change / pairs if pairs else 0.0
        baseline = self._baseline_change / self._baseline_pairs if self._baseline_pairs else None
        reduction = None if not baseline else 1.0 - flicker / baseline
        return TemporalReport(
            frames=self._frames,
            flicker=flicker,
            baseline_flicker=baseline,
            flicker_reduction=reduction,
            static_ssim=float(np.mean(self._ssims)) if self._ssims else None,
            static_ssim_min=float(np.min(self._ssims)) if self._ssims else None,
            static_fraction=float(np.mean(self._static_fractions)) if self._static_fractions else 0.0,
        )


# =====================================================================================================
# Contact sheet
# =====================================================================================================

THUMB_HEIGHT = 320
LABEL_WIDTH = 200  # at least; wider when a label needs it
GAP = 8
BACKGROUND = (24, 24, 24)


def write_contact_sheet(
    rows: Sequence[tuple[str, Sequence[NDArray[Any]]]], path: Path, *, thumb_height: int = THUMB_HEIGHT
) -> Path:
    """Write a PNG of labelled rows of thumbnails, e.g. ``[("source", frames), ("matte", mattes), ...]``.

    Each image (H x W x 3 RGB, H x W x 4 RGBA shown over a checkerboard, or H x W gray, uint8) is
    scaled to ``thumb_height`` pixels high, keeping its aspect; each row starts with its label (the
    label column is as wide as the longest label needs, LABEL_WIDTH at least). Returns
    ``path`` (parent folders are created; the file is written beside and renamed into place).
    """
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    thumbs = [[_thumbnail(image, thumb_height) for image in images] for _, images in rows]
    font = _font(max(12, thumb_height // 14))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(LABEL_WIDTH, *(round(measure.textlength(label, font=font)) + 3 * GAP for label, _ in rows))
    width = label_width + max((sum(t.width + GAP for t in row) for row in thumbs), default=0) + GAP
    height = len(rows) * (thumb_height + GAP) + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, ((label, _), row) in enumerate(zip(rows, thumbs, strict=True)):
        top = GAP + index * (thumb_height + GAP)
        draw.text((GAP, top + thumb_height // 2), label, fill=(235, 235, 235), font=font, anchor="lm")
        left = label_width
        for thumb in row:
            sheet.paste(thumb, (left, top))
            left += thumb.width + GAP
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    sheet.save(partial, format="PNG")
    partial.replace(path)
    return path


def _thumbnail(image: NDArray[Any], height: int) -> Image.Image:
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"contact sheet images must be uint8, got {array.dtype}")
    if array.ndim == 2:
        picture = Image.fromarray(array).convert("RGB")
    elif array.ndim == 3 and array.shape[2] == 3:
        picture = Image.fromarray(array)
    elif array.ndim == 3 and array.shape[2] == 4:
        rgba = Image.fromarray(array)
        picture = _checkerboard(rgba.size)
        picture.paste(rgba, (0, 0), rgba)
    else:
        raise ValueError(f"expected H x W, H x W x 3 or H x W x 4, got shape {array.shape}")
    width = max(1, round(picture.width * height / picture.height))
    return picture.resize((width, height), Image.Resampling.LANCZOS)


def _checkerboard(size: tuple[int, int], cell: int = 16) -> Image.Image:
    width, height = size
    ys, xs = np.indices((height, width))
    light = ((ys // cell + xs // cell) % 2 == 0)[..., None]
    return Image.fromarray(np.where(light, np.uint8(200), np.uint8(150)).repeat(3, axis=2).astype(np.uint8))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


# =====================================================================================================
# Helpers
# =====================================================================================================


def _as_alpha(frame: NDArray[Any]) -> F32:
    array = np.asarray(frame)
    if array.ndim != 2:
        raise ValueError(f"an alpha frame is 2-D, got shape {array.shape}")
    scale = np.float32(1 / 255) if array.dtype == np.uint8 else np.float32(1)
    return array.astype(np.float32) * scale


def _mean_change(previous: F32, current: F32) -> float:
    if previous.shape != current.shape:
        raise ValueError(f"frames differ in shape: {previous.shape} and {current.shape}")
    return float(np.abs(current - previous).mean(dtype=np.float64))


def _luma(frame: NDArray[Any]) -> F32:
    array = np.asarray(frame)
    if array.ndim == 2:
        return array.astype(np.float32)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        luma: F32 = array[..., :3].astype(np.float32) @ _LUMA
        return luma
    raise ValueError(f"expected H x W or H x W x 3 frames, got shape {array.shape}")


def _reduce(plane: F32, factor: int) -> F32:
    """Block means of ``factor`` x ``factor`` (the remainder rows and columns are dropped)."""
    if factor == 1:
        return plane
    height, width = plane.shape[0] // factor, plane.shape[1] // factor
    blocks = plane[: height * factor, : width * factor].reshape(height, factor, width, factor)
    reduced: F32 = blocks.mean(axis=(1, 3), dtype=np.float32)
    return reduced


def _border(length: int) -> int:
    """Reflection without repeating the edge (numpy's "reflect"), or the edge repeated for planes too
    short to reflect a whole window radius."""
    return cv2.BORDER_REFLECT_101 if length > WINDOW_RADIUS else cv2.BORDER_REPLICATE


def _gaussian(plane: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    """The 11 x 11 Gaussian window (sigma 1.5), separably, reflected at the border (float32 or float64,
    kept). Two 1-D passes, so each axis gets its own border rule."""
    taps = _TAPS.astype(plane.dtype)
    across = cv2.filter2D(plane, -1, taps[None, :], borderType=_border(plane.shape[1]))
    return cast(NDArray[np.floating[Any]], cv2.filter2D(across, -1, taps[:, None], borderType=_border(plane.shape[0])))


def _window_max(plane: F32) -> F32:
    """The maximum over the (2r+1) x (2r+1) window around each pixel (pixels outside the plane do not
    count: reflected ones are inside the window already)."""
    side = 2 * WINDOW_RADIUS + 1
    return cast(F32, cv2.dilate(plane, np.ones((side, side), np.uint8)))


def _ssim_map(x_in: F32, y_in: F32) -> F32:
    # float64: variances are differences of large second moments (float32 cancels to ~1e-3 of a level)
    x, y = x_in.astype(np.float64), y_in.astype(np.float64)
    mu_x, mu_y = _gaussian(x), _gaussian(y)
    xx, yy, xy = _gaussian(x * x), _gaussian(y * y), _gaussian(x * y)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (var_x + var_y + SSIM_C2)
    ssim: F32 = np.asarray(numerator / denominator, dtype=np.float32)
    return ssim


__all__ = [
    "STATIC_LEVELS",
    "TemporalQA",
    "TemporalReport",
    "alpha_flicker",
    "ssim_factor",
    "static_mask",
    "static_region_ssim",
    "write_contact_sheet",
]
