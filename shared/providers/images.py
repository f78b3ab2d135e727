"""Background images behind one interface: procedural (embedded), Replicate Flux, Google's Nano Banana.

An :class:`ImageProvider` turns an :class:`ImageRequest` (a prompt built from the style by
:func:`build_background_prompt`, the style itself, a design variant, a size and a seed) into encoded image
bytes. Cloud models return their own sizes; the caller fits the picture to the output (cover and crop).

- ``procedural``: :func:`shared.media.procedural.render_background`; ignores the prompt, exact size.
- ``replicate-flux``: ``replicate.Client(api_token=...).run("black-forest-labs/flux-schnell",
  input={...})`` with the model's documented inputs (prompt, aspect_ratio, num_outputs, output_format,
  seed, go_fast, megapixels, num_inference_steps); the SDK answers with a list of FileOutput objects.
- ``nano-banana``: Gemini 2.5 Flash Image over REST, ``POST .../v1beta/models/gemini-2.5-flash-image:
  generateContent`` with ``x-goog-api-key``; the image comes back base64 in
  ``candidates[0].content.parts[].inlineData``.

Errors are VidluxeErrors: ConfigurationError for a missing or rejected key, TransientError for network
failures, throttling and server errors (the state's Retry applies), VidluxeError with an
``IMAGE_PROVIDER_*`` code when the model refuses or answers without an image.
"""

from __future__ import annotations

import base64
import colorsys
import io
import math
import os
from typing import Any, Protocol

import httpx
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ConfigurationError, TransientError, VidluxeError
from shared.media.procedural import Variant, render_background
from shared.providers.style import StyleProfile


class ImageRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt: str
    style: StyleProfile
    variant: Variant
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    seed: int = Field(ge=0)


class ImageProvider(Protocol):
    name: str  # what GenerateAssetsOutput.provider reports
    model: str  # the model (and version) whose output the cache key names

    def generate(self, request: ImageRequest) -> bytes:
        """Encoded image bytes (PNG, JPEG or WebP) for the request; any size (the caller fits it)."""
        ...


# ---------------------------------------------------------------------------------------------------------
# Prompt

_VARIANT_SCENES: dict[str, str] = {
    "studio": "a seamless paper studio backdrop, a soft pool of background light behind where a person would "
              "stand, the paper curving gently into the floor, subtle vignette",
    "bokeh": "a softly out-of-focus interior at night, round bokeh highlights drifting in the upper part of the "
             "frame, a gradient from dark to light",
    "window": "a plaster wall with warm window light falling across it at an angle, soft shadows of window "
              "panes and a few leaves",
}
_LIGHTING = {"soft": "soft, diffused", "dramatic": "low-key, dramatic", "natural": "natural daylight"}
_TEXTURE = {
    "smooth": "clean and smooth", "grain": "fine film grain", "soft-focus": "dreamy soft focus with gentle bloom",
    "paper": "matte paper texture",
}
_HUES = [(15, "red"), (35, "orange"), (52, "gold"), (70, "yellow"), (150, "green"), (205, "teal"),
         (250, "blue"), (290, "violet"), (335, "magenta"), (361, "red")]


