"""Local person matting: MediaPipe selfie segmentation, refined by a guided filter, for stills and video.

The model is MediaPipe's selfie-segmentation network, shipped inside the ``mediapipe`` wheel (no
download at run time). It is small and fast but coarse: it sees the frame at 256x256 (general model)
or 256x144 (landscape model) and returns a soft person probability. Everything else here turns that
coarse probability into a matte that is good enough to put the person over a new background:

* :func:`refine_alpha`: a fast guided filter (He et al.; linear coefficients solved at a small working
  resolution, applied at full resolution) makes the matte edge follow the edges of the frame itself
  (hair, shoulders), then a smoothstep curve makes the inside solid 255 and the background solid 0.
* :func:`matte_video`: the model runs on every Nth frame only; the frames between two keyframes get
  both keyframe masks warped to them by dense optical flow (DIS, at the working resolution) and
  blended by time distance, then a motion-adaptive EMA removes the remaining flicker, then each frame
  is refined at full resolution against its own pixels. The refined edge follows the pixels so
  closely that codec noise makes it shimmer; where the source did not move since the previous frame,
  small changes of the refined matte are therefore averaged over time (see :class:`_Applier`).
* :func:`matte_stream`: the same, on frames an ffmpeg command writes to a pipe as raw yuv420p (already
  upright, sized and at the wanted rate), for callers that decode with their own filter chain. Both
  feed one matting loop (:func:`_matte_frames`) from a frame source: PyAV in-process or the pipe.

The guide of the filter is the frame in YUV. The filter is invariant to a linear change of the guide's
colour space (up to its regularisation), so a video frame's decoded Y, U and V planes serve directly,
with chroma at its own (half) resolution: no full-resolution RGB conversion is ever made for video.

Mattes are 8-bit: 0 is background, 255 is the person. Video mattes are in display orientation (a
display matrix is applied as ffmpeg's autorotate does), one matte frame per decoded source frame.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import os
import queue
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol, cast

import av
import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from shared.errors import InvalidInputError, MediaError
from shared.media.ffmpeg import BASE_ARGS, ffmpeg_exe, wait_for_exit
from shared.storage.tasks import ResourceUsage

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]
ModelChoice = Literal["auto", "general", "landscape"]

# --- model ---------------------------------------------------------------------------------------
GENERAL_INPUT = (256, 256)  # (width, height) the general model sees
LANDSCAPE_INPUT = (256, 144)  # (width, height) the landscape model sees
# "auto" picks the landscape model from this width/height ratio up. Measured on the P3M portraits:
# the general model is better on square and portrait (9:16) frames, the landscape one on 3:2 and wider
# frames, where the general model, squeezing the frame into a square, sometimes loses half the person.
LANDSCAPE_FROM_ASPECT = 1.2

# A second look (see _second_look): on a frame this elongated or more, the model runs again on an
# undistorted square around the person, found in the first pass, and the two masks are blended there.
# On the P3M portraits it lifts the mean IoU from 0.963 to 0.969 (MAD 13.5 -> 11.8 x1e-3); on video it
# stops the landscape model from gluing a wall of hair colour to the top of a head.
REFOCUS_FROM_ASPECT = 1.2
REFOCUS_MARGIN = 0.1  # of the square's side, kept above the top of the person
REFOCUS_FEATHER = 0.08  # of the side: the second look fades out towards square edges inside the frame
REFOCUS_WEIGHT = 0.75  # weight of the second look (0.5 left part of that wall, 1 failed portraits)
REFOCUS_EVIDENCE = 0.3  # the second look adds fully only where the first saw this much person
REFOCUS_HOLD = 0.1  # of the side: in video, the square moves only when the person moved this far

# --- refinement (tuned on the P3M portraits; see refine_alpha) ---------------------------------------
WORK_LONG_SIDE = 256  # long side of the grid masks, flow and guided-filter coefficients live on
RADIUS_FRACTION = 1 / 32  # guided-filter radius, as a fraction of the working long side
GUIDE_EPS = 3e-4  # regularisation (guide in 0..1): small, so the edge snaps to image edges
MASK_LOW, MASK_HIGH = 0.2, 0.8  # model probability stretched to 0..1 before filtering
CURVE_LOW, CURVE_HIGH = 0.3, 0.7  # filtered value mapped by smoothstep: below is 0, above is 255
CONFIDENT_BG, CONFIDENT_FG = 0.02, 0.98  # far from any edge the matte is forced to 0 or 255

# --- video -------------------------------------------------------------------------------------------
EMA_BASE_WEIGHT = 0.5  # weight of the new mask where it agrees with the running mask (flicker)
EMA_MOTION_GAIN = 4.0  # ... rising to 1 where they differ by 1/(gain) or more (motion: no lag)
# Full-resolution temporal filter (see _Applier): where the source did not move, the refined matte is
# averaged over time; measured on the sample clips it halves the flicker of talking heads, which comes
# mostly from codec noise in the edge band, not from the model (see benchmarks/matting_quality.py).
STILL_LEVELS = 8  # working-grid luma change (of 255) up to which a block of the frame counts as still
STILL_REACH = 1  # ... and its neighbours within this many working-grid pixels must be still too
STILL_WEIGHT = 0.1  # weight of the new matte in still blocks (an EMA with a ~10-frame time constant)
STILL_NOISE = 32  # ... for changes up to this many levels (before the curve): noise is mostly below
STILL_RAMP = 64  # ... the weight then rises linearly to 1 over this many more: big changes are real
X264_PRESET = "ultrafast"
X264_CRF = 12  # near-lossless for a matte (measured: max error 4 levels, mean 0.004 with ultrafast)
_PLANAR_YUV = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}
_WRITE_QUEUE = 4  # frames waiting for the full-resolution pass (bounded memory, overlapped work)
_STDERR_LINES = 50
_READ_AHEAD = 3  # raw frames the pipe reader may hold ahead of the matting

# smoothstep on 0..255: the "gentle contrast curve", as a table applied to the uint8 result
_LEVELS = np.arange(256) / 255.0
_SMOOTHSTEP = np.round(255 * _LEVELS * _LEVELS * (3 - 2 * _LEVELS)).astype(np.uint8)
# the temporal filter: how far a change of the matte is pulled back towards the previous frame's
# value, by the size of the change (see _Applier): all of it but STILL_WEIGHT when small, none when big
_CHANGE = np.arange(256)
_STILL_PULL = (
    _CHANGE
    - np.round(_CHANGE * np.minimum(1.0, STILL_WEIGHT + np.maximum(0, _CHANGE - STILL_NOISE) / STILL_RAMP))
).astype(np.uint8)


# =====================================================================================================
# Segmentation
# =====================================================================================================


class PersonSegmenter:
    """MediaPipe selfie segmentation: an RGB frame in, a soft person mask (float32, 0..1) out.

    ``model`` is ``"general"`` (256x256 input), ``"landscape"`` (256x144 input) or ``"auto"`` (chosen
    per frame from its aspect ratio; each model is loaded once, on first use). The frame is resized
    (stretched) to the model's input here, which is much cheaper than handing MediaPipe a full-size
    frame. Not thread-safe: use one segmenter per thread. Close it (or use it as a context manager) to
    free the MediaPipe graphs.
    """

    def __init__(self, model: ModelChoice = "auto") -> None:
        if model not in ("auto", "general", "landscape"):
            raise ValueError(f"model must be 'auto', 'general' or 'landscape', not {model!r}")
        self._choice: ModelChoice = model
        self._graphs: dict[int, Any] = {}
        self._closed = False

    def model_for(self, width: int, height: int) -> Literal["general", "landscape"]:
        """The model that segments a frame of this size."""
        if self._choice != "auto":
            return self._choice
        return "landscape" if width >= LANDSCAPE_FROM_ASPECT * height else "general"

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the model input has for a frame of this size."""
        return LANDSCAPE_INPUT if self.model_for(width, height) == "landscape" else GENERAL_INPUT

    def __call__(self, rgb: U8) -> F32:
        """The person mask of ``rgb`` (H x W x 3, uint8) at the frame's size: float32, 0..1."""
        return self.segment(rgb, (rgb.shape[1], rgb.shape[0]))

    def segment(
        self, rgb: U8, size: tuple[int, int] | None = None, *, model: Literal["general", "landscape"] | None = None
    ) -> F32:
        """The person mask resized (bilinear) to ``size`` = (width, height); the model's size if None.

        ``rgb`` may already be the model input (see :meth:`input_size`); it is then used as it is.
        ``model`` overrides the choice made at construction for this call.
        """
        if self._closed:
            raise RuntimeError("PersonSegmenter is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        model = model or self.model_for(width, height)
        model_size = LANDSCAPE_INPUT if model == "landscape" else GENERAL_INPUT
        if (width, height) != model_size:
            rgb = _u8(cv2.resize(rgb, model_size, interpolation=cv2.INTER_AREA))
        result = self._graph(1 if model == "landscape" else 0).process(np.ascontiguousarray(rgb))
        # a copy: the array is a read-only view into MediaPipe's output packet
        mask = np.array(result.segmentation_mask, dtype=np.float32)
        if size is not None and size != model_size:
            mask = _f32(cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR))
        return np.clip(mask, 0.0, 1.0, out=mask)

    def _graph(self, selection: int) -> Any:
        graph = self._graphs.get(selection)
        if graph is None:
            # imported here: mediapipe takes ~1.5 s to import (it pulls in matplotlib)
            from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

            graph = SelfieSegmentation(model_selection=selection)
            self._graphs[selection] = graph
        return graph

    def close(self) -> None:
        """Free the MediaPipe graphs. Idempotent."""
        self._closed = True
        graphs, self._graphs = self._graphs, {}
        for graph in graphs.values():
            graph.close()

    def __enter__(self) -> PersonSegmenter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# =====================================================================================================
