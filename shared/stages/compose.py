"""Plan the composition: turn the prepared pieces into one CompositionSpec, stored as JSON.

Layers bottom to top: the chosen background (with a slow drift), the person keyed by their per-chunk
mattes (pulled lightly toward the background's color), the decorative overlays (gradient mask, light
leak, optional frame, vignette; merged into one image), then the title and quote cards with their
timing. The grade comes from the user's choice or from the style. Renderers (ffmpeg here, Remotion in
the cloud) draw the spec.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydantic import Field

from shared.composition import (
    BackgroundLayer,
    CompositionSpec,
    Effects,
    GradePreset,
    OverlayLayer,
    PersonLayer,
    TextLayer,
)
from shared.media.models import Chunk, DecodeHints, MediaInfo
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.stages.assets import GenerateAssetsOutput
from shared.stages.style import StyleProfile

TITLE_SECONDS = (0.3, 4.0)
QUOTE_SECONDS = 3.5

# Which grade a style gets when the user does not choose one.
GRADE_FOR_PRESET: dict[str, GradePreset] = {
    "preset:minimal": "soft", "preset:cinematic": "cinematic", "preset:luxury": "luxury",
    "preset:warm": "warm", "preset:fresh": "fresh",
}
GRADE_FOR_TEMPERATURE: dict[str, GradePreset] = {"warm": "warm", "cool": "cool", "neutral": "soft"}


class PlanCompositionInput(StageInput):
    source_key: str
    media: MediaInfo
    hints: DecodeHints
    width: int
    height: int
    fps: int
    frames: int
    person_scale: float = Field(default=0.88, gt=0.2, le=1.0)
    chunks: list[Chunk] = Field(min_length=1)
    style: StyleProfile
    assets: GenerateAssetsOutput
    grade: GradePreset | None = None
    grade_intensity: float = Field(default=0.6, ge=0.0, le=1.0)
    vignette: float = Field(default=0.35, ge=0.0, le=1.0)


class PlanCompositionOutput(StageOutput):
    spec_key: str
    person_chroma_shift: tuple[float, float]
    asset_keys: list[str]  # what the asset pack holds: backgrounds, overlays, cards
    style: StyleProfile  # passed on for the report
    grade: GradePreset


def schedule_quotes(count: int, duration: float) -> list[tuple[float, float]]:
    """(start, end) of ``count`` quotes spread evenly after the title, each QUOTE_SECONDS long (pure)."""
    if count == 0:
        return []
    begin = TITLE_SECONDS[1] + 0.5 if duration > TITLE_SECONDS[1] + QUOTE_SECONDS else 0.0
    slot = max((duration - begin) / count, 0.5)
    show = min(QUOTE_SECONDS, slot)
    return [(begin + i * slot, min(duration, begin + i * slot + show)) for i in range(count)]


def plan_composition(inp: PlanCompositionInput, ctx: StageContext) -> PlanCompositionOutput:
    objects = ctx.runtime.objects
    duration = inp.frames / inp.fps
    # The decorative layers are static: drawn into one image here, they cost the renderer one overlay
    # per frame instead of four.
    decor = [(inp.assets.gradient_mask_key, 1.0), (inp.assets.light_leak_key, 0.8)]
    if inp.assets.frame_key:
        decor.append((inp.assets.frame_key, 1.0))
    layers = []
    for key, opacity in decor:
        with objects.local_copy(key) as path, Image.open(path) as image:
            layers.append(_with_opacity(image.convert("RGBA").resize((inp.width, inp.height)), opacity))
    if inp.vignette > 0:
        layers.append(Image.fromarray(render_vignette(inp.width, inp.height, inp.vignette)))
    merged = layers[0]
    for layer in layers[1:]:
        merged = Image.alpha_composite(merged, layer)
    overlay_key = ctx.output_key("decor.png")
    buffer = io.BytesIO()
    merged.save(buffer, format="PNG")
    objects.put_bytes(overlay_key, buffer.getvalue(), "image/png")
    overlays = [OverlayLayer(key=overlay_key)]

    texts: list[TextLayer] = []
    if inp.assets.title_card is not None:
        end = min(TITLE_SECONDS[1], duration)
        texts.append(TextLayer(key=inp.assets.title_card.key, start=min(TITLE_SECONDS[0], end / 2), end=end,
                               y=int(inp.height * 0.06)))
    for card, (start, end) in zip(inp.assets.quote_cards, schedule_quotes(len(inp.assets.quote_cards), duration),
                                  strict=True):
        y = max(0, int(inp.height * 0.93) - card.height)  # lower third, bottom-aligned above the safe margin
        texts.append(TextLayer(key=card.key, start=start, end=end, y=y))

    boundaries = [chunk.start_frame / inp.fps for chunk in inp.chunks[1:]]
    texts = [keep_fades_within_chunks(text, boundaries) for text in texts]
    background_key = inp.assets.backgrounds[0]
    with objects.local_copy(background_key) as background:
        shift = person_chroma_shift(background_mean_uv(background))
    spec = CompositionSpec(
        width=inp.width, height=inp.height, fps=inp.fps, frames=inp.frames, chunks=inp.chunks,
        background=BackgroundLayer(key=background_key),
        person=PersonLayer(source_key=inp.source_key, media=inp.media, hints=inp.hints, scale=inp.person_scale),
        overlays=overlays,
        texts=texts,
        effects=Effects(grade=inp.grade or default_grade(inp.style), intensity=inp.grade_intensity),
    )
    spec_key = ctx.output_key("spec.json")
    objects.put_bytes(spec_key, spec.model_dump_json(indent=2).encode(), "application/json")
    asset_keys = [*inp.assets.backgrounds, *(key for key, _ in decor), overlay_key, *(text.key for text in texts)]
    return PlanCompositionOutput(
        spec_key=spec_key, person_chroma_shift=shift, asset_keys=asset_keys, style=inp.style,
        grade=spec.effects.grade,
    )


def keep_fades_within_chunks(text: TextLayer, boundaries: list[float]) -> TextLayer:
    """Move a card's start or end onto a chunk boundary its fade would straddle (pure).

    Each chunk is rendered on its own, and a fade cut in two would restart at the boundary; moving the
    fade to begin (or end) exactly there keeps it whole and costs at most a fade's length of display.
    """
    start, end = text.start, text.end
    for boundary in boundaries:
        if start < boundary < start + text.fade_in:
            start = boundary
        if end - text.fade_out < boundary < end:
            end = boundary
    if end - start < text.fade_in + text.fade_out:  # too short to keep both fades whole: keep it as it was
        return text
    return text.model_copy(update={"start": start, "end": end})


def default_grade(style: StyleProfile) -> GradePreset:
    return GRADE_FOR_PRESET.get(style.source) or GRADE_FOR_TEMPERATURE[style.temperature]


def background_mean_uv(path: Path) -> tuple[float, float]:
    """The background's mean chroma (U, V) in 8-bit levels, 128 = neutral."""
    with Image.open(path) as image:
        small = image.convert("RGB").resize((64, 64)).convert("YCbCr")
    pixels = np.asarray(small, dtype=np.float32)
    return float(pixels[..., 1].mean()), float(pixels[..., 2].mean())


def person_chroma_shift(
    mean_uv: tuple[float, float], *, strength: float = 0.3, limit: float = 6.0
) -> tuple[float, float]:
    """How far (in U/V levels) to pull the person toward the background's cast: a fraction, bounded (pure)."""
    u, v = (float(np.clip((value - 128.0) * strength, -limit, limit)) for value in mean_uv)
    return u, v


def render_vignette(width: int, height: int, strength: float) -> NDArray[np.uint8]:
    """An RGBA vignette: black, transparent in the middle, up to ``strength`` opacity in the corners."""
    y = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    radius = np.sqrt(x**2 + (y * 0.85) ** 2)
    alpha = np.clip((radius - 0.55) / 0.9, 0.0, 1.0) ** 1.6 * strength
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    return rgba


def _with_opacity(image: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1.0:
        return image
    alpha = image.getchannel("A").point(lambda value: round(value * opacity))
    image.putalpha(alpha)
    return image


PLAN_COMPOSITION = Stage("plan_composition", PlanCompositionInput, PlanCompositionOutput, plan_composition)
