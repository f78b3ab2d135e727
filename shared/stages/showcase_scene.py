"""The product showcase's scene design: a look per category, the layout per output format, and the small
images the renderer animates (contact shadow, light-sweep strip). Pure: numpy and Pillow, no I/O.

Backdrops come from :func:`shared.media.procedural.render_background`, driven by a StyleProfile per
category: skincare on a soft blush studio sweep, electronics on a dark, cool studio with a hard key,
fashion in warm window light on plaster, food among warm out-of-focus lights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from shared.media.cards import CardLook
from shared.media.procedural import Variant
from shared.providers.style import StyleProfile

Category = Literal["skincare", "electronics", "fashion", "food"]
CATEGORIES: tuple[Category, ...] = ("skincare", "electronics", "fashion", "food")


@dataclass(frozen=True)
class Look:
    style: StyleProfile
    variant: Variant
    card: CardLook
    shadow_opacity: float  # the contact shadow under the product
    sweep_opacity: float  # the light sweep's peak


LOOKS: dict[Category, Look] = {
    "skincare": Look(
        StyleProfile(source="showcase:skincare", palette=["#efdcd5", "#dcc1b8", "#c98f80", "#fff6f1", "#8e6a62"],
                     temperature="warm", contrast=0.3, brightness=0.85, lighting="soft", mood="airy",
                     texture="smooth"),
        "studio", CardLook(text="#4a302b", accent="#c98f80", shadow="#fff6f1", serif=True), 0.32, 0.42),
    "electronics": Look(
        StyleProfile(source="showcase:electronics", palette=["#121822", "#1d2735", "#4fb3ff", "#dcefff", "#2b3a4e"],
                     temperature="cool", contrast=0.8, brightness=0.2, lighting="dramatic", mood="epic",
                     texture="smooth"),
        "studio", CardLook(text="#f2f7fb", accent="#4fb3ff", shadow="#000000", serif=False), 0.6, 0.5),
    "fashion": Look(
        StyleProfile(source="showcase:fashion", palette=["#e9dfd2", "#d3c3ae", "#a7835b", "#fbf6ee", "#5d4f44"],
                     temperature="neutral", contrast=0.45, brightness=0.75, lighting="natural", mood="elegant",
                     texture="paper"),
        "window", CardLook(text="#3b3029", accent="#a7835b", shadow="#fbf6ee", serif=True), 0.3, 0.38),
    "food": Look(
        StyleProfile(source="showcase:food", palette=["#3b2619", "#583524", "#e3a253", "#ffdcaa", "#7c4b2c"],
                     temperature="warm", contrast=0.6, brightness=0.3, lighting="soft", mood="cozy",
                     texture="soft-focus"),
        "bokeh", CardLook(text="#fff7ec", accent="#e3a253", shadow="#1a0f08", serif=True), 0.55, 0.45),
}


@dataclass(frozen=True)
class Layout:
    """Where things go in one output format (pixels)."""

    box_w: int  # the largest a product may be
    box_h: int
    x: int  # the product's horizontal centre
    base_y: int  # the line it stands on
    title_y: int


def layout(width: int, height: int, *, title_height: int = 0) -> Layout:
    """The product box under the title, standing where the studio sweep meets the floor (pure)."""
    tall = height / width > 1.3
    title_y = round(height * (0.07 if tall else 0.03))
    base_y = round(height * (0.8 if tall else 0.88))
    top = title_y + title_height + round(height * 0.02) if title_height else round(height * 0.12)
    box_h = max(16, min(round(height * (0.48 if tall else 0.56)), round((base_y - top) / 1.03)))
    box_w = round(width * (0.72 if tall else 0.56))
    return Layout(box_w=box_w, box_h=box_h, x=width // 2, base_y=base_y, title_y=title_y)


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled to fit in ``box`` keeping its aspect (pure); never below 2 px."""
    scale = min(box[0] / size[0], box[1] / size[1])
    return max(2, round(size[0] * scale)), max(2, round(size[1] * scale))


def contact_shadow(product_w: int, opacity: float) -> Image.Image:
    """A soft elliptical shadow for a product ``product_w`` wide to stand on (RGBA, black)."""
    ellipse_w, ellipse_h = max(4, round(product_w * 0.82)), max(2, round(product_w * 0.09))
    pad = max(4, round(product_w * 0.08))
    mask = Image.new("L", (ellipse_w + 2 * pad, ellipse_h + 2 * pad), 0)
    ImageDraw.Draw(mask).ellipse((pad, pad, pad + ellipse_w, pad + ellipse_h), fill=round(255 * opacity))
    mask = mask.filter(ImageFilter.GaussianBlur(pad / 2.2))
    # A darker core right under the product: real contact shadows are densest where it touches.
    core = Image.new("L", mask.size, 0)
    inset_w = round(ellipse_w * 0.3)
    ImageDraw.Draw(core).ellipse((pad + inset_w, pad + ellipse_h // 4, pad + ellipse_w - inset_w,
                                  pad + ellipse_h * 3 // 4), fill=round(255 * opacity * 0.6))
    core = core.filter(ImageFilter.GaussianBlur(pad / 5))
    alpha = np.minimum(255, np.asarray(mask, np.uint16) + np.asarray(core, np.uint16)).astype(np.uint8)
    shadow = Image.new("RGBA", mask.size, (0, 0, 0, 0))
    shadow.putalpha(Image.fromarray(alpha))
    return shadow


def sweep_strip(height: int, opacity: float, *, tint: tuple[int, int, int] = (255, 251, 242)) -> Image.Image:
    """A soft diagonal band of light (RGBA) ``height`` tall, leaning right; moved across a product."""
    sigma = max(2.0, height * 0.06)
    lean = 0.35
    width = max(8, round(lean * height + 7 * sigma))
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    centre = width / 2 + lean * (height / 2 - y)
    core = np.exp(-(((x - centre) / sigma) ** 2))
    glint = 0.5 * np.exp(-(((x - centre - 1.8 * sigma) / (sigma * 0.3)) ** 2))  # a thin second streak
    alpha: NDArray[np.float32] = np.asarray(np.clip(opacity * (core + glint), 0.0, 1.0), np.float32)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = tint
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    return Image.fromarray(rgba, mode="RGBA")
