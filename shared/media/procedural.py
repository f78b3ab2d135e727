"""Procedural backdrops and decorative layers from a StyleProfile, with numpy and Pillow (pure; no I/O).

Three background designs, each lit the way a photographer would light a backdrop behind a person:

- ``studio``: a seamless paper sweep with a soft spot behind the subject's head, a lighter floor where
  the paper curves, and a vignette.
- ``bokeh``: an out-of-focus scene: a dark-to-light gradient with soft discs of the palette's light colors
  (small, crisp and bright near; large, soft and dim far), with the bright rim real lenses give them.
- ``window``: window light on a plaster wall: the panes' light pattern falls across the wall at an angle,
  with soft penumbras, fading away from the window.

The surface follows ``style.texture`` (film grain, bloom for soft-focus, paper mottling, or only the fine
dither every gradient needs against banding after 8-bit encoding). Smooth structure is computed at a
fraction of the output size and upscaled; grain is added at full size.

Decorative layers: a light leak (RGBA, warm or cool by temperature, mostly transparent), an optional frame
(RGBA) for styles that want one, and a gradient mask (RGBA) that darkens the top and bottom so text reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from shared.providers.style import StyleProfile

FloatArray = NDArray[np.float32]
Variant = Literal["studio", "bokeh", "window"]
VARIANTS: tuple[Variant, ...] = ("studio", "bokeh", "window")
FrameKind = Literal["double", "hairline"]


def _rgb(hex_color: str) -> FloatArray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32) / 255.0


def _luma(color: FloatArray) -> float:
    return float(color[..., 0] * 0.2126 + color[..., 1] * 0.7152 + color[..., 2] * 0.0722)


def _chroma(color: FloatArray) -> float:
    return float(color.max() - color.min())


def _mix(a: FloatArray, b: FloatArray, t: float | FloatArray) -> FloatArray:
    return np.asarray(a + (b - a) * t, dtype=np.float32)


def _smoothstep(edge0: float, edge1: float, x: FloatArray) -> FloatArray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return np.asarray(t * t * (3.0 - 2.0 * t), dtype=np.float32)


def _desaturate(color: FloatArray, max_chroma: float) -> FloatArray:
    """Pull a color toward its gray until its chroma is at most ``max_chroma``."""
    chroma = _chroma(color)
    if chroma <= max_chroma:
        return color
    gray = np.full(3, _luma(color), dtype=np.float32)
    return _mix(gray, color, max_chroma / chroma)


def style_seed(style: StyleProfile, salt: str) -> int:
    """A stable seed for a style and a purpose: the same style renders the same picture."""
    digest = hashlib.sha256(f"{style.model_dump_json()}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Roles:
    """The palette sorted into jobs: the backdrop tone, its shadow, an accent light, a highlight."""

    base: FloatArray
    deep: FloatArray
    accent: FloatArray
    highlight: FloatArray
    shadow: FloatArray
    dark: bool  # a dark backdrop (light leaks screen on it; text is light)

    @classmethod
    def of(cls, style: StyleProfile) -> Roles:
        colors = [_rgb(c) for c in style.palette]
        base = _desaturate(colors[0], 0.32)
        second = _desaturate(colors[1], 0.36)
        rest = colors[1:]
        accent = max(rest, key=lambda c: _chroma(c) + 0.25 * _luma(c))
        lightest = max(colors, key=_luma)
        darkest = min(colors, key=_luma)
        dark = _luma(base) < 0.5
        if dark:
            deep = _mix(base * 0.55, second * 0.5, 0.3)
            highlight = _mix(lightest, accent, 0.25)
        else:
            deep = _mix(base * 0.76, second * 0.84, 0.3)
            highlight = _mix(lightest, np.ones(3, dtype=np.float32), 0.5)
        return cls(base=base, deep=deep, accent=accent, highlight=highlight, shadow=darkest * 0.6, dark=dark)


def _grid(height: int, width: int) -> tuple[FloatArray, FloatArray]:
    """Column ``y`` in 0..1 down the frame and row ``x`` in height units (so circles stay round)."""
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
    x = ((np.arange(width, dtype=np.float32) + 0.5) / height)[None, :]
    return y, x


def _value_noise(height: int, width: int, cells: int, rng: np.random.Generator) -> FloatArray:
    """Smooth noise in about -1..1: a coarse random grid (``cells`` across the height) upscaled bicubically."""
    grid_h = max(2, cells)
    grid_w = max(2, round(cells * width / height))
    coarse = rng.uniform(-1.0, 1.0, size=(grid_h, grid_w)).astype(np.float32)
    return _resize(coarse, width, height)


def _blur(image: FloatArray, sigma: float) -> FloatArray:
    """Gaussian blur (any number of channels) with ``sigma`` in pixels."""
    return np.asarray(cv2.GaussianBlur(np.ascontiguousarray(image, dtype=np.float32), (0, 0), sigma), np.float32)


def _resize(image: FloatArray, width: int, height: int) -> FloatArray:
    """Bicubic resize of a float image (any number of channels)."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    resized = cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(resized, dtype=np.float32)