def color_name(hex_color: str) -> str:
    """A plain-words name for a color ("deep muted teal", "pale warm gray"), which image models follow
    better than hex codes alone."""
    r, g, b = (int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue, lightness, _ = colorsys.rgb_to_hls(r, g, b)
    chroma = max(r, g, b) - min(r, g, b)
    tone = "near-black" if lightness < 0.12 else "deep" if lightness < 0.3 else "pale" if lightness > 0.8 else ""
    if chroma < 0.06:
        if lightness < 0.2 or lightness > 0.9:
            return "charcoal" if lightness < 0.2 else "ivory"
        warmth = "warm " if r - b > 0.03 else "cool " if b - r > 0.03 else ""
        return f"{tone} {warmth}gray".strip()
    degrees = hue * 360
    hue_name = next(name for limit, name in _HUES if degrees < limit)
    muted = "muted " if chroma < 0.3 else ""
    return " ".join(part for part in (tone, f"{muted}{hue_name}".strip()) if part)


def build_background_prompt(style: StyleProfile, variant: Variant) -> str:
    """The image-model prompt for one background design in a style (seed 000's buildBackgroundPrompt).

    It asks for an empty backdrop (no people, no text) with room in the middle for the person, in the
    style's palette, lighting, temperature, mood and texture.
    """
    colors = ", ".join(f"{color_name(c)} ({c})" for c in style.palette[:4])
    key = "mid-key"
    if style.brightness < 0.4 or style.brightness > 0.65:
        key = "low-key, mostly dark" if style.brightness < 0.4 else "high-key, bright"
    return (
        f"Vertical 9:16 background plate for a premium talking-head video: {_VARIANT_SCENES[variant]}. "
        f"Empty scene: no people, no faces, no text, no logos, no watermarks; keep the center calm and "
        f"uncluttered for a person to be placed in front. {_LIGHTING[style.lighting].capitalize()} lighting, "
        f"{style.temperature} color temperature, {key}, "
        f"{'high' if style.contrast > 0.65 else 'low' if style.contrast < 0.4 else 'moderate'} contrast, "
        f"{style.mood} mood. Color palette: {colors}. Surface: {_TEXTURE[style.texture]}. "
        f"Shot like high-end editorial photography, shallow depth of field."
    )


def _nearest_ratio(width: int, height: int, allowed: tuple[str, ...]) -> str:
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(math.log(w / h) - target)

    return min(allowed, key=distance)


# ---------------------------------------------------------------------------------------------------------
# Procedural


class ProceduralImageProvider:
    """Renders on this CPU (see :mod:`shared.media.procedural`); the prompt is not used."""

    name = "procedural"
    model = "procedural-v1"

    def generate(self, request: ImageRequest) -> bytes:
        pixels = render_background(request.style, request.width, request.height, variant=request.variant,
                                   seed=request.seed)
        return encode_png(pixels)


def encode_png(pixels: np.ndarray[Any, Any], *, compress_level: int = 1) -> bytes:
    """PNG bytes of an RGB or RGBA uint8 array. Level 1 is ~5x faster than the default and, on grainy
    pictures, hardly larger."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------
# Replicate Flux

FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")


class ReplicateFluxProvider:
    """FLUX.1 [schnell] on Replicate through the ``replicate`` SDK.

    ``client`` is a ``replicate.Client`` (tests pass one whose HTTP transport is faked); without it one is
    built from ``api_token`` (or the SDK's own REPLICATE_API_TOKEN).
    """

    name = "replicate-flux"

    def __init__(self, *, api_token: str | None = None, client: Any = None,
                 model: str = "black-forest-labs/flux-schnell") -> None:
        self.model = model
        if client is None:
            token = api_token or os.environ.get("REPLICATE_API_TOKEN")
            if not token:
                raise ConfigurationError(
                    "The replicate-flux image provider needs an API token (REPLICATE_API_TOKEN).",
                    code="IMAGE_PROVIDER_NO_KEY",
                )
            from replicate.client import Client

            client = Client(api_token=token)
        self._client = client

    def request_input(self, request: ImageRequest) -> dict[str, Any]:
        """The model input for a request (flux-schnell's documented fields)."""
        return {
            "prompt": request.prompt,
            "aspect_ratio": _nearest_ratio(request.width, request.height, FLUX_RATIOS),
            "num_outputs": 1,
            "output_format": "png",
            "seed": request.seed % (2**31),
            "go_fast": True,
            "megapixels": "1",
            "num_inference_steps": 4,
        }

    def generate(self, request: ImageRequest) -> bytes:
        from replicate.exceptions import ModelError, ReplicateError

        try:
            output = self._client.run(self.model, input=self.request_input(request))
            item = output[0] if isinstance(output, list | tuple) else output
            if hasattr(item, "read"):
                data = item.read()
            elif isinstance(item, str):
                data = _fetch(item)
            elif isinstance(item, bytes | bytearray):
                data = bytes(item)
            else:
                raise VidluxeError(f"Flux returned {type(item).__name__}, not an image.",
                                   code="IMAGE_PROVIDER_NO_IMAGE")
        except ModelError as exc:
            raise VidluxeError(f"Flux failed to generate the background: {exc}", code="IMAGE_PROVIDER_FAILED") from exc
        except ReplicateError as exc:
            raise _status_error("Replicate", exc.status, str(exc)) from exc
        except httpx.HTTPStatusError as exc:
            raise _status_error("Replicate", exc.response.status_code, str(exc)) from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"Replicate could not be reached: {exc}", code="IMAGE_PROVIDER_UNAVAILABLE") from exc
        if not data:
            raise VidluxeError("Flux returned an empty image.", code="IMAGE_PROVIDER_NO_IMAGE")
        return bytes(data)


def _fetch(url: str) -> bytes:
    if url.startswith("data:"):
        return base64.b64decode(url.split(",", 1)[1])
    response = httpx.get(url, timeout=60, follow_redirects=True)
    response.raise_for_status()
    return response.content


def _status_error(service: str, status: int | None, detail: str) -> VidluxeError:
    if status in (401, 403):
        return ConfigurationError(f"{service} rejected the API key ({status}): {detail}", code="IMAGE_PROVIDER_AUTH")
    if status is None or status == 429 or status >= 500:
        return TransientError(f"{service} is unavailable ({status}): {detail}", code="IMAGE_PROVIDER_UNAVAILABLE")
    return VidluxeError(f"{service} rejected the request ({status}): {detail}", code="IMAGE_PROVIDER_REJECTED")


# ---------------------------------------------------------------------------------------------------------
# Google Nano Banana (Gemini 2.5 Flash Image)

GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"


class NanoBananaProvider:
    """Gemini 2.5 Flash Image ("Nano Banana") through the Gemini API's ``generateContent`` REST call.

    ``http`` is an ``httpx.Client`` (tests pass one with an ``httpx.MockTransport``).
    """

    name = "nano-banana"

    def __init__(self, *, api_key: str | None = None, http: httpx.Client | None = None,
                 model: str = "gemini-2.5-flash-image", base_url: str = GEMINI_BASE_URL) -> None:
        key = api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not key:
            raise ConfigurationError(
                "The nano-banana image provider needs a Gemini API key (GEMINI_API_KEY).", code="IMAGE_PROVIDER_NO_KEY"
            )
        self.model = model
        self._key = key
        self._url = f"{base_url.rstrip('/')}/models/{model}:generateContent"
        self._http = http or httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0))

    def request_body(self, request: ImageRequest) -> dict[str, Any]:
        return {
            "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
            "generationConfig": {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": _nearest_ratio(request.width, request.height, GEMINI_RATIOS)},
            },
        }

    def generate(self, request: ImageRequest) -> bytes:
        try:
            response = self._http.post(
                self._url, json=self.request_body(request),
                headers={"x-goog-api-key": self._key, "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"The Gemini API could not be reached: {exc}",
                                 code="IMAGE_PROVIDER_UNAVAILABLE") from exc
        if response.status_code != 200:
            raise _status_error("The Gemini API", response.status_code, _gemini_error(response))
        try:
            document = response.json()
        except ValueError as exc:
            raise TransientError("The Gemini API answered with invalid JSON.",
                                 code="IMAGE_PROVIDER_UNAVAILABLE") from exc
        for candidate in document.get("candidates") or []:
            for part in (candidate.get("content") or {}).get("parts") or []:
                inline = part.get("inlineData") or part.get("inline_data")
                if inline and str(inline.get("mimeType", inline.get("mime_type", ""))).startswith("image/"):
                    return base64.b64decode(inline["data"])
        reason = (document.get("promptFeedback") or {}).get("blockReason") or next(
            (c.get("finishReason") for c in document.get("candidates") or [] if c.get("finishReason")), "no image part"
        )
        raise VidluxeError(f"Gemini returned no image ({reason}).", code="IMAGE_PROVIDER_NO_IMAGE")


def _gemini_error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("message", response.text[:300]))
    except ValueError:
        return response.text[:300]


IMAGE_PROVIDERS = ("procedural", "replicate-flux", "nano-banana")


def build_image_provider(name: str, *, api_key: str | None = None) -> ImageProvider:
    """The image provider called ``name``: "procedural" (default), "replicate-flux" ("flux" too) or
    "nano-banana" ("gemini" too). ``api_key`` is the provider's key; without it the provider's usual
    environment variable is read (REPLICATE_API_TOKEN, GEMINI_API_KEY).

    Raises ConfigurationError: UNKNOWN_IMAGE_PROVIDER, or IMAGE_PROVIDER_NO_KEY for a cloud provider
    without a key.
    """
    normalized = name.strip().lower().replace("_", "-")
    if normalized in ("", "procedural", "local"):
        return ProceduralImageProvider()
    if normalized in ("replicate-flux", "flux", "replicate"):
        return ReplicateFluxProvider(api_token=api_key)
    if normalized in ("nano-banana", "nanobanana", "gemini"):
        return NanoBananaProvider(api_key=api_key)
    raise ConfigurationError(
        f"Unknown image provider {name!r}; choose one of {', '.join(IMAGE_PROVIDERS)}.", code="UNKNOWN_IMAGE_PROVIDER"
    )
