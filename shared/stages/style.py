"""Learn style: a StyleProfile from a reference image, or from a named preset.

The profile is what the asset and compose stages draw from: a palette, a color temperature, contrast and
a lighting class. Profiles learned from an image are cached by the image's content hash for 7 days, so a
second video with the same reference skips the analysis.
"""

from __future__ import annotations

import hashlib
import io
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import InvalidInputError
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.storage.cache import get_json, set_json

STYLE_CACHE_TTL_SECONDS = 7 * 24 * 3600
PALETTE_SIZE = 5

Lighting = Literal["soft", "dramatic", "natural"]
Temperature = Literal["warm", "neutral", "cool"]


class StyleProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str  # "preset:<name>" or "reference:<sha256 prefix>"
    palette: list[str] = Field(min_length=2)  # "#rrggbb", dominant first
    temperature: Temperature
    contrast: float = Field(ge=0, le=1)
    brightness: float = Field(ge=0, le=1)
    lighting: Lighting
    mood: str


PRESETS: dict[str, StyleProfile] = {
    "minimal": StyleProfile(
        source="preset:minimal", palette=["#f4f1ec", "#d9d4cc", "#b9b2a7", "#3a3835", "#8c867c"],
        temperature="neutral", contrast=0.35, brightness=0.82, lighting="soft", mood="calm",
    ),
    "cinematic": StyleProfile(
        source="preset:cinematic", palette=["#0f1c24", "#1f3a45", "#d98c4a", "#f2c38b", "#5b6e73"],
        temperature="cool", contrast=0.75, brightness=0.3, lighting="dramatic", mood="epic",
    ),
    "luxury": StyleProfile(
        source="preset:luxury", palette=["#14110f", "#2b2420", "#c9a45c", "#e8d5a8", "#6b5a45"],
        temperature="warm", contrast=0.7, brightness=0.25, lighting="dramatic", mood="elegant",
    ),
    "warm": StyleProfile(
        source="preset:warm", palette=["#f6e3cf", "#e8b896", "#c97b5a", "#7a4a3a", "#f9d9a8"],
        temperature="warm", contrast=0.45, brightness=0.7, lighting="soft", mood="cozy",
    ),
    "fresh": StyleProfile(
        source="preset:fresh", palette=["#e9f6f2", "#bfe6da", "#7cc7b5", "#2f6f73", "#f7e8a8"],
        temperature="cool", contrast=0.4, brightness=0.8, lighting="natural", mood="bright",
    ),
}
DEFAULT_PRESET = "minimal"


class LearnStyleInput(StageInput):
    preset: str | None = None
    reference_key: str | None = None

    @model_validator(mode="after")
    def _known_preset(self) -> LearnStyleInput:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        return self


class LearnStyleOutput(StageOutput):
    style: StyleProfile
    cache_hit: bool


def learn_style(inp: LearnStyleInput, ctx: StageContext) -> LearnStyleOutput:
    """Raises InvalidInputError (REFERENCE_NOT_IMAGE) when the reference cannot be read as an image."""
    if inp.reference_key is None:
        return LearnStyleOutput(style=PRESETS[inp.preset or DEFAULT_PRESET], cache_hit=False)

    data = ctx.runtime.objects.get_bytes(inp.reference_key)
    digest = hashlib.sha256(data).hexdigest()
    cache_key = f"style:v1:{digest}"
    cached = get_json(ctx.runtime.cache, cache_key)
    if cached is not None:
        return LearnStyleOutput(style=StyleProfile.model_validate(cached), cache_hit=True)
    style = analyze_reference(data, source=f"reference:{digest[:16]}")
    set_json(ctx.runtime.cache, cache_key, style.model_dump(mode="json"), STYLE_CACHE_TTL_SECONDS)
    return LearnStyleOutput(style=style, cache_hit=False)


def analyze_reference(data: bytes, *, source: str) -> StyleProfile:
    """Measure palette, temperature, contrast and lighting of an image (pure; no I/O)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError(
            f"The style reference is not a readable image ({exc}). Use a JPEG, PNG or WebP.",
            code="REFERENCE_NOT_IMAGE",
        ) from None
    image.thumbnail((256, 256))
    pixels = np.asarray(image, dtype=np.float32) / 255.0  # [H, W, 3]

    quantized = image.quantize(colors=PALETTE_SIZE, method=Image.Quantize.MEDIANCUT)
    counts: list[tuple[int, int]] = sorted(quantized.getcolors() or [], reverse=True)  # type: ignore[arg-type]
    raw_palette = quantized.getpalette() or []
    palette = ["#{:02x}{:02x}{:02x}".format(*raw_palette[3 * index : 3 * index + 3]) for _, index in counts]
    while len(palette) < 2:  # a flat image still yields a usable two-tone palette
        palette.append(palette[-1] if palette else "#808080")

    luma = pixels @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    brightness = float(luma.mean())
    contrast = float(min(1.0, luma.std() / 0.3))
    warmth = float((pixels[..., 0] - pixels[..., 2]).mean())
    temperature: Temperature = "warm" if warmth > 0.04 else "cool" if warmth < -0.04 else "neutral"
    lighting: Lighting = "dramatic" if contrast > 0.65 else "soft" if contrast < 0.35 else "natural"
    mood = {
        ("dramatic", True): "bold", ("dramatic", False): "moody",
        ("soft", True): "airy", ("soft", False): "intimate",
        ("natural", True): "bright", ("natural", False): "grounded",
    }[(lighting, brightness >= 0.5)]
    return StyleProfile(
        source=source, palette=palette[:PALETTE_SIZE], temperature=temperature,
        contrast=round(contrast, 3), brightness=round(brightness, 3), lighting=lighting, mood=mood,
    )


LEARN_STYLE = Stage("learn_style", LearnStyleInput, LearnStyleOutput, learn_style)
