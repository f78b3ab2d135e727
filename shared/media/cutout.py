"""Cutting a product out of its photo: an 8-bit alpha for people, objects on plain backdrops, and the rest.

Three ways, tried in this order by :func:`cutout_rgb` (``subject="auto"``):

1. **backdrop**: a studio shot on a plain (or gently graded) backdrop. The border of the photo is almost
   all one color; every pixel connected to the border whose color stays close to the border's colors is
   background. That seeds GrabCut (definitely background far from the product, probably background near
   it, probably foreground elsewhere), which settles the outline on the photo's own edges.
2. **person**: the person-matting model (:class:`shared.media.matting.PersonSegmenter`) when it is
   confident about a sizable region: people wearing fashion, and (measured on the pymatting lemur)
   furry animals too.
3. **salient**: OpenCV's spectral-residual saliency, weighted toward the centre, seeds GrabCut with a
   probable foreground; the photo's edge is background.

Every mask is cleaned (specks dropped, small holes filled) and refined against the photo with the guided
filter of :func:`shared.media.matting.refine_alpha`, so edges are soft and follow the photo. When no
method finds a plausible subject (nothing, or almost the whole photo), the cutout is the whole photo
with rounded corners (``card``): a product card still looks deliberate, a ragged cut does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from shared.errors import InvalidInputError
from shared.media.matting import PersonSegmenter, refine_alpha

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]
Subject = Literal["auto", "person", "object"]
Method = Literal["backdrop", "person", "salient", "card"]

MIN_SIDE = 128  # smaller photos cannot make a sharp product shot
MAX_PIXELS = 60_000_000
WORK_LONG_SIDE = 400  # GrabCut and saliency run at this size
BORDER_FRACTION = 0.03  # the strip along the edges that describes the backdrop
PLAIN_BORDER_SHARE = 0.8  # share of border pixels close to the backdrop colors for a "plain" backdrop
BACKDROP_DISTANCE = 14.0  # Lab distance (about 2-3 just-noticeable differences) still counted as backdrop
PERSON_CONFIDENT = 0.8  # person probability counted as confident...
PERSON_MIN_SHARE = 0.08  # ... over at least this share of the photo
PERSON_MAX_UNSURE = 0.12  # and at most this share unsure (0.2..0.8): a decisive mask
MIN_SUBJECT, MAX_SUBJECT = 0.02, 0.92  # plausible subject area, as a share of the photo


@dataclass(frozen=True)
class Cutout:
    alpha: U8  # H x W, 0 background .. 255 subject, the size of the photo
    method: Method


def load_photo(path: Path, *, name: str | None = None) -> U8:
    """The upright RGB pixels of the photo at ``path`` (EXIF orientation applied).

    Raises InvalidInputError: INPUT_NOT_FOUND, INPUT_NOT_IMAGE (not a readable image), INPUT_TOO_SMALL
    (shorter side below MIN_SIDE), INPUT_TOO_LARGE (more than MAX_PIXELS).
    """
    label = name or path.name
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise InvalidInputError(
                    f"{label} is {image.width}x{image.height}; photos up to {MAX_PIXELS // 1_000_000} MP are "
                    "accepted.", code="INPUT_TOO_LARGE")
            upright = ImageOps.exif_transpose(image)
            rgb = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise InvalidInputError(f"{label} does not exist.", code="INPUT_NOT_FOUND") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise InvalidInputError(f"{label} is not a readable image ({exc}).", code="INPUT_NOT_IMAGE") from None
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise InvalidInputError(
            f"{label} is {rgb.shape[1]}x{rgb.shape[0]}; a product photo needs at least {MIN_SIDE} px on its "
            "shorter side.", code="INPUT_TOO_SMALL")
    return rgb


def cutout_rgb(rgb: U8, *, subject: Subject = "auto", segmenter: PersonSegmenter | None = None) -> Cutout:
    """The subject's alpha for an upright RGB photo (H x W x 3 uint8); see the module docstring."""
    small = _work(rgb)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    if subject != "person":
        background = backdrop_mask(lab)
        if background is not None:
            mask = _grabcut(small, _backdrop_seeds(background, lab, _backdrop_colors(lab)))
            if _plausible(mask):
                return Cutout(_finish(mask, rgb), "backdrop")
    if subject != "object":
        probability = _person(rgb, segmenter)
        confident = float((probability > PERSON_CONFIDENT).mean())
        unsure = float(((probability > 0.2) & (probability < PERSON_CONFIDENT)).mean())
        if subject == "person" or (confident >= PERSON_MIN_SHARE and unsure <= PERSON_MAX_UNSURE):
            return Cutout(refine_alpha(probability, rgb), "person")
    mask = _grabcut(small, _salient_seeds(small))
    if _plausible(mask):
        return Cutout(_finish(mask, rgb), "salient")
    return Cutout(card_alpha(rgb.shape[1], rgb.shape[0]), "card")