def _vignette(y: FloatArray, x: FloatArray, aspect: float, center_y: float = 0.45) -> FloatArray:
    """0 in the middle of the frame rising smoothly to about 1 in the corners."""
    dx = (x - aspect / 2) / (aspect * 0.72)
    dy = (y - center_y) / 0.78
    radius = np.sqrt(dx * dx + dy * dy)
    return np.asarray(_smoothstep(0.35, 1.05, radius) ** 1.4, dtype=np.float32)


def _darken_edges(image: FloatArray, roles: Roles, amount: FloatArray) -> FloatArray:
    """A vignette that keeps the hue: dark backdrops fall off toward black, light ones toward their shadow
    tone (a gray vignette on a cream wall looks dirty)."""
    if roles.dark:
        return np.asarray(image * (1.0 - amount)[..., None], dtype=np.float32)
    return _mix(image, (roles.deep * 0.94)[None, None, :], (0.8 * amount)[..., None])


# ---------------------------------------------------------------------------------------------------------
# Backgrounds (computed at a working size, returned as float RGB in 0..1)


def _lift(color: FloatArray, target_luma: float) -> FloatArray:
    """The same hue at ``target_luma`` (a dark wall as it looks where a light falls on it)."""
    return np.asarray(np.clip(color * (target_luma / max(_luma(color), 0.02)), 0.0, 1.0), dtype=np.float32)


def _studio(style: StyleProfile, roles: Roles, height: int, width: int, rng: np.random.Generator) -> FloatArray:
    y, x = _grid(height, width)
    aspect = width / height
    sweep_y = 0.78  # where the paper curves from wall to floor
    wall_top = roles.deep if roles.dark else roles.deep * 0.97
    wall = _mix(wall_top, roles.base * (1.0 if roles.dark else 0.9), (_smoothstep(-0.1, sweep_y, y) ** 0.9)[..., None])
    floor_tone = _mix(roles.base, roles.highlight, 0.08)
    floor = _mix(floor_tone, roles.deep, _smoothstep(sweep_y, 1.1, y)[..., None])
    image = _mix(wall, floor, _smoothstep(sweep_y - 0.1, sweep_y + 0.1, y)[..., None])

    # The background light: a soft pool behind the head and shoulders, in the wall's own hue (lifted),
    # warmed or cooled a little by the accent.
    strength = {"soft": 0.55, "natural": 0.65, "dramatic": 0.8}[style.lighting]
    if roles.dark:
        light = _mix(_lift(roles.base, 0.2 + 0.2 * (1.0 - style.contrast)), roles.accent, 0.18)
    else:
        light = _mix(roles.base, roles.highlight, 0.85)
    dx, dy = (x - aspect * 0.5) / 0.34, (y - 0.36) / 0.27
    pool = np.exp(-(dx * dx + dy * dy))
    spill = np.exp(-(((x - aspect * 0.5) / 0.75) ** 2 + ((y - 0.42) / 0.6) ** 2))
    image = _mix(image, light[None, None, :], (strength * pool + 0.2 * spill)[..., None])
    image = image * (1.0 + 0.012 * _value_noise(height, width, 5, rng))[..., None]
    return _darken_edges(image, roles, (0.3 + 0.4 * style.contrast) * _vignette(y, x, aspect))