# Refinement
# =====================================================================================================


def work_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the working grid for a frame: long side WORK_LONG_SIDE, never enlarged."""
    scale = min(1.0, WORK_LONG_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def refine_alpha(mask: NDArray[Any], guide_rgb: U8) -> U8:
    """Refine a coarse person mask against its frame: an 8-bit alpha the size of ``guide_rgb``.

    ``mask`` is the model's probability at any resolution (float 0..1, or uint8 0..255);
    ``guide_rgb`` is the frame (H x W x 3 uint8). A guided filter solved on a small working grid (long
    side 256) with the frame as a colour guide moves the soft mask edge onto the frame's own edges, without
    the dark or light halo of a plain blur/threshold; a smoothstep curve then makes the inside solid 255
    and the background solid 0, leaving a soft band of a few pixels at the edge.
    """
    if guide_rgb.ndim != 3 or guide_rgb.shape[2] != 3 or guide_rgb.dtype != np.uint8:
        raise ValueError(f"guide_rgb must be an H x W x 3 uint8 array, got {guide_rgb.dtype} {guide_rgb.shape}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    height, width = guide_rgb.shape[:2]
    probability = mask.astype(np.float32) / 255.0 if mask.dtype == np.uint8 else mask.astype(np.float32)
    yuv = cv2.cvtColor(guide_rgb, cv2.COLOR_RGB2YUV)
    size = work_size(width, height)
    small = cv2.split(cv2.resize(yuv, size, interpolation=cv2.INTER_AREA))
    guide = _guide(_u8(small[0]), _u8(small[1]), _u8(small[2]))
    luma, chroma = _coefficients(guide, _f32(cv2.resize(probability, size, interpolation=cv2.INTER_LINEAR)))
    y, u, v = cv2.split(yuv)
    return _Applier()(luma, chroma, _u8(y), _u8(u), _u8(v))


Guide = tuple[F32, F32, F32]  # Y, U, V on the working grid, float32 0..1, each contiguous
Planes = tuple[U8, U8, U8]  # Y, U, V of one frame as decoded (chroma at its own resolution)


def _guide(y: U8, u: U8, v: U8) -> Guide:
    scale = np.float32(1 / 255)
    return y * scale, u * scale, v * scale


def _coefficients(guide: Guide, probability: F32) -> tuple[F32, F32]:
    """Guided-filter coefficients on the working grid, with the output curve folded in.

    Returns ``a_y`` (h x w) and ``[a_u, a_v, b]`` (h x w x 3); the matte at full resolution is
    ``a_y*Y + a_u*U + a_v*V + b`` (planes in 0..255) saturated to 0..255 and passed through the
    smoothstep table: see :class:`_Applier`.
    """
    height, width = probability.shape
    radius = max(1, round(max(width, height) * RADIUS_FRACTION))
    ksize = (2 * radius + 1, 2 * radius + 1)
    p = np.clip((probability - np.float32(MASK_LOW)) * np.float32(1 / (MASK_HIGH - MASK_LOW)), 0.0, 1.0)
    y, u, v = guide

    def mean(plane: F32) -> F32:
        # plane by plane: the arithmetic below then runs on contiguous arrays, 3 to 4 times faster than
        # on the strided channels of one interleaved image (measured: _coefficients 4.5 -> 2.8 ms, 144x256)
        return _f32(cv2.boxFilter(plane, -1, ksize, borderType=cv2.BORDER_REFLECT))

    my, mu, mv, mp = mean(y), mean(u), mean(v), mean(p)
    myp, mup, mvp = mean(y * p), mean(u * p), mean(v * p)
    myy, myu, myv, muu, muv, mvv = mean(y * y), mean(y * u), mean(y * v), mean(u * u), mean(u * v), mean(v * v)
    cy = myp - my * mp  # cov(I, p)
    cu = mup - mu * mp
    cv_ = mvp - mv * mp
    eps = np.float32(GUIDE_EPS)
    syy = myy - my * my + eps  # cov(I) + eps * identity
    syu = myu - my * mu
    syv = myv - my * mv
    suu = muu - mu * mu + eps
    suv = muv - mu * mv
    svv = mvv - mv * mv + eps
    # a = (cov(I) + eps)^-1 cov(I, p), by the adjugate of the symmetric 3x3 matrix
    iyy: F32 = suu * svv - suv * suv
    iyu: F32 = suv * syv - syu * svv
    iyv: F32 = syu * suv - suu * syv
    iuu: F32 = syy * svv - syv * syv
    iuv: F32 = syv * syu - syy * suv
    ivv: F32 = syy * suu - syu * syu
    inv_det = np.float32(1) / (syy * iyy + syu * iyu + syv * iyv)
    a_y = (iyy * cy + iyu * cu + iyv * cv_) * inv_det
    a_u = (iyu * cy + iuu * cu + iuv * cv_) * inv_det
    a_v = (iyv * cy + iuv * cu + ivv * cv_) * inv_det
    b = mp - a_y * my - a_u * mu - a_v * mv
    a_y, a_u, a_v, b = mean(a_y), mean(a_u), mean(a_v), mean(b)

    # Far from any edge of the mask, pin the matte to 0 or 1: with a small eps the filter otherwise
    # amplifies faint model noise into specks where the background has texture.
    reach = max(1, radius // 2)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    background = cv2.dilate(p, kernel) < CONFIDENT_BG
    foreground = cv2.erode(p, kernel) > CONFIDENT_FG
    pinned = background | foreground
    for plane in (a_y, a_u, a_v):
        plane[pinned] = 0.0
    b[background] = 0.0
    b[foreground] = 1.0

    # Fold the linear part of the curve (CURVE_LOW..CURVE_HIGH -> 0..255) and the planes' 0..255 scale
    # into the coefficients, so the full-resolution pass is one multiply-add per plane.
    gain = np.float32(255.0 / (CURVE_HIGH - CURVE_LOW))
    per_level = gain / np.float32(255.0)
    chroma = cv2.merge([a_u * per_level, a_v * per_level, (b - np.float32(CURVE_LOW)) * gain])
    return _f32(a_y * per_level), _f32(chroma)


class _Applier:
    """The full-resolution pass: coefficients upsampled (bilinear) and applied to the Y, U, V planes.

    Its float32 work planes are allocated once and reused: fresh full-size temporaries every frame cost
    more in page faults than the arithmetic done in them.

    For video it is also a temporal filter. In the soft band along the outline the matte is a steep
    function of the pixels (that is what makes it follow hair), so codec noise in a frame that did not
    move makes the outline shimmer. Given ``still`` (working-grid mask, 255 where the source did not
    change since the previous frame), the value before the output curve moves only part of the way
    from the previous frame's towards the new one there: STILL_WEIGHT of a small change (noise), more
    of a larger one, all of a change over STILL_NOISE + STILL_RAMP levels (a keyframe correcting the
    mask: held back, it would linger as a fading patch). Where the source moved the new value is used
    as it is, so real motion does not lag. With ``temporal=True`` frames must come in order, one
    applier per video.
    """

    def __init__(self, *, temporal: bool = False) -> None:
        self._buffers: dict[str, NDArray[Any]] = {}
        self._temporal = temporal
        self._previous: U8 | None = None  # the last frame's value before the curve

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: type[np.generic]) -> NDArray[Any]:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(shape, dtype)
        return buffer

    def __call__(self, luma: F32, chroma: F32, y: U8, u: U8, v: U8, still: U8 | None = None) -> U8:
        """The matte (a new array). U and V may be subsampled (4:2:0 video): their terms are summed at
        chroma resolution and only the sum is upsampled, which equals upsampling U and V first.
        ``still``: see the class; None: no smoothing for this frame."""
        height, width = y.shape
        chroma_height, chroma_width = u.shape
        full = (width, height)
        linear = cv2.INTER_LINEAR
        total = self._buffer("total", (height, width), np.float32)
        if (chroma_width, chroma_height) != full:
            small = (chroma_height, chroma_width)
            at_chroma = self._buffer("at_chroma", (*small, 3), np.float32)
            cv2.resize(chroma, (chroma_width, chroma_height), dst=at_chroma, interpolation=linear)
            sum_ = self._buffer("sum", small, np.float32)
            product = self._buffer("chroma_product", small, np.float32)
            cv2.multiply(at_chroma[..., 0], u, dst=sum_, dtype=cv2.CV_32F)
            cv2.multiply(at_chroma[..., 1], v, dst=product, dtype=cv2.CV_32F)
            cv2.add(sum_, product, dst=sum_)
            cv2.add(sum_, at_chroma[..., 2], dst=sum_)
            cv2.resize(sum_, full, dst=total, interpolation=linear)
        else:
            # plane by plane: a 24 MP still would need ~400 MB for all of them upsampled at once
            a_u, a_v, b = cv2.split(chroma)
            cv2.resize(b, full, dst=total, interpolation=linear)
            for coefficient, plane in ((a_u, u), (a_v, v)):
                self._add_product(total, _f32(coefficient), plane)
        upsampled = self._buffer("upsampled", (height, width), np.float32)
        cv2.resize(luma, full, dst=upsampled, interpolation=linear)
        cv2.multiply(upsampled, y, dst=upsampled, dtype=cv2.CV_32F)
        linear_alpha = self._buffer("linear_alpha", (height, width), np.uint8)
        cv2.add(upsampled, total, dst=linear_alpha, dtype=cv2.CV_8U)  # rounds and saturates to 0..255
        if self._temporal:
            if still is not None and self._previous is not None:
                self._smooth_still(linear_alpha, self._previous, still)
            self._previous = self._buffer("previous", (height, width), np.uint8)
            np.copyto(self._previous, linear_alpha)
        alpha = np.empty((height, width), np.uint8)  # new: the caller may keep it
        return _u8(cv2.LUT(linear_alpha, _SMOOTHSTEP, dst=alpha))

    def _smooth_still(self, alpha: U8, previous: U8, still: U8) -> None:
        """Where ``still`` (upsampled), move ``alpha`` back towards ``previous`` by r = _STILL_PULL[|alpha
        - previous|]. As r <= |alpha - previous| that is the median of alpha - r, alpha + r and previous:
        max(alpha - r, min(alpha + r, previous)), a few 8-bit passes with no sign to track. The table's
        rounding leaves changes of 5 levels or less where they were (noise, in a still block); 0 and
        255 (the pinned inside and outside) stay exact."""
        height, width = alpha.shape
        pull = self._buffer("pull", (height, width), np.uint8)
        towards = self._buffer("towards", (height, width), np.uint8)
        cv2.resize(still, (width, height), dst=towards, interpolation=cv2.INTER_NEAREST)
        cv2.absdiff(alpha, previous, dst=pull)
        cv2.bitwise_and(pull, towards, dst=pull)  # 0 where the source moved: no pull
        cv2.LUT(pull, _STILL_PULL, dst=pull)
        cv2.add(alpha, pull, dst=towards)
        cv2.min(towards, previous, dst=towards)
        cv2.subtract(alpha, pull, dst=alpha)
        cv2.max(alpha, towards, dst=alpha)

    def _add_product(self, total: F32, coefficient: F32, plane: U8) -> None:
        """total += upsampled(coefficient) * plane."""
        upsampled = self._buffer("upsampled", total.shape, np.float32)
        cv2.resize(coefficient, (total.shape[1], total.shape[0]), dst=upsampled, interpolation=cv2.INTER_LINEAR)
        cv2.multiply(upsampled, plane, dst=upsampled, dtype=cv2.CV_32F)
        cv2.add(total, upsampled, dst=total)


def _u8(array: Any) -> U8:
    """Typing only: OpenCV's stubs return a generic array."""
    return cast(U8, array)