def backdrop_mask(lab: F32) -> NDArray[np.bool_] | None:
    """Pixels of a plain backdrop (connected to the border, close to its colors), or None when the
    border is not plain. ``lab`` is the photo in OpenCV's 8-bit Lab scale, as float32."""
    height, width = lab.shape[:2]
    band = max(2, round(min(height, width) * BORDER_FRACTION))
    border = np.concatenate([lab[:band].reshape(-1, 3), lab[-band:].reshape(-1, 3),
                             lab[:, :band].reshape(-1, 3), lab[:, -band:].reshape(-1, 3)])
    # A few backdrop colors (a graded sweep is lighter at the top than at the floor): k-means on the border.
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centers = cv2.kmeans(border, 3, np.zeros(len(border), np.int32), criteria, 2, cv2.KMEANS_PP_CENTERS)
    share = np.bincount(labels.ravel(), minlength=3) / len(border)
    centers = centers[share > 0.1]
    near_border = np.min(np.linalg.norm(border[:, None, :] - centers[None], axis=-1), axis=1)
    if float((near_border < BACKDROP_DISTANCE).mean()) < PLAIN_BORDER_SHARE:
        return None
    distance = np.min(np.linalg.norm(lab[:, :, None, :] - centers[None, None], axis=-1), axis=2)
    close = (distance < BACKDROP_DISTANCE).astype(np.uint8)
    _, components = cv2.connectedComponents(close, connectivity=4)
    edge_labels = np.unique(np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]]))
    edge_labels = edge_labels[edge_labels > 0]
    return np.asarray(np.isin(components, edge_labels) & (close > 0))


def card_alpha(width: int, height: int) -> U8:
    """The whole photo as a card: opaque with rounded corners (radius 4% of the shorter side), antialiased."""
    scale = 4
    radius = round(min(width, height) * 0.04) * scale
    big = Image.new("L", (width * scale, height * scale), 0)
    ImageDraw.Draw(big).rounded_rectangle((0, 0, width * scale - 1, height * scale - 1), radius=radius, fill=255)
    return np.asarray(big.resize((width, height), Image.Resampling.LANCZOS), dtype=np.uint8)


def subject_box(alpha: U8, *, threshold: int = 8) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels more opaque than ``threshold``; the whole image if none."""
    rows = np.flatnonzero((alpha > threshold).any(axis=1))
    cols = np.flatnonzero((alpha > threshold).any(axis=0))
    if rows.size == 0:
        return 0, 0, alpha.shape[1], alpha.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def cutout_image(rgb: U8, alpha: U8, *, max_side: int = 1600) -> Image.Image:
    """The subject as a straight-alpha RGBA image cropped to its box, at most ``max_side`` on its long side.

    Edge pixels take the color of the nearest solid subject pixel mixed in (a light decontamination), so
    the old backdrop does not glow through the soft edge on a new background.
    """
    left, top, right, bottom = subject_box(alpha)
    rgb, alpha = rgb[top:bottom, left:right], alpha[top:bottom, left:right]
    solid = (alpha > 230).astype(np.uint8)
    if solid.any() and (alpha < 230).any():
        # color of the nearest solid pixels: a normalized blur of the solid region
        sigma = max(1.5, max(rgb.shape[:2]) / 300)
        weight = cv2.GaussianBlur(solid.astype(np.float32), (0, 0), sigma)[..., None]
        spread = cv2.GaussianBlur(rgb.astype(np.float32) * solid[..., None], (0, 0), sigma) / np.maximum(weight, 1e-3)
        edge = ((alpha > 0) & (alpha < 230))[..., None] & (weight > 0.02)
        mix = (1.0 - alpha.astype(np.float32)[..., None] / 255.0) * 0.8
        rgb = np.where(edge, rgb * (1 - mix) + np.clip(spread, 0, 255) * mix, rgb).astype(np.uint8)
    image = Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    return image


# ---------------------------------------------------------------------------------------------------------


def _work(rgb: U8) -> U8:
    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_LONG_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _person(rgb: U8, segmenter: PersonSegmenter | None) -> F32:
    if segmenter is not None:
        return segmenter(rgb)
    with PersonSegmenter() as own:
        return own(rgb)


def _backdrop_colors(lab: F32) -> F32:
    """The median Lab color of the photo's border."""
    band = max(2, round(min(lab.shape[:2]) * BORDER_FRACTION))
    border = np.concatenate([lab[:band].reshape(-1, 3), lab[-band:].reshape(-1, 3)])
    return np.asarray(np.median(border, axis=0), np.float32)


