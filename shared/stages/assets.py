"""Generate assets: the background the person is placed over, rendered from the StyleProfile.

The embedded provider renders procedurally with numpy: a vertical gradient between the palette's two
dominant colors, a soft key light in an accent color, a vignette and fine grain, so the result reads as
a lit backdrop rather than a flat fill.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.stages.style import StyleProfile


class GenerateAssetsInput(StageInput):
    style: StyleProfile
    width: int
    height: int


class GenerateAssetsOutput(StageOutput):
    background_key: str
    width: int
    height: int


def generate_assets(inp: GenerateAssetsInput, ctx: StageContext) -> GenerateAssetsOutput:
    background = render_background(inp.style, inp.width, inp.height, seed=int(ctx.input_hash[:8], 16))
    buffer = io.BytesIO()
    Image.fromarray(background).save(buffer, format="PNG", optimize=False)
    key = ctx.output_key("background.png")
    ctx.runtime.objects.put_bytes(key, buffer.getvalue(), "image/png")
    return GenerateAssetsOutput(background_key=key, width=inp.width, height=inp.height)


def _rgb(hex_color: str) -> NDArray[np.float32]:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32) / 255.0


def render_background(style: StyleProfile, width: int, height: int, *, seed: int) -> NDArray[np.uint8]:
    """A [height, width, 3] uint8 backdrop (pure; deterministic for a seed)."""
    top, bottom = _rgb(style.palette[0]), _rgb(style.palette[1])
    accent = _rgb(style.palette[2] if len(style.palette) > 2 else style.palette[0])
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    image = top * (1.0 - y) + bottom * y  # [H, 1, 3]

    # Key light: a broad elliptical glow up and to the side, stronger for dramatic lighting.
    strength = {"soft": 0.25, "natural": 0.35, "dramatic": 0.5}[style.lighting]
    glow = np.exp(-(((x - 0.3) / 0.45) ** 2 + ((y - 0.28) / 0.35) ** 2))  # [H, W, 1]
    image = image * (1.0 - strength * glow) + accent * (strength * glow)

    # Vignette: darken the corners so the eye goes to the center, where the person stands.
    radius = np.sqrt((x - 0.5) ** 2 / 0.5 + (y - 0.45) ** 2 / 0.7)
    image = image * (1.0 - 0.35 * style.contrast * np.clip(radius - 0.35, 0.0, 1.0) ** 1.5)

    # Fine grain hides banding in the 8-bit gradient after H.264 encoding.
    rng = np.random.default_rng(seed)
    image = image + rng.normal(0.0, 0.012, size=(height, width, 1)).astype(np.float32)
    return np.asarray(np.clip(image * 255.0 + 0.5, 0, 255), dtype=np.uint8)


GENERATE_ASSETS = Stage("generate_assets", GenerateAssetsInput, GenerateAssetsOutput, generate_assets)