def _f32(array: Any) -> F32:
    """Typing only: OpenCV's stubs return a generic array."""
    return cast(F32, array)


# =====================================================================================================
# Stills
# =====================================================================================================


def matte_image(src: Path, dst_png: Path, *, segmenter: PersonSegmenter | None = None) -> None:
    """Write the person matte of the image ``src`` to ``dst_png``: an 8-bit grayscale PNG.

    The PNG has the size of the image as displayed (its EXIF orientation applied). Pass ``segmenter``
    to reuse a loaded model across many images. Raises InvalidInputError when ``src`` is not an image.
    """
    try:
        with Image.open(src) as image:
            upright = ImageOps.exif_transpose(image)
            rgb = np.asarray(upright.convert("RGB"))
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError(f"{src.name} is not a readable image ({exc}).", code="INPUT_NOT_IMAGE") from exc
    alpha = matte_rgb(rgb, segmenter=segmenter)
    dst_png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(alpha).save(dst_png, format="PNG")  # 2-D uint8: mode "L"


def matte_rgb(rgb: U8, *, segmenter: PersonSegmenter | None = None) -> U8:
    """The person matte of an upright RGB image (H x W x 3 uint8): 8-bit alpha, H x W.

    What :func:`matte_image` writes, in memory. Pass ``segmenter`` to reuse a loaded model.
    """
    if segmenter is None:
        with PersonSegmenter() as own:
            return matte_rgb(rgb, segmenter=own)
    height, width = rgb.shape[:2]
    first = segmenter.segment(rgb, work_size(width, height))

    def crop(box: tuple[int, int, int]) -> U8:
        left, top, side = box
        return _shrink(rgb[top : top + side, left : left + side], GENERAL_INPUT)

    return refine_alpha(_second_look(first, (width, height), crop, segmenter)[0], rgb)