def _backdrop_seeds(background: NDArray[np.bool_], lab: F32, backdrop: F32) -> U8:
    """GrabCut's starting mask: backdrop far from the subject is certain, near it probable; so are the
    product's cast shadows (the backdrop's own hue, only darker), which should not be cut out with it."""
    seeds = np.full(background.shape, cv2.GC_PR_FGD, np.uint8)
    hue_shift = np.linalg.norm(lab[..., 1:] - backdrop[1:], axis=-1)
    darker = backdrop[0] - lab[..., 0]
    seeds[(hue_shift < 5.0) & (darker > 0) & (darker < 60)] = cv2.GC_PR_BGD
    seeds[background] = cv2.GC_PR_BGD
    reach = max(3, round(max(background.shape) * 0.02))
    core = cv2.erode(background.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    seeds[core > 0] = cv2.GC_BGD
    return seeds


def _salient_seeds(small: U8) -> U8:
    height, width = small.shape[:2]
    saliency = cv2.saliency.StaticSaliencySpectralResidual_create()  # type: ignore[attr-defined]  # contrib
    _, raw = saliency.computeSaliency(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    heat = np.asarray(cv2.GaussianBlur(np.asarray(raw, np.float32), (0, 0), max(height, width) / 60), np.float32)
    heat = heat / (float(heat.max()) + 1e-6)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    centre = np.exp(-(((x / width - 0.5) / 0.35) ** 2 + ((y / height - 0.5) / 0.4) ** 2))
    heat = heat * (0.4 + 0.6 * centre)
    seeds = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
    seeds[heat > np.quantile(heat, 0.7)] = cv2.GC_PR_FGD
    band = max(2, round(min(height, width) * BORDER_FRACTION))
    seeds[:band], seeds[-band:], seeds[:, :band], seeds[:, -band:] = (cv2.GC_BGD,) * 4
    return seeds


def _grabcut(small: U8, seeds: U8, iterations: int = 4) -> NDArray[np.bool_]:
    mask = seeds.copy()
    if not (mask == cv2.GC_PR_FGD).any() or not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        return np.zeros(mask.shape, bool)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, background, foreground,  # type: ignore[call-overload]
                iterations, cv2.GC_INIT_WITH_MASK)
    return _clean((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))


def _clean(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Drop specks (components under 10% of the largest) and fill holes under 3% of the subject."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.1 * areas.max()) + 1
    kept = np.isin(labels, keep)
    holes = (~kept).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    edge = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    limit = 0.03 * kept.sum()
    for label in range(1, count):
        if label not in edge and stats[label, cv2.CC_STAT_AREA] < limit:
            kept[labels == label] = True
    return np.asarray(kept)


def _plausible(mask: NDArray[np.bool_]) -> bool:
    return MIN_SUBJECT <= float(mask.mean()) <= MAX_SUBJECT


def _finish(mask: NDArray[np.bool_], rgb: U8) -> U8:
    """The work-size mask, softened a little and refined against the full-size photo."""
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8)
    return refine_alpha(np.asarray(soft, np.float32), rgb)