def _bokeh(style: StyleProfile, roles: Roles, height: int, width: int, rng: np.random.Generator) -> FloatArray:
    y, x = _grid(height, width)
    aspect = width / height
    # Dark at the top and one side, lighter low on the other: a scene receding out of focus.
    t = np.clip(0.65 * y + 0.35 * (x / aspect), 0.0, 1.0)
    far = roles.deep * (0.75 if roles.dark else 0.92)
    near = _mix(roles.base, roles.highlight, 0.12)
    image = _mix(far[None, None, :], near[None, None, :], _smoothstep(0.0, 1.0, t)[..., None])
    glow = np.exp(-(((x - aspect * 0.15) / 0.45) ** 2 + ((y - 0.2) / 0.3) ** 2))
    image = _mix(image, roles.accent[None, None, :], (0.2 * glow)[..., None])

    lights = [roles.accent, roles.highlight, _mix(roles.accent, roles.highlight, 0.5)]
    if roles.dark:  # on a dark scene, the palette's other colored tones glow too
        lights += [_lift(_rgb(c), 0.5) for c in style.palette[3:] if _chroma(_rgb(c)) > 0.08]
    count = 46
    scale = height  # disc sizes are fractions of the height
    for index in range(count):
        depth = rng.uniform(0.0, 1.0)  # 0: near (small, crisp, bright) .. 1: far (large, soft, dim)
        radius = (0.012 + 0.05 * depth**1.5 + rng.uniform(0.0, 0.012)) * scale
        cx = rng.uniform(-0.05, aspect + 0.05) * scale
        cy = rng.beta(1.4, 2.6) * 0.95 * scale  # mostly in the upper part, around the head
        if abs(cx / scale - aspect / 2) < aspect * 0.18 and cy / scale > 0.45:
            cy *= 0.55  # keep the middle low part (behind the body) calmer
        color = lights[index % len(lights)] * rng.uniform(0.85, 1.1)
        intensity = (0.55 - 0.3 * depth) * rng.uniform(0.7, 1.0)
        soft = 0.1 + 0.35 * depth
        x0, x1 = max(0, int(cx - radius) - 1), min(width, int(cx + radius) + 2)
        y0, y1 = max(0, int(cy - radius) - 1), min(height, int(cy + radius) + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        py = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
        px = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
        r = np.sqrt((px - cx) ** 2 + (py - cy) ** 2) / radius
        disc = _smoothstep(1.0, 1.0 - soft, r)
        disc = disc * (0.8 + 0.35 * _smoothstep(0.55, 0.95, r))  # the brighter rim of a defocused highlight
        alpha = (intensity * disc)[..., None]
        patch = image[y0:y1, x0:x1]
        if roles.dark:
            image[y0:y1, x0:x1] = 1.0 - (1.0 - patch) * (1.0 - alpha * color)  # screen: light adds up
        else:
            image[y0:y1, x0:x1] = _mix(patch, np.minimum(color * 1.05, 1.0), alpha * 0.8)
    image = _blur(image, max(0.6, height / 900))  # a touch of lens softness over everything
    return _darken_edges(image, roles, (0.25 + 0.4 * style.contrast) * _vignette(y, x, aspect))


def _window(style: StyleProfile, roles: Roles, height: int, width: int, rng: np.random.Generator) -> FloatArray:
    y, x = _grid(height, width)
    aspect = width / height
    wall = roles.base * (0.55 if roles.dark else 0.76)
    wall_lit = _lift(roles.base, 0.18) if roles.dark else roles.base
    plaster = 1.0 + 0.018 * _value_noise(height, width, 9, rng) + 0.01 * _value_noise(height, width, 31, rng)

    # The light of a four-pane window thrown down and to the right across the wall (a sheared grid),
    # computed coarse: soft penumbras (wider further from the window) and the dappled shadow of leaves.
    small_h, small_w = max(32, height // 4), max(18, width // 4)
    sy, sx = _grid(small_h, small_w)
    u = sx - 0.5 * sy
    v = sy
    u0, v0, pane_w, pane_h, bar = 0.02, 0.1, 0.16, 0.15, 0.022
    inside = ((u > u0) & (u < u0 + 2 * pane_w + bar) & (v > v0) & (v < v0 + 2 * pane_h + bar)).astype(np.float32)
    mullion = (np.abs(u - (u0 + pane_w + bar / 2)) < bar / 2) | (np.abs(v - (v0 + pane_h + bar / 2)) < bar / 2)
    panes = inside * (~mullion).astype(np.float32)
    near, far = _blur(panes, small_h / 160), _blur(panes, small_h / 45)
    spread = _smoothstep(v0, v0 + 2 * pane_h, np.broadcast_to(v, panes.shape))
    panes = _mix(near, far, spread)
    # A branch reaching in from the upper right: fine leaf shadows, only over part of the light.
    foliage = _value_noise(small_h, small_w, 26, rng) + 0.5 * _value_noise(small_h, small_w, 60, rng)
    leaves = _smoothstep(0.25, 0.6, foliage)
    branch = _smoothstep(0.1, 0.45, sx - 0.55 * (small_w / small_h) - 0.6 * (sy - 0.1))
    panes = panes * (1.0 - 0.6 * _blur(leaves * branch, small_h / 300))
    light = np.clip(_resize(panes, width, height), 0.0, 1.0)
    falloff = np.exp(-(((x - aspect * 0.35) / 0.8) ** 2 + ((y - 0.25) / 0.7) ** 2))

    if roles.dark:
        sun = _mix(roles.highlight, roles.accent, 0.3 if style.temperature != "cool" else 0.1)
    else:
        sun = _mix(roles.highlight, np.ones(3, dtype=np.float32), 0.4)
    strength = {"soft": 0.38, "natural": 0.48, "dramatic": 0.6}[style.lighting] + (0.0 if roles.dark else 0.25)
    image = _mix(wall[None, None, :], wall_lit[None, None, :], (0.55 * falloff)[..., None])
    image = _mix(image, sun[None, None, :], (strength * light * (0.55 + 0.45 * falloff))[..., None])
    image = image * plaster[..., None]
    return _darken_edges(image, roles, (0.25 + 0.35 * style.contrast) * _vignette(y, x, aspect, center_y=0.4))


_RENDERERS = {"studio": _studio, "bokeh": _bokeh, "window": _window}


def _apply_texture(
    image: FloatArray, style: StyleProfile, rng: np.random.Generator, width: int, height: int,
) -> NDArray[np.uint8]:
    """Upscale the working-size ``image`` to the output size, add the style's surface, quantize."""
    if style.texture == "soft-focus":
        bright = np.clip(image - 0.45, 0.0, 1.0)
        bloom = _blur(bright, image.shape[0] / 40)
        image = 1.0 - (1.0 - image) * (1.0 - 0.8 * bloom)
    elif style.texture == "paper":
        h, w = image.shape[:2]
        mottle = 0.012 * _value_noise(h, w, 60, rng) + 0.008 * _value_noise(h, w, 180, rng)
        image = image * (1.0 + mottle)[..., None]
    image = _resize(image, width, height)
    sigma = {"smooth": 0.006, "grain": 0.022, "soft-focus": 0.009, "paper": 0.012}[style.texture]
    noise = rng.standard_normal((height, width), dtype=np.float32)
    if style.texture == "grain":  # film grain clumps: add a coarser layer
        coarse = rng.standard_normal((height // 2 + 1, width // 2 + 1), dtype=np.float32)
        noise = 0.7 * noise + 0.7 * np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:height, :width]
    image = image + (sigma * noise)[..., None]
    return np.asarray(np.clip(image * 255.0 + 0.5, 0, 255), dtype=np.uint8)


def render_background(
    style: StyleProfile, width: int, height: int, *, variant: Variant = "studio", seed: int | None = None,
    work_scale: float = 0.5,
) -> NDArray[np.uint8]:
    """A [height, width, 3] uint8 backdrop of one design (pure; deterministic for a style and seed).

    Smooth structure is computed at ``work_scale`` of the output size and upscaled; grain is full size.
    """
    if variant not in _RENDERERS:
        raise ValueError(f"unknown background variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    rng = np.random.default_rng(style_seed(style, variant) if seed is None else seed)
    work_h, work_w = max(16, round(height * work_scale)), max(16, round(width * work_scale))
    image = _RENDERERS[variant](style, Roles.of(style), work_h, work_w, rng)
    return _apply_texture(np.asarray(image, dtype=np.float32), style, rng, width, height)


# ---------------------------------------------------------------------------------------------------------
# Decorative layers (RGBA)


def _to_rgba(color: FloatArray, alpha: FloatArray) -> NDArray[np.uint8]:
    rgba = np.concatenate([color, alpha[..., None]], axis=-1)
    return np.asarray(np.clip(rgba * 255.0 + 0.5, 0, 255), dtype=np.uint8)


def render_light_leak(style: StyleProfile, width: int, height: int) -> NDArray[np.uint8]:
    """A [height, width, 4] RGBA light leak: glows bleeding in from the top-right and lower-left edges.

    Warm (amber to red) for warm and neutral styles, cool (cyan to violet) for cool ones; the middle of the
    frame stays fully transparent.
    """
    work_h, work_w = max(16, height // 4), max(16, width // 4)
    y, x = _grid(work_h, work_w)
    aspect = work_w / work_h
    if style.temperature == "cool":
        core, edge = np.array([0.55, 0.9, 1.0], np.float32), np.array([0.62, 0.45, 1.0], np.float32)
    else:
        core, edge = np.array([1.0, 0.78, 0.42], np.float32), np.array([1.0, 0.36, 0.22], np.float32)
    rng = np.random.default_rng(style_seed(style, "leak"))
    wobble = 1.0 + 0.18 * _value_noise(work_h, work_w, 4, rng)
    top = np.exp(-(((x - aspect * 1.04) / 0.22) ** 2 + ((y - 0.08) / 0.13) ** 2)) * wobble
    side = np.exp(-(((x + 0.01) / 0.07) ** 2 + ((y - 0.72) / 0.11) ** 2)) * wobble
    strength = (0.5 + 0.2 * style.contrast) * (1.0 if Roles.of(style).dark else 0.6)
    alpha = np.clip(strength * (top + 0.7 * side), 0.0, 0.75)
    heat = np.clip(top + side, 0.0, 1.0)[..., None]
    color = _mix(edge[None, None, :], core[None, None, :], heat)
    alpha = np.where(alpha < 0.004, 0.0, alpha)  # exact zeros: most of the frame is untouched
    small = Image.fromarray(_to_rgba(color, alpha), mode="RGBA")
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def frame_kind(style: StyleProfile) -> FrameKind | None:
    """Which frame a style wants: a gold double rule for elegant or warm-dramatic looks, a hairline for calm
    and airy ones, none for the rest (a frame would fight an epic or bright look)."""
    if style.mood == "elegant" or (style.lighting == "dramatic" and style.temperature == "warm"):
        return "double"
    if style.mood in ("calm", "airy"):
        return "hairline"
    return None


def render_frame(style: StyleProfile, width: int, height: int) -> NDArray[np.uint8] | None:
    """A [height, width, 4] RGBA decorative border, or None for styles that want none (see frame_kind)."""
    kind = frame_kind(style)
    if kind is None:
        return None
    roles = Roles.of(style)
    unit = width / 1080
    frame = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(frame)
    if kind == "hairline":
        ink = roles.shadow if not roles.dark else roles.highlight
        color = (*(int(c * 255) for c in ink), 110)
        inset = round(40 * unit)
        box = (inset, inset, width - 1 - inset, height - 1 - inset)
        draw.rectangle(box, outline=color, width=max(1, round(2 * unit)))
        return np.asarray(frame, dtype=np.uint8)
    gold = _mix(roles.accent, roles.highlight, 0.2)
    color = (*(int(c * 255) for c in gold), 200)
    faint = (*(int(c * 255) for c in gold), 120)
    outer, inner = round(36 * unit), round(50 * unit)
    draw.rectangle((outer, outer, width - 1 - outer, height - 1 - outer), outline=color, width=max(1, round(3 * unit)))
    draw.rectangle((inner, inner, width - 1 - inner, height - 1 - inner), outline=faint, width=max(1, round(1 * unit)))
    # Corner ornaments: a small diamond in each corner between the rules, drawn supersampled.
    size = round(9 * unit)
    for cx, cy in ((outer, outer), (width - 1 - outer, outer), (outer, height - 1 - outer),
                   (width - 1 - outer, height - 1 - outer)):
        draw.polygon([(cx, cy - size), (cx + size, cy), (cx, cy + size), (cx - size, cy)], fill=color)
    return np.asarray(frame, dtype=np.uint8)


def render_gradient_mask(style: StyleProfile, width: int, height: int) -> NDArray[np.uint8]:
    """A [height, width, 4] RGBA scrim: dark at the top (title) and deeper at the bottom (quotes), clear in
    the middle, tinted with the style's darkest color so it reads as shadow, not as gray."""
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)
    roles = Roles.of(style)
    depth = 1.0 if roles.dark else 0.8  # on a light wall a lighter scrim, tinted with the wall's own shade
    top = 0.5 * depth * (1.0 - _smoothstep(0.0, 0.26, y)) ** 1.6
    bottom = 0.74 * depth * _smoothstep(0.55, 1.0, y) ** 1.5
    alpha = np.clip(top + bottom, 0.0, 1.0)
    tint = np.clip((roles.shadow * 0.5) if roles.dark else _mix(roles.shadow, roles.deep, 0.35) * 0.45, 0.0, 1.0)
    column = np.concatenate([np.broadcast_to(tint, (height, 3)), alpha[:, None]], axis=-1)
    column8 = np.asarray(np.clip(column * 255.0 + 0.5, 0, 255), dtype=np.uint8)
    return np.ascontiguousarray(np.broadcast_to(column8[:, None, :], (height, width, 4)))