def _second_look(
    first: F32,
    frame_size: tuple[int, int],
    crop_rgb: Callable[[tuple[int, int, int]], U8],
    segmenter: PersonSegmenter,
    *,
    hold: tuple[int, int, int] | None = None,
) -> tuple[F32, tuple[int, int, int] | None]:
    """``first`` (the model's mask on a grid covering the frame) blended with a second look at the person.

    The model sees a frame squeezed into its square (or 16:9) input: a 16:9 frame's person is small
    and a 9:16 frame's head is flattened. On a frame elongated by REFOCUS_FROM_ASPECT or more, the
    general model runs again on an undistorted square (the frame's short side) around the largest
    person blob of ``first``, from REFOCUS_MARGIN above its top; its mask takes REFOCUS_WEIGHT inside
    the square, fading out over REFOCUS_FEATHER towards square edges that lie inside the frame.
    ``crop_rgb((left, top, side))`` returns that square of the frame as the general model's input.

    Returns the mask and the square used. ``hold``: the square of the previous keyframe, kept unless
    the person moved by more than REFOCUS_HOLD of its side (a square that wanders with every
    keyframe makes the second look itself flicker).
    """
    box = _refocus_box(first, frame_size)
    if box is None:
        return first, None
    if hold is not None and max(abs(box[0] - hold[0]), abs(box[1] - hold[1])) <= REFOCUS_HOLD * box[2]:
        box = hold
    left, top, side = box
    width, height = frame_size
    grid_height, grid_width = first.shape
    rows = slice(round(top * grid_height / height), round((top + side) * grid_height / height))
    cols = slice(round(left * grid_width / width), round((left + side) * grid_width / width))
    region = first[rows, cols]
    second = segmenter.segment(crop_rgb(box), (region.shape[1], region.shape[0]), model="general")
    reach = max(1, round(REFOCUS_FEATHER * region.shape[0]))
    ramp = np.linspace(0.0, 1.0, reach + 1, dtype=np.float32)[1:]
    fade_y = np.ones(region.shape[0], np.float32)
    fade_x = np.ones(region.shape[1], np.float32)
    if top > 0:
        fade_y[:reach] = ramp
    if top + side < height:
        fade_y[-reach:] = np.minimum(fade_y[-reach:], ramp[::-1])
    if left > 0:
        fade_x[:reach] = ramp
    if left + side < width:
        fade_x[-reach:] = np.minimum(fade_x[-reach:], ramp[::-1])
    weight = np.float32(REFOCUS_WEIGHT) * fade_y[:, None] * fade_x[None, :]
    change = second - region
    # the general model sees background as person more readily (it is not made for wide frames): it
    # may add only where the first look saw some person, in proportion
    adding = change > 0
    weight = np.where(adding, weight * np.minimum(region * np.float32(1 / REFOCUS_EVIDENCE), 1.0), weight)
    blended = first.copy()
    blended[rows, cols] = region + weight * change
    return blended, box


