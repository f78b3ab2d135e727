"""Generate assets: backgrounds, decorative layers and text cards, all from the StyleProfile.

- Three backgrounds at the output size, one per design (studio sweep, bokeh, window light; see
  :mod:`shared.media.procedural`), from the image provider: procedural by default, or an image model
  (:mod:`shared.providers.images`) with a prompt built from the style. ``backgrounds[0]`` is the one
  compose uses. Each is cached for 30 days by the hash of (provider, model, prompt, style, variant, size,
  seed): the cache holds the object key, the bytes live in the object store under ``cache/assets/``.
- Decorative layers, always procedural: a light leak, an optional frame, a gradient mask (RGBA PNGs at
  the output size).
- Text cards (transparent RGBA PNGs as wide as the output): the title with its subtitle, and one card per
  quote, in a CJK-capable font dressed by the style (:mod:`shared.media.cards`).

The provider is chosen by name with :func:`shared.providers.images.build_image_provider` from
``VIDLUXE_IMAGE_PROVIDER`` (and ``VIDLUXE_IMAGE_API_KEY``); "procedural" by default.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import VidluxeError
from shared.media.cards import CardLook, render_quote_card, render_title_card
from shared.media.procedural import (
    VARIANTS,
    Roles,
    Variant,
    render_frame,
    render_gradient_mask,
    render_light_leak,
    style_seed,
)
from shared.pipeline.stage import Stage, StageContext, StageInput, StageOutput
from shared.providers.images import (
    ImageProvider,
    ImageRequest,
    build_background_prompt,
    build_image_provider,
    encode_png,
)
from shared.stages.style import StyleProfile
from shared.storage.cache import get_json, set_json

ASSET_CACHE_TTL_SECONDS = 30 * 24 * 3600
_CACHE_VERSION = "v1"


class Card(BaseModel):
    """A transparent RGBA PNG ``width`` (the output width) by ``height`` (its content) pixels."""

    model_config = ConfigDict(frozen=True)

    key: str
    width: int
    height: int


class GenerateAssetsInput(StageInput):
    style: StyleProfile
    width: int = Field(ge=16, le=4096)
    height: int = Field(ge=16, le=4096)
    title: str | None = Field(default=None, max_length=200)
    subtitle: str | None = Field(default=None, max_length=300)
    quotes: list[str] = Field(default_factory=list, max_length=20)


class GenerateAssetsOutput(StageOutput):
    backgrounds: list[str]  # 3 PNG keys at width x height; backgrounds[0] is the one used
    light_leak_key: str  # RGBA PNG at width x height, mostly transparent
    frame_key: str | None  # RGBA PNG border, or None for styles that want none
    gradient_mask_key: str  # RGBA PNG darkening top and bottom so text reads
    title_card: Card | None  # title + subtitle
    quote_cards: list[Card]  # one per quote, same order
    provider: str  # "procedural" or the image-model provider used
    cache_hits: int  # backgrounds found in the asset cache


def _provider(ctx: StageContext) -> ImageProvider:
    settings = ctx.runtime.settings
    key = settings.image_api_key.get_secret_value() if settings.image_api_key else None
    return build_image_provider(settings.image_provider, api_key=key)


def generate_assets(inp: GenerateAssetsInput, ctx: StageContext) -> GenerateAssetsOutput:
    """Raises what the image provider raises (ConfigurationError, TransientError, VidluxeError)."""
    provider = _provider(ctx)
    steps = len(VARIANTS) + 3 + (1 if inp.title or inp.subtitle else 0) + len(inp.quotes)
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        ctx.progress(done / steps)

    backgrounds: list[str] = []
    hits = 0
    for variant in VARIANTS:
        key, hit = _background(provider, inp, variant, ctx)
        backgrounds.append(key)
        hits += int(hit)
        advance()

    objects = ctx.runtime.objects
    light_leak_key = ctx.output_key("light_leak.png")
    objects.put_bytes(light_leak_key, encode_png(render_light_leak(inp.style, inp.width, inp.height)), "image/png")
    advance()
    frame = render_frame(inp.style, inp.width, inp.height)
    frame_key = None
    if frame is not None:
        frame_key = ctx.output_key("frame.png")
        objects.put_bytes(frame_key, encode_png(frame), "image/png")
    advance()
    gradient_mask_key = ctx.output_key("gradient_mask.png")
    objects.put_bytes(gradient_mask_key, encode_png(render_gradient_mask(inp.style, inp.width, inp.height)),
                      "image/png")
    advance()

    look = card_look(inp.style)
    title_card = None
    if (inp.title and inp.title.strip()) or (inp.subtitle and inp.subtitle.strip()):
        title_card = _save_card(render_title_card(inp.title, inp.subtitle, width=inp.width, look=look),
                                ctx.output_key("title_card.png"), ctx)
        advance()
    quote_cards = []
    for index, quote in enumerate(inp.quotes):
        quote_cards.append(_save_card(render_quote_card(quote, width=inp.width, look=look),
                                      ctx.output_key(f"quote_card_{index:02d}.png"), ctx))
        advance()
    return GenerateAssetsOutput(
        backgrounds=backgrounds, light_leak_key=light_leak_key, frame_key=frame_key,
        gradient_mask_key=gradient_mask_key, title_card=title_card, quote_cards=quote_cards,
        provider=provider.name, cache_hits=hits,
    )


def _save_card(image: Image.Image, key: str, ctx: StageContext) -> Card:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    ctx.runtime.objects.put_bytes(key, buffer.getvalue(), "image/png")
    return Card(key=key, width=image.width, height=image.height)


def background_cache_key(provider: ImageProvider, request: ImageRequest) -> str:
    """The content hash naming one generated background: provider, model, prompt, style, variant, size, seed."""
    document = {
        "provider": provider.name, "model": provider.model, "prompt": request.prompt,
        "style": request.style.model_dump(mode="json"), "variant": request.variant,
        "width": request.width, "height": request.height, "seed": request.seed,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _background(provider: ImageProvider, inp: GenerateAssetsInput, variant: Variant,
                ctx: StageContext) -> tuple[str, bool]:
    """The object key of one background, from the cache when it is there (and its object still exists)."""
    request = ImageRequest(
        prompt=build_background_prompt(inp.style, variant), style=inp.style, variant=variant,
        width=inp.width, height=inp.height, seed=style_seed(inp.style, variant) % (2**31),
    )
    digest = background_cache_key(provider, request)
    cache_key = f"asset:{_CACHE_VERSION}:{digest}"
    cached = get_json(ctx.runtime.cache, cache_key)
    if isinstance(cached, dict) and isinstance(cached.get("key"), str) and ctx.runtime.objects.exists(cached["key"]):
        return cached["key"], True
    data = provider.generate(request)
    if provider.name != "procedural":
        calls = ctx.usage.provider_calls
        calls[provider.name] = calls.get(provider.name, 0) + 1
    png = fit_png(data, inp.width, inp.height)
    key = f"cache/assets/{digest[:2]}/{digest}.png"
    ctx.runtime.objects.put_bytes(key, png, "image/png")
    set_json(ctx.runtime.cache, cache_key, {"key": key, "provider": provider.name, "variant": variant},
             ASSET_CACHE_TTL_SECONDS)
    return key, False


def fit_png(data: bytes, width: int, height: int) -> bytes:
    """``data`` as an RGB PNG of exactly ``width`` x ``height``: returned as is when it already is one,
    else scaled to cover and centre-cropped (a model's 9:16 is rarely the output's exact size).

    Raises VidluxeError (IMAGE_PROVIDER_NO_IMAGE) when the bytes are not an image.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format == "PNG" and opened.size == (width, height) and opened.mode == "RGB":
                return data
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise VidluxeError(f"The image provider returned something that is not an image ({exc}).",
                           code="IMAGE_PROVIDER_NO_IMAGE") from None
    fitted = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return encode_png(np.asarray(fitted, dtype=np.uint8))


def _hex(rgb: NDArray[np.float32]) -> str:
    r, g, b = (round(float(c) * 255) for c in np.clip(rgb, 0.0, 1.0))
    return f"#{r:02x}{g:02x}{b:02x}"


def card_look(style: StyleProfile) -> CardLook:
    """How a style dresses its cards: warm or cool white text, an accent bright enough to read on the
    gradient mask, serif type for elegant, epic and moody looks."""
    roles = Roles.of(style)
    accent = roles.accent
    luma = float(accent @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32))
    if luma < 0.55:  # lift a dark accent toward its own highlight so it shows on a dark scrim
        accent = accent + (np.ones(3, dtype=np.float32) - accent) * (0.55 - luma) / max(1e-3, 1.0 - luma)
    text = {"warm": "#fbf6ee", "neutral": "#fafafa", "cool": "#f4f8fa"}[style.temperature]
    serif = style.mood in ("elegant", "epic", "moody", "calm") or style.lighting == "dramatic"
    return CardLook(text=text, accent=_hex(accent), shadow=_hex(roles.shadow * 0.4), serif=serif)


GENERATE_ASSETS = Stage("generate_assets", GenerateAssetsInput, GenerateAssetsOutput, generate_assets, version=2)