def _refocus_box(first: F32, frame_size: tuple[int, int]) -> tuple[int, int, int] | None:
    """(left, top, side) in frame pixels of the square for :func:`_second_look`, or None for none."""
    width, height = frame_size
    side = min(width, height)
    if max(width, height) < REFOCUS_FROM_ASPECT * side:
        return None  # the first look already saw the frame undistorted
    count, _, stats, _ = cv2.connectedComponentsWithStats((first > 0.5).astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    blob_left, blob_top, blob_width = (int(value) for value in stats[largest, :3])
    grid_height, grid_width = first.shape
    centre = (blob_left + blob_width / 2) * width / grid_width
    left = int(np.clip(round(centre - side / 2), 0, width - side))
    top = int(np.clip(round(blob_top * height / grid_height - REFOCUS_MARGIN * side), 0, height - side))
    return left, top, side


def _crop_rgb(frame: _Frame, box: tuple[int, int, int], size: tuple[int, int]) -> U8:
    """The square ``box`` = (left, top, side) of a frame, as RGB at ``size``."""
    y, u, v = frame.y, frame.u, frame.v
    left, top, side = box
    scale_y, scale_x = u.shape[0] / y.shape[0], u.shape[1] / y.shape[1]
    chroma_rows = slice(int(top * scale_y), max(int(top * scale_y) + 1, round((top + side) * scale_y)))
    chroma_cols = slice(int(left * scale_x), max(int(left * scale_x) + 1, round((left + side) * scale_x)))
    luma, u, v = y[top : top + side, left : left + side], u[chroma_rows, chroma_cols], v[chroma_rows, chroma_cols]
    return _i420_to_rgb(luma, u, v, size, full_range=frame.full_range)


# =====================================================================================================
# Any file
# =====================================================================================================

_FRAME_NAME = re.compile(r"\d{4,}\.png")


@dataclass(frozen=True)
class MatteResult:
    """What :func:`matte_file` wrote: an image's alpha PNG or a video's matte (PNG folder or mp4)."""

    kind: Literal["image", "video"]
    path: Path
    width: int
    height: int
    frames: int  # 1 for an image
    keyframes: int  # frames the model ran on
    seconds: float


def matte_file(
    src: Path,
    dst: Path,
    *,
    video_output: Literal["png", "mp4"] | None = None,
    keyframe_interval: int = 5,
    progress: Callable[[float], None] | None = None,
    cancelled: threading.Event | None = None,
) -> MatteResult:
    """Matte the person in an image or a video file, whichever ``src`` is.

    An image (anything Pillow opens) gives an 8-bit alpha PNG at ``dst`` with the size of the image
    as displayed (:func:`matte_image`). A video gives, by default or with ``video_output="png"``, a
    folder ``dst`` of 0001.png, 0002.png, ... one per source frame at the source size; with
    ``video_output="mp4"`` a grayscale matte video at ``dst`` (:func:`matte_video`). An existing
    folder is used only if it is empty or holds only numbered PNGs (an earlier matte, replaced).

    Raises InvalidInputError: INPUT_NOT_FOUND, INPUT_NOT_MEDIA (neither an image nor a video),
    INVALID_OPTION (``video_output="mp4"`` for an image, ``keyframe_interval`` < 1), OUTPUT_NOT_EMPTY
    (``dst`` is a folder with other files), OUTPUT_IS_FOLDER / OUTPUT_IS_FILE (``dst`` is the other
    kind of thing than the matte); MediaError when decoding or encoding fails.
    """
    if keyframe_interval < 1:
        raise InvalidInputError(f"The keyframe interval must be 1 or more, not {keyframe_interval}.",
                                code="INVALID_OPTION")  # fmt: skip
    if not src.is_file():
        raise InvalidInputError(f"{src} does not exist or is not a file.", code="INPUT_NOT_FOUND")
    started = time.perf_counter()
    size = _image_size(src)
    if size is not None:
        if video_output == "mp4":
            raise InvalidInputError(f"{src.name} is an image: its matte is a PNG (mp4 is for videos).",
                                    code="INVALID_OPTION")  # fmt: skip
        _check_file_output(dst)
        partial = dst.with_name(f".{dst.name}.{os.getpid()}.partial.png")
        try:
            matte_image(src, partial)
            os.replace(partial, dst)
        finally:
            partial.unlink(missing_ok=True)
        if progress is not None:
            progress(1.0)
        return MatteResult("image", dst, size[0], size[1], 1, 1, time.perf_counter() - started)
    output = video_output or "png"
    if output == "png":
        _prepare_frame_folder(dst)
    else:
        _check_file_output(dst)
    try:
        stats = matte_video(
            src, dst, keyframe_interval=keyframe_interval, output=output, progress=progress, cancelled=cancelled
        )
    except InvalidInputError as exc:
        if exc.code != "INPUT_NOT_VIDEO":
            raise
        raise InvalidInputError(f"{src.name} is neither an image nor a video that can be read.",
                                code="INPUT_NOT_MEDIA") from exc  # fmt: skip
    width, height = _first_frame_size(dst, output)
    return MatteResult("video", dst, width, height, stats.frames, stats.keyframes, stats.seconds)


def _image_size(src: Path) -> tuple[int, int] | None:
    """(width, height) as displayed when Pillow reads ``src`` as an image, else None."""
    try:
        with Image.open(src) as image:
            turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientations that swap sides
            return (image.height, image.width) if turned else (image.width, image.height)
    except (UnidentifiedImageError, OSError):
        return None


def _check_file_output(dst: Path) -> None:
    if dst.is_dir():
        raise InvalidInputError(f"{dst} is a folder; the matte is a single file there.", code="OUTPUT_IS_FOLDER")


def _prepare_frame_folder(dst: Path) -> None:
    if dst.exists() and not dst.is_dir():
        raise InvalidInputError(f"{dst} is a file; a video's PNG matte is a folder.", code="OUTPUT_IS_FILE")
    if not dst.is_dir():
        return
    entries = list(dst.iterdir())
    others = [entry.name for entry in entries if not (entry.is_file() and _FRAME_NAME.fullmatch(entry.name))]
    if others:
        raise InvalidInputError(
            f"{dst} holds other files ({', '.join(sorted(others)[:3])}); choose an empty or new folder.",
            code="OUTPUT_NOT_EMPTY",
        )
    for entry in entries:  # the frames of an earlier matte: a shorter video must not leave any behind
        entry.unlink()


def _first_frame_size(dst: Path, output: Literal["png", "mp4"]) -> tuple[int, int]:
    if output == "png":
        with Image.open(dst / "0001.png") as first:
            return first.size
    with av.open(str(dst)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


# =====================================================================================================
# Video
# =====================================================================================================


@dataclass(frozen=True)
class MatteStats:
    """What :func:`matte_video` / :func:`matte_stream` did: frames written, model runs, wall seconds, speed."""

    frames: int
    keyframes: int
    seconds: float
    fps_processed: float


@dataclass
class _Frame:
    """One decoded frame: upright full-resolution planes, its working-grid data and its model input."""

    index: int
    y: U8
    u: U8  # U and V at the source's chroma resolution (half size for 4:2:0)
    v: U8
    guide: Guide  # working grid, YUV 0..1
    gray: U8  # working grid luma, for optical flow
    model_rgb: Callable[[], U8]  # the model input (RGB at the model's size, upright); keyframes only
    full_range: bool = False  # Y, U, V in 0..255 (JPEG-style) rather than limited range
    decoded: Planes | None = None  # the planes as decoded, when the matte is made at a smaller size


@dataclass(frozen=True)
class _Key:
    """What is kept of a keyframe once it is written: its luma and mask on the working grid."""

    index: int
    gray: U8
    mask: F32


class _FrameSource(Protocol):
    """Where the frames of a video come from: a PyAV decoder (:class:`_AvSource`) or a raw yuv420p pipe
    from an ffmpeg child (:class:`_PipeSource`). Everything after (model, flow, smoothing, refinement,
    writing) is the same code for both: :func:`_matte_frames`."""

    size: tuple[int, int]  # (width, height) of the upright frames
    rate: Fraction
    expected: int  # frames expected, for progress only (0: unknown)

    @property
    def cpu_seconds(self) -> float:
        """CPU spent outside the matting thread (decoder process, reader thread), once closed."""
        ...

    def frames(self, work: tuple[int, int], model: tuple[int, int]) -> Iterator[_Frame]:
        """The frames in order, with their guide at ``work`` and their model input at ``model`` (w, h)."""
        ...

    def close(self) -> None:
        """Release the decoder (kill the child process). Idempotent; called on success and on error."""
        ...


def matte_video(
    src: Path,
    dst: Path,
    *,
    keyframe_interval: int = 5,
    output: Literal["mp4", "png"] = "mp4",
    progress: Callable[[float], None] | None = None,
    cancelled: threading.Event | None = None,
    model: ModelChoice = "auto",
) -> MatteStats:
    """Matte the person in every frame of the video ``src``, streaming (at most N frames are held).

    ``output="mp4"``: ``dst`` becomes an H.264 video of 8-bit gray (4:0:0, full range, CRF 12; ffmpeg
    and PyAV decode it as yuvj420p whose Y plane is the matte), with the source's size (display
    orientation), frame count and average frame rate. ``output="png"``: ``dst`` is a folder (created)
    of ``0001.png``, ``0002.png``, ... 8-bit grayscale PNGs.

    The model runs on frames 0, N, 2N, ... (N = ``keyframe_interval``) and on the last frame; the frames
    between get both neighbouring keyframe masks warped to them by optical flow and blended by time
    distance. ``progress`` receives fractions 0..1; when ``cancelled`` is set the work stops within a
    frame or so, the partial output is removed and MediaError (code MATTING_CANCELLED) is raised.

    Raises InvalidInputError (INPUT_NOT_VIDEO) when ``src`` has no decodable video frame and MediaError
    (MATTING_FAILED) when decoding or encoding fails midway.
    """
    _check_options(keyframe_interval, output)
    started = time.perf_counter()
    source = _AvSource(src)
    try:
        sink = _file_sink(dst, output, source.size, source.rate)
    except BaseException:
        source.close()
        raise
    return _matte_frames(
        source, sink, keyframe_interval=keyframe_interval, progress=progress, cancelled=cancelled, model=model,
        started=started,
    )


def matte_stream(
    decode_args: list[str],
    width: int,
    height: int,
    fps: float,
    dst: Path,
    *,
    keyframe_interval: int = 5,
    output: Literal["mp4", "png"] = "mp4",
    expected_frames: int | None = None,
    progress: Callable[[float], None] | None = None,
    cancelled: threading.Event | None = None,
    model: ModelChoice = "auto",
    usage: ResourceUsage | None = None,
) -> MatteStats:
    """Matte the frames an ffmpeg command decodes: ``ffmpeg <BASE_ARGS> <decode_args> -f rawvideo
    -pix_fmt yuv420p pipe:1``, read from the pipe (no PyAV), matted exactly as :func:`matte_video` does.

    ``decode_args`` hold the input options and input (``-ss``/``-t``/``-i``) and a ``-vf`` or
    ``-filter_complex`` whose output is upright frames of exactly ``width`` x ``height`` at ``fps``;
    ``dst`` gets one matte frame per frame ffmpeg writes (an mp4 at ``fps``, or a PNG folder; see
    :func:`matte_video`). ``expected_frames`` only scales ``progress``.

    The ffmpeg child is killed when matting fails or is cancelled. Raises MediaError: MATTING_CANCELLED
    (``cancelled`` was set; partial output removed), MATTING_FAILED (ffmpeg exited non-zero, quoting
    its last stderr lines; it wrote no frame; its last frame was cut short; or encoding failed).
    """
    _check_options(keyframe_interval, output)
    rate = Fraction(fps).limit_denominator(10_000)
    return matte_into(
        decode_args, (width, height), fps, _file_sink(dst, output, (width, height), rate),
        keyframe_interval=keyframe_interval, expected_frames=expected_frames, progress=progress,
        cancelled=cancelled, model=model, usage=usage,
    )


def matte_into(
    decode_args: list[str],
    size: tuple[int, int],
    fps: float,
    sink: MatteSink,
    *,
    matte_size: tuple[int, int] | None = None,
    keyframe_interval: int = 5,
    expected_frames: int | None = None,
    progress: Callable[[float], None] | None = None,
    cancelled: threading.Event | None = None,
    model: ModelChoice = "auto",
    usage: ResourceUsage | None = None,
) -> MatteStats:
    """Matte the frames an ffmpeg command decodes (as :func:`matte_stream`) into ``sink``, which gets
    each matte with its frame: how a renderer takes the person layer without a matte file between.

    ``size`` (width, height) is the size ``decode_args`` produce; ``matte_size`` (default ``size``) the
    size the matte is made at: each frame is area-shrunk to it (mattes are soft; half size costs a
    quarter), while ``sink`` still gets the frame's planes at ``size``. Errors as :func:`matte_stream`;
    on any failure ``sink.abort()`` has been called. CPU spent outside the calling thread (decoder,
    encoder, helper threads) is added to ``usage``.
    """
    width, height = size
    matte_size = matte_size or size
    if min(width, height, *matte_size) < 2:
        raise ValueError(f"sizes must be >= 2, got {width}x{height} (matte {matte_size[0]}x{matte_size[1]})")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, not {fps}")
    if keyframe_interval < 1:
        raise ValueError(f"keyframe_interval must be >= 1, not {keyframe_interval}")
    started = time.perf_counter()
    rate = Fraction(fps).limit_denominator(10_000)
    try:
        source = _PipeSource(decode_args, size, rate, expected_frames or 0, matte_size=matte_size)
    except BaseException:
        sink.abort()
        raise
    return _matte_frames(
        source, sink, keyframe_interval=keyframe_interval, progress=progress, cancelled=cancelled, model=model,
        started=started, usage=usage,
    )


def _file_sink(dst: Path, output: Literal["mp4", "png"], size: tuple[int, int], rate: Fraction) -> MatteSink:
    return _FfmpegWriter(dst, size[0], size[1], rate) if output == "mp4" else _PngWriter(dst)


def _check_options(keyframe_interval: int, output: str) -> None:
    if keyframe_interval < 1:
        raise ValueError(f"keyframe_interval must be >= 1, not {keyframe_interval}")
    if output not in ("mp4", "png"):
        raise ValueError(f"output must be 'mp4' or 'png', not {output!r}")


def _matte_frames(
    source: _FrameSource,
    sink: MatteSink,
    *,
    keyframe_interval: int,
    progress: Callable[[float], None] | None,
    cancelled: threading.Event | None,
    model: ModelChoice,
    started: float,
    usage: ResourceUsage | None = None,
) -> MatteStats:
    """The matting loop shared by every frame source; closes ``source``, aborts ``sink`` on failure.

    Adds to ``usage`` (also on failure) the CPU spent outside the calling thread: the decoder and
    encoder processes and the reader and output threads. The caller measures its own thread.
    """
    output = _Output(sink)
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(source.close)
            try:
                width, height = source.size
                segmenter = stack.enter_context(PersonSegmenter(model))
                matter = _VideoMatter(segmenter, source.size, keyframe_interval, output)
                for frame in source.frames(matter.work, segmenter.input_size(width, height)):
                    if cancelled is not None and cancelled.is_set():
                        raise MediaError("Matting was stopped: the task was cancelled.", code="MATTING_CANCELLED")
                    matter.push(frame)
                    if progress is not None and source.expected and frame.index % keyframe_interval == 0:
                        progress(min(0.99, matter.emitted / source.expected))
                matter.flush()
                output.finish()
            except BaseException:
                output.abort()
                raise
    finally:
        if usage is not None:
            usage.cpu_seconds += source.cpu_seconds + output.cpu_seconds + sink.cpu_seconds
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(1.0)
    return MatteStats(
        frames=output.written,
        keyframes=matter.keyframes,
        seconds=seconds,
        fps_processed=output.written / seconds if seconds > 0 else 0.0,
    )


class _VideoMatter:
    """Keyframe segmentation, flow interpolation, temporal smoothing and refinement, frame by frame.

    Frames after a keyframe wait (at most N of them) until the next keyframe has been segmented; then
    they are interpolated, smoothed, refined and written in order.
    """

    def __init__(self, segmenter: PersonSegmenter, size: tuple[int, int], interval: int, output: _Output) -> None:
        self._segmenter = segmenter
        self._size = size
        self._box: tuple[int, int, int] | None = None  # the square of the last second look
        self.work = work_size(*size)
        self._interval = interval
        self._output = output
        self._pending: list[_Frame] = []  # frames after the last keyframe, waiting for the next one
        self._previous: _Key | None = None
        self._smoothed: F32 | None = None
        self._last_gray: U8 | None = None  # working-grid luma of the last frame emitted
        reach = 2 * STILL_REACH + 1
        self._reach = cv2.getStructuringElement(cv2.MORPH_RECT, (reach, reach))
        # DIS: the fastest dense flow in OpenCV; at 256 px the ultrafast preset takes ~0.5 ms a pair
        self._flow = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        grid_x, grid_y = np.meshgrid(np.arange(self.work[0]), np.arange(self.work[1]))
        self._grid = np.dstack([grid_x, grid_y]).astype(np.float32)
        self._flow_buffer = np.zeros_like(self._grid)
        self.emitted = 0  # frames handed to the output
        self.keyframes = 0

    def push(self, frame: _Frame) -> None:
        if frame.index % self._interval == 0:
            self._keyframe(frame)
        else:
            self._pending.append(frame)

    def flush(self) -> None:
        """End of video: the last frame becomes a keyframe, so the tail is interpolated too."""
        if self._pending:
            self._keyframe(self._pending.pop())

    def _keyframe(self, frame: _Frame) -> None:
        first = self._segmenter.segment(frame.model_rgb(), self.work)

        def crop(box: tuple[int, int, int]) -> U8:
            return _crop_rgb(frame, box, GENERAL_INPUT)

        mask, self._box = _second_look(first, self._size, crop, self._segmenter, hold=self._box)
        key = _Key(frame.index, frame.gray, mask)
        self.keyframes += 1
        if self._previous is not None:
            for between in self._pending:
                self._emit(between, self._interpolate(self._previous, key, between))
        self._pending.clear()
        self._emit(frame, key.mask)
        self._previous = key

    def _interpolate(self, before: _Key, after: _Key, frame: _Frame) -> F32:
        """The two keyframe masks, each warped onto ``frame`` by optical flow, blended by time distance."""
        weight = np.float32((frame.index - before.index) / (after.index - before.index))
        from_before = self._warp(before, frame)
        from_after = self._warp(after, frame)
        blended: F32 = from_before + weight * (from_after - from_before)
        return blended

    def _warp(self, key: _Key, frame: _Frame) -> F32:
        # flow from frame to key: frame(x) ~ key(x + flow(x)); sampling the key's mask there aligns it
        flow = self._flow.calc(frame.gray, key.gray, self._flow_buffer)
        no_second_map: Any = None  # the flow-plus-grid map holds both coordinates
        warped = cv2.remap(
            key.mask, self._grid + flow, no_second_map, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return _f32(warped)

    def _emit(self, frame: _Frame, mask: F32) -> None:
        # Motion-adaptive EMA: where the new mask agrees with the running one (model jitter) average
        # them; where they differ a lot (real motion) follow the new mask at once, so edges do not lag.
        if self._smoothed is None:
            smoothed = mask
        else:
            difference = mask - self._smoothed
            weight = np.minimum(np.abs(difference) * np.float32(EMA_MOTION_GAIN) + np.float32(EMA_BASE_WEIGHT), 1.0)
            smoothed = self._smoothed + weight * difference
        self._smoothed = smoothed
        self._output.submit(*_coefficients(frame.guide, smoothed), frame, self._still(frame))
        self.emitted += 1

    def _still(self, frame: _Frame) -> U8 | None:
        """Where the source did not move since the last frame emitted (frames are emitted in order):
        255 where the working-grid luma changed by at most STILL_LEVELS there and around it."""
        last, self._last_gray = self._last_gray, frame.gray
        if last is None:
            return None
        change = cv2.dilate(cv2.absdiff(frame.gray, last), self._reach)
        return _u8(cv2.threshold(change, STILL_LEVELS, 255, cv2.THRESH_BINARY_INV)[1])  # 255 where <=


# --- frames decoded by PyAV --------------------------------------------------------------------------

_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class _AvSource:
    """Frames of a video file decoded in-process by PyAV, turned upright by the first frame's display
    matrix (as ffmpeg's autorotate does). Opening reads the first frame, so a file with no decodable
    frame fails here (InvalidInputError, INPUT_NOT_VIDEO)."""

    def __init__(self, src: Path) -> None:
        self._container = _open_video(src)
        try:
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads: decoding overlaps the matting
            self._decoded = _decode(self._container, stream)
            first = next(self._decoded, None)
            if first is None:
                raise InvalidInputError(f"{src.name} has no decodable video frame.", code="INPUT_NOT_VIDEO")
        except BaseException:
            self._container.close()
            raise
        self._first = first
        rotation = int((-round(first.rotation / 90) * 90) % 360)
        self._turn = _ROTATE.get(rotation)
        self._swap = rotation in (90, 270)  # small images are scaled from the coded frame: sides swap
        self._coded_size = (first.width, first.height)
        self.size = (first.height, first.width) if self._swap else (first.width, first.height)
        self.rate = Fraction(stream.average_rate or stream.guessed_rate or Fraction(30))
        self.expected = _expected_frames(stream, self.rate)

    def frames(self, work: tuple[int, int], model: tuple[int, int]) -> Iterator[_Frame]:
        coded_work, coded_model = self._coded(work), self._coded(model)
        for index, source in enumerate(itertools.chain([self._first], self._decoded)):
            yield self._prepare(index, source, coded_work, coded_model)

    def _coded(self, size: tuple[int, int]) -> tuple[int, int]:
        return (size[1], size[0]) if self._swap else size

    def _prepare(
        self, index: int, source: av.VideoFrame, coded_work: tuple[int, int], coded_model: tuple[int, int]
    ) -> _Frame:
        frame = source
        if frame.format.name not in _PLANAR_YUV or (frame.width, frame.height) != self._coded_size:
            # 10-bit, RGB, ... or a size change midway: one layout and size for the whole matte
            frame = frame.reformat(width=self._coded_size[0], height=self._coded_size[1], format="yuv420p")
        # the working grid by swscale's area filter, all three planes in one call
        small = frame.reformat(width=coded_work[0], height=coded_work[1], format="yuv444p", interpolation="AREA")
        planes = [_plane(frame, i) for i in range(3)]
        small_planes = [_plane(small, i) for i in range(3)]
        if self._turn is not None:
            planes = [_u8(cv2.rotate(plane, self._turn)) for plane in planes]
            small_planes = [_u8(cv2.rotate(plane, self._turn)) for plane in small_planes]
        y, u, v = planes
        gray = np.ascontiguousarray(small_planes[0])
        turn = self._turn

        def model_rgb() -> U8:
            rgb = _u8(
                frame.reformat(width=coded_model[0], height=coded_model[1], format="rgb24", interpolation="AREA")
                .to_ndarray()
            )
            return rgb if turn is None else _u8(cv2.rotate(rgb, turn))

        full_range = frame.format.name.startswith("yuvj") or frame.color_range == 2  # 2: AVCOL_RANGE_JPEG
        return _Frame(index, y, u, v, _guide(*small_planes), gray, model_rgb, full_range)

    @property
    def cpu_seconds(self) -> float:
        return 0.0  # PyAV decodes in this process: its threads are not measured apart

    def close(self) -> None:
        self._container.close()


def _open_video(src: Path) -> av.container.InputContainer:
    if not src.is_file():
        raise InvalidInputError(f"{src.name} does not exist.", code="INPUT_NOT_VIDEO")
    try:
        container = av.open(str(src), mode="r")
    except av.error.FFmpegError as exc:
        raise InvalidInputError(f"{src.name} is not a readable video ({exc}).", code="INPUT_NOT_VIDEO") from exc
    if not container.streams.video:
        container.close()
        raise InvalidInputError(f"{src.name} has no video stream.", code="INPUT_NOT_VIDEO")
    return container


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    count = 0
    try:
        for frame in container.decode(stream):
            yield frame
            count += 1
    except av.error.FFmpegError as exc:
        raise MediaError(f"Decoding failed after {count} frames: {exc}", code="MATTING_FAILED") from exc


def _expected_frames(stream: av.video.stream.VideoStream, rate: Fraction) -> int:
    if stream.frames:
        return int(stream.frames)
    if stream.duration is not None and stream.time_base is not None:
        return max(0, round(float(stream.duration * stream.time_base * rate)))
    return 0


def _plane(frame: av.VideoFrame, index: int) -> U8:
    """A zero-copy view of one plane (the view keeps the frame's buffer alive)."""
    plane = frame.planes[index]
    data = np.frombuffer(cast(Any, plane), dtype=np.uint8, count=plane.line_size * plane.height)
    view: U8 = data.reshape(plane.height, plane.line_size)[:, : plane.width]
    return view


# --- frames from an ffmpeg child, raw yuv420p on a pipe ----------------------------------------------


class _PipeSource:
    """Frames an ffmpeg child decodes and writes to its stdout as raw yuv420p, already upright and sized.

    A reader thread keeps a few frames ahead (ffmpeg decodes and filters on its own cores meanwhile).
    Each frame is read into its own buffer, and the planes are views of it. With a ``matte_size``
    smaller than the decoded ``size``, the frames are matted at ``matte_size`` (``self.size``) and keep
    their decoded planes for the sink. :meth:`close` kills the child if it still runs; a non-zero exit
    is reported (MATTING_FAILED, with ffmpeg's last stderr lines) after the last frame.
    """

    def __init__(
        self,
        decode_args: list[str],
        size: tuple[int, int],
        rate: Fraction,
        expected: int,
        *,
        matte_size: tuple[int, int] | None = None,
    ) -> None:
        self.size = matte_size or size
        self.rate = rate
        self.expected = expected
        self._decoded_size = size
        width, height = size
        chroma = ((width + 1) // 2, (height + 1) // 2)
        self._layout = (width * height, chroma[0] * chroma[1], chroma)
        # -color_range tv: full-range (JPEG-style) sources are converted too, so every frame is BT.601-ish
        # limited range, as the model input conversion (_i420_to_rgb) expects
        command = [
            ffmpeg_exe(), *BASE_ARGS, *decode_args,
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-color_range", "tv", "pipe:1",
        ]  # fmt: skip
        self._child = _Child(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0)
        self._process = self._child.process
        assert self._process.stdout is not None
        self._stdout = self._process.stdout
        self._buffers: queue.Queue[NDArray[np.uint8] | BaseException | None] = queue.Queue(maxsize=_READ_AHEAD)
        self._reader_cpu_seconds = 0.0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="matte-pipe-reader", daemon=True)
        self._reader.start()

    def frames(self, work: tuple[int, int], model: tuple[int, int]) -> Iterator[_Frame]:
        luma_size, chroma_size, (chroma_width, chroma_height) = self._layout
        width, height = self._decoded_size
        shrunk = self.size != self._decoded_size
        matte_chroma = ((self.size[0] + 1) // 2, (self.size[1] + 1) // 2)
        count = 0
        while (item := self._buffers.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            y = item[:luma_size].reshape(height, width)
            u = item[luma_size : luma_size + chroma_size].reshape(chroma_height, chroma_width)
            v = item[luma_size + chroma_size :].reshape(chroma_height, chroma_width)
            decoded: Planes | None = None
            if shrunk:
                decoded = (y, u, v)
                y, u, v = _shrink(y, self.size), _shrink(u, matte_chroma), _shrink(v, matte_chroma)
            small = [_shrink(plane, work) for plane in (y, u, v)]
            model_rgb = functools.partial(_i420_to_rgb, y, u, v, model)
            yield _Frame(count, y, u, v, _guide(*small), small[0], model_rgb, decoded=decoded)
            count += 1
        status = self._child.wait()
        self._child.join_stderr()
        if status != 0:
            raise MediaError(
                f"Decoding for matting failed (ffmpeg exit status {status}):\n{self._stderr_tail()}",
                code="MATTING_FAILED",
                details={"exit_status": status},
            )
        if count == 0:
            raise MediaError(f"ffmpeg decoded no frame:\n{self._stderr_tail()}", code="MATTING_FAILED")

    def _read(self) -> None:
        """Reader thread: whole frames from the pipe into the queue, then None (EOF) or the error."""
        frame_bytes = self._layout[0] + 2 * self._layout[1]
        result: BaseException | None = None
        started = time.thread_time()
        try:
            while not self._stop.is_set():
                buffer = bytearray(frame_bytes)
                got = _read_into(self._stdout, memoryview(buffer))
                if got == 0:
                    break
                if got < frame_bytes:
                    self._child.wait()
                    result = MediaError(
                        f"ffmpeg's last frame was cut short ({got} of {frame_bytes} bytes; exit status "
                        f"{self._process.returncode}):\n{self._stderr_tail()}",
                        code="MATTING_FAILED",
                    )
                    break
                self._put(np.frombuffer(buffer, np.uint8))
        except BaseException as exc:  # handed to the consuming thread
            result = exc
        self._reader_cpu_seconds = time.thread_time() - started
        self._put(result)

    def _put(self, item: NDArray[np.uint8] | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._buffers.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _stderr_tail(self) -> str:
        return self._child.stderr_tail()

    @property
    def cpu_seconds(self) -> float:
        return self._child.cpu_seconds + self._reader_cpu_seconds

    def close(self) -> None:
        self._stop.set()
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        self._child.wait()
        self._reader.join(timeout=5)
        self._child.join_stderr()
        self._stdout.close()


def _read_into(stream: IO[bytes], view: memoryview) -> int:
    """Fill ``view`` from ``stream`` (unbuffered); returns the bytes read (fewer only at end of stream)."""
    raw = cast(io.RawIOBase, stream)
    filled = 0
    while filled < len(view):
        got = raw.readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled


def _shrink(plane: U8, size: tuple[int, int]) -> U8:
    """``plane`` area-resized to ``size`` (width, height): halved while it stays at least ``size``, then one
    area step. OpenCV's area filter is ~6x faster at exactly 1/2 than at a fractional ratio like 1/7.5;
    the result differs from a one-step area resize by about half a level."""
    width, height = size
    while plane.shape[1] // 2 >= width and plane.shape[0] // 2 >= height:
        half = (plane.shape[1] // 2, plane.shape[0] // 2)
        plane = _u8(cv2.resize(plane[: 2 * half[1], : 2 * half[0]], half, interpolation=cv2.INTER_AREA))
    return _u8(cv2.resize(plane, size, interpolation=cv2.INTER_AREA))


def _i420_to_rgb(y: U8, u: U8, v: U8, size: tuple[int, int], *, full_range: bool = False) -> U8:
    """RGB at ``size`` (even sides) from Y, U, V planes (any chroma size): each plane area-resized,
    then BT.601, limited range (the conversion swscale makes for PyAV's ``rgb24``) or full range."""
    width, height = size
    if full_range:  # JPEG-style YCbCr: OpenCV's YCrCb conversion, chroma at full size
        ycrcb = cv2.merge([_shrink(y, size), _shrink(v, size), _shrink(u, size)])
        return _u8(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB))
    planes = [_shrink(y, size), _shrink(u, (width // 2, height // 2)), _shrink(v, (width // 2, height // 2))]
    i420 = np.concatenate([plane.ravel() for plane in planes]).reshape(height * 3 // 2, width)
    return _u8(cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420))


class MatteSink(Protocol):
    """Where finished mattes go, in frame order: a gray video, a PNG folder, or a renderer's person layer.

    ``frame`` is the frame the matte belongs to, as decoded (for :func:`matte_into`: at the decode
    size, which may be larger than the matte's). ``finish`` is called once after the last matte;
    ``abort`` instead when matting fails or is cancelled: it removes what was written.
    """

    def write(self, alpha: U8, frame: Planes) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...

    @property
    def cpu_seconds(self) -> float:
        """CPU the sink spent in processes of its own (an encoder), once finished or aborted."""
        ...



class _PngWriter:
    """Numbered 8-bit grayscale PNGs (0001.png, ...) in a folder."""

    def __init__(self, folder: Path) -> None:
        self._created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._count = 0
        self._written: list[Path] = []

    def write(self, alpha: U8, frame: Planes) -> None:
        self._count += 1
        path = self._folder / f"{self._count:04d}.png"
        # level 1: mattes are mostly flat and compress well even at the fastest setting
        if not cv2.imwrite(str(path), alpha, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise MediaError(f"Could not write {path}.", code="MATTING_FAILED")
        self._written.append(path)

    def finish(self) -> None:
        pass

    @property
    def cpu_seconds(self) -> float:
        return 0.0

    def abort(self) -> None:
        for path in self._written:
            path.unlink(missing_ok=True)
        if self._created:
            with contextlib.suppress(OSError):  # not empty: something else was put there meanwhile
                self._folder.rmdir()


class _FfmpegWriter:
    """Gray frames into ffmpeg's stdin, encoded to H.264 4:0:0; written to a temp name, then renamed."""

    def __init__(self, dst: Path, width: int, height: int, rate: Fraction) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        self._dst = dst
        self._partial = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
        command = [
            ffmpeg_exe(), *BASE_ARGS, "-y",
            "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{width}x{height}",
            "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
            "-an", "-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(X264_CRF),
            "-pix_fmt", "gray", "-color_range", "pc",  # full range: 0 and 255 stay 0 and 255
            "-movflags", "+faststart", "-f", "mp4", str(self._partial),
        ]  # fmt: skip
        self._child = _Child(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self._process = self._child.process
        assert self._process.stdin is not None
        self._stdin = self._process.stdin

    def write(self, alpha: U8, frame: Planes) -> None:
        try:
            self._stdin.write(np.ascontiguousarray(alpha).data)
        except OSError:  # ffmpeg died (BrokenPipeError): its stderr says why
            self._child.wait()
            self._fail()

    @property
    def cpu_seconds(self) -> float:
        return self._child.cpu_seconds

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()
        if self._child.wait() != 0:
            self._fail()
        os.replace(self._partial, self._dst)

    def abort(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        with contextlib.suppress(OSError):
            self._stdin.close()
        self._child.wait()
        self._child.join_stderr()
        self._partial.unlink(missing_ok=True)

    def _fail(self) -> None:
        self._child.join_stderr()
        self._partial.unlink(missing_ok=True)
        tail = self._child.stderr_tail()
        raise MediaError(
            f"Encoding the matte failed (ffmpeg exit status {self._process.returncode}):\n{tail}",
            code="MATTING_FAILED",
        )


class _Output:
    """A worker thread that does the full-resolution pass and hands each matte to the writer, in order.

    Video decoding, the working-grid work (model, flow, filter coefficients) and the full-resolution
    pass then run on separate threads (OpenCV and PyAV release the GIL in their loops), which keeps
    both cores busy. The queue is short, so at most a few frames wait here.
    """

    def __init__(self, writer: MatteSink) -> None:
        self._writer = writer
        self._apply = _Applier(temporal=True)
        self._jobs: queue.Queue[tuple[F32, F32, _Frame, U8 | None] | None] = queue.Queue(maxsize=_WRITE_QUEUE)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self.written = 0
        self.cpu_seconds = 0.0  # of the worker thread, once it has ended
        self._thread = threading.Thread(target=self._run, name="matte-output", daemon=True)
        self._thread.start()

    def submit(self, luma: F32, chroma: F32, frame: _Frame, still: U8 | None) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._jobs.put((luma, chroma, frame, still), timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait for every submitted matte to be written, then finish the writer."""
        self._jobs.put(None)
        self._thread.join()
        self._raise_if_failed()
        self._writer.finish()

    def abort(self) -> None:
        """Stop without writing the rest; the writer removes what it wrote."""
        self._stop.set()
        self._thread.join(timeout=2)  # normally ends after the matte it is writing
        self._writer.abort()  # kills ffmpeg, which also ends a write stuck on a full pipe
        self._thread.join(timeout=10)

    def _run(self) -> None:
        started = time.thread_time()
        try:
            while not self._stop.is_set():
                try:
                    job = self._jobs.get(timeout=0.1)
                except queue.Empty:
                    continue
                if job is None:
                    return
                luma, chroma, frame, still = job
                alpha = self._apply(luma, chroma, frame.y, frame.u, frame.v, still)
                self._writer.write(alpha, frame.decoded or (frame.y, frame.u, frame.v))
                self.written += 1
        except BaseException as exc:  # handed to the producing thread
            self._error = exc
        finally:
            self.cpu_seconds = time.thread_time() - started

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error


class _Child:
    """An ffmpeg child: started, its stderr drained on a thread (the last lines kept for errors), and
    waited for once, from whichever thread gets there first, keeping its CPU seconds."""

    def __init__(self, command: list[str], *, stdin: int, stdout: int, bufsize: int = -1) -> None:
        """Raises MediaError (MATTING_FAILED) when ffmpeg cannot be started."""
        try:
            self.process = subprocess.Popen(
                command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, bufsize=bufsize
            )
        except OSError as exc:
            raise MediaError(f"Could not start ffmpeg: {exc}", code="MATTING_FAILED") from exc
        assert self.process.stderr is not None
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._drainer = threading.Thread(target=_drain, args=(self.process.stderr, self._stderr), daemon=True)
        self._drainer.start()
        self._lock = threading.Lock()
        self.cpu_seconds = 0.0

    def wait(self) -> int:
        with self._lock:
            code, cpu_seconds = wait_for_exit(self.process)
            self.cpu_seconds += cpu_seconds
            return code

    def join_stderr(self) -> None:
        self._drainer.join(timeout=5)

    def stderr_tail(self) -> str:
        return "\n".join(line for line in self._stderr if line.strip()) or "(no error output)"


def _drain(stream: IO[bytes], tail: deque[str]) -> None:
    """Read ffmpeg's stderr to the end (so the pipe never fills), keeping the last lines."""
    for raw in iter(stream.readline, b""):
        tail.append(raw[:1000].decode("utf-8", "replace").rstrip())
    stream.close()


__all__ = [
    "MatteResult",
    "MatteSink",
    "MatteStats",
    "PersonSegmenter",
    "Planes",
    "matte_file",
    "matte_image",
    "matte_into",
    "matte_rgb",
    "matte_stream",
    "matte_video",
    "refine_alpha",
    "work_size",
]
