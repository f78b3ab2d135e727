"""StyleProfile, and the providers that learn one: the local analyzer and B-LoRA on Modal.

A StyleProfile is what the asset and compose stages draw from: a palette (dominant or backdrop colors
first, then an accent, a highlight), a color temperature, contrast, brightness, a lighting class, a mood
word and a surface texture.

Two ways to learn one, behind :class:`StyleProvider`:

- :meth:`StyleProvider.from_reference`: match a reference image's look (its palette, light and texture).
- :meth:`StyleProvider.from_keyframes`: design a backdrop that flatters the person in a video: it
  harmonizes with the dominant non-skin hues (clothes, hair, props) or, when those are neutral or close to
  skin, takes the cool complement of skin; it sits a step darker (or lighter) than the face so the person
  separates from it, and it keeps saturation and contrast moderate so it never competes with them.

:class:`LocalStyleProvider` does both with numpy and Pillow. :class:`BLoraStyleProvider` sends the
reference image to the Modal function ``vidluxe-style/extract_style`` (a B-LoRA style extractor on a
GPU) and reads a profile back; keyframes stay local, since a backdrop that complements a person is not a
style to copy.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ConfigurationError, InvalidInputError, TransientError, VidluxeError

PALETTE_SIZE = 5

Lighting = Literal["soft", "dramatic", "natural"]
Temperature = Literal["warm", "neutral", "cool"]
Texture = Literal["smooth", "grain", "soft-focus", "paper"]


class StyleProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str  # "preset:<name>", "reference:<sha256 prefix>" or "keyframes:<sha256 prefix>"
    palette: list[str] = Field(min_length=2)  # "#rrggbb": backdrop tones first, then accent, highlight
    temperature: Temperature
    contrast: float = Field(ge=0, le=1)
    brightness: float = Field(ge=0, le=1)
    lighting: Lighting
    mood: str
    texture: Texture = "grain"  # the surface of generated backgrounds


class StyleProvider(Protocol):
    """Learns a StyleProfile. Implementations are pure with respect to VidLuxe's stores."""

    name: str

    def from_reference(self, image: bytes, *, source: str) -> StyleProfile:
        """The look of a reference image (JPEG, PNG or WebP bytes).

        Raises InvalidInputError (REFERENCE_NOT_IMAGE) when the bytes are not a readable image.
        """
        ...

    def from_keyframes(self, frames: Sequence[NDArray[np.uint8]], *, source: str) -> StyleProfile:
        """A backdrop style that flatters the person in these RGB frames ([H, W, 3] uint8 each)."""
        ...


# ---------------------------------------------------------------------------------------------------------
# Local analysis (pure functions)


def _hex(rgb: Sequence[float]) -> str:
    """'#rrggbb' from RGB floats in 0..1."""
    r, g, b = (round(min(1.0, max(0.0, c)) * 255) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _hsv_hex(hue_degrees: float, saturation: float, value: float) -> str:
    return _hex(colorsys.hsv_to_rgb((hue_degrees % 360) / 360, min(1.0, max(0.0, saturation)),
                                    min(1.0, max(0.0, value))))


def _temperature_of_hue(hue_degrees: float, saturation: float) -> Temperature:
    if saturation < 0.08:
        return "neutral"
    hue = hue_degrees % 360
    if hue < 75 or hue >= 330:
        return "warm"
    if 150 <= hue < 290:
        return "cool"
    return "neutral"


def _luma(pixels: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(pixels @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32), dtype=np.float32)


def _open_image(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInputError(
            f"The style reference is not a readable image ({exc}). Use a JPEG, PNG or WebP.",
            code="REFERENCE_NOT_IMAGE",
        ) from None


def _texture_of(image: Image.Image, contrast: float, brightness: float, saturation: float) -> Texture:
    """Classify the surface: fine noise (grain), no fine detail (soft-focus), pale and matte (paper)."""
    gray = image.convert("L")
    blurred = gray.filter(ImageFilter.GaussianBlur(1.5))
    fine = np.abs(np.asarray(gray, dtype=np.float32) - np.asarray(blurred, dtype=np.float32)) / 255.0
    detail = float(np.median(fine))  # the median ignores edges: what is left is noise and fine texture
    if detail > 0.02:
        return "grain"
    if detail < 0.004 and contrast < 0.55:
        return "soft-focus"
    if brightness > 0.6 and saturation < 0.2:
        return "paper"
    return "smooth"


def analyze_reference(data: bytes, *, source: str) -> StyleProfile:
    """Measure palette, temperature, contrast, lighting and texture of an image (pure; no I/O).

    Raises InvalidInputError (REFERENCE_NOT_IMAGE) when ``data`` is not a readable image.
    """
    image = _open_image(data)
    image.thumbnail((256, 256))
    pixels = np.asarray(image, dtype=np.float32) / 255.0  # [H, W, 3]

    quantized = image.quantize(colors=PALETTE_SIZE, method=Image.Quantize.MEDIANCUT)
    counts: list[tuple[int, int]] = sorted(quantized.getcolors() or [], reverse=True)  # type: ignore[arg-type]
    raw_palette = quantized.getpalette() or []
    palette = ["#{:02x}{:02x}{:02x}".format(*raw_palette[3 * index : 3 * index + 3]) for _, index in counts]
    while len(palette) < 2:  # a flat image still yields a usable two-tone palette
        palette.append(palette[-1] if palette else "#808080")

    luma = _luma(pixels)
    brightness = float(luma.mean())
    contrast = float(min(1.0, luma.std() / 0.3))
    warmth = float((pixels[..., 0] - pixels[..., 2]).mean())
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)
    saturation = float((spread / np.maximum(pixels.max(axis=-1), 1e-3)).mean())
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
        texture=_texture_of(image, contrast, brightness, saturation),
    )


def skin_mask(rgb: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Likely skin pixels of an [..., 3] RGB array in 0..1 (the YCrCb box that covers most skin tones)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = (r - y) * 0.713 * 255 + 128
    cb = (b - y) * 0.564 * 255 + 128
    return np.asarray((cr >= 135) & (cr <= 175) & (cb >= 80) & (cb <= 130) & (y > 0.16) & (y < 0.96))


def _hsv(rgb: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Hue in degrees, saturation and value of an [N, 3] RGB array in 0..1 (vectorized)."""
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    delta = high - low
    safe = np.where(delta > 1e-6, delta, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.where(high == r, ((g - b) / safe) % 6, np.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = np.where(delta > 1e-6, hue * 60.0, 0.0)
    saturation = np.where(high > 1e-6, delta / np.maximum(high, 1e-6), 0.0)
    return hue.astype(np.float32), saturation.astype(np.float32), high.astype(np.float32)


def _circular_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def analyze_keyframes(frames: Sequence[NDArray[np.uint8]], *, source: str) -> StyleProfile:
    """A complementary backdrop style for the person seen in ``frames`` (pure; no I/O).

    The person usually stands in the middle of a talking-head frame, so pixels are weighted toward the
    center column. Skin is found with a YCrCb rule; among the other pixels the dominant hue (weighted by
    saturation) stands for clothes and hair.
    """
    if not frames:
        raise ValueError("analyze_keyframes needs at least one frame")
    samples: list[NDArray[np.float32]] = []
    weights: list[NDArray[np.float32]] = []
    torsos: list[NDArray[np.float32]] = []
    for frame in frames:
        image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
        image.thumbnail((160, 160))
        small = np.asarray(image, dtype=np.float32) / 255.0
        h, w = small.shape[:2]
        x = (np.arange(w, dtype=np.float32) + 0.5) / w
        center = np.exp(-(((x - 0.5) / 0.28) ** 2))[None, :] * np.ones((h, 1), dtype=np.float32)
        samples.append(small.reshape(-1, 3))
        weights.append(center.reshape(-1))
        torsos.append(small[h // 2 :, int(w * 0.3) : int(w * 0.7)].reshape(-1, 3))
    pixels = np.concatenate(samples)
    weight = np.concatenate(weights)

    skin = skin_mask(pixels)
    luma = _luma(pixels)
    face = luma[skin] if int(skin.sum()) >= 50 else luma[weight > 0.6]
    torso = np.concatenate(torsos)
    clothes = _luma(torso[~skin_mask(torso)])
    # How light the person reads overall: the face and what they wear, equally.
    subject_luma = 0.5 * (float(np.median(face)) if face.size else 0.5) + 0.5 * (
        float(np.median(clothes)) if clothes.size else 0.5)
    skin_hue = 25.0
    if int(skin.sum()) >= 50:
        skin_hues, _, _ = _hsv(pixels[skin])
        skin_hue = float(np.degrees(np.angle(np.exp(1j * np.radians(skin_hues)).mean()))) % 360

    hue, saturation, value = _hsv(pixels[~skin])
    chroma_weight = saturation * value * weight[~skin]
    chroma_weight = np.where((value > 0.12) & (saturation > 0.12), chroma_weight, 0.0)
    histogram = np.bincount((hue // 10).astype(np.int64) % 36, weights=chroma_weight, minlength=36)
    smoothed = histogram + 0.5 * (np.roll(histogram, 1) + np.roll(histogram, -1))
    total = float(chroma_weight.sum())
    dominant_bin = int(np.argmax(smoothed))
    dominant_hue = dominant_bin * 10.0 + 5.0
    share = float(smoothed[dominant_bin] / (2.0 * total)) if total > 0 else 0.0
    colorful = total / max(float(weight[~skin].sum()), 1e-6)  # mean chroma of the non-skin pixels

    if colorful > 0.04 and share > 0.25 and _circular_distance(dominant_hue, skin_hue) > 40:
        # Harmonize: an analogous, quieter version of the clothes' hue, turned a little away from skin.
        away = 1.0 if ((dominant_hue - skin_hue) % 360) < 180 else -1.0
        base_hue = dominant_hue + 12.0 * away
        accent_hue, accent_sat = base_hue - 25.0 * away, 0.35
        base_sat = 0.30
    else:
        # Neutral or skin-like clothes: the cool complement of skin (teal-slate), with a warm accent light.
        base_hue = (skin_hue + 180.0 + 15.0) % 360
        accent_hue, accent_sat = skin_hue + 10.0, 0.45
        base_sat = 0.26

    # A light-toned person separates from a deeper backdrop, a dark-toned one from a lighter backdrop.
    dark_backdrop = subject_luma >= 0.4
    value_base = 0.34 if dark_backdrop else 0.74
    if not dark_backdrop:
        base_sat *= 0.75  # pale walls read as colored long before dark ones do
    palette = [
        _hsv_hex(base_hue, base_sat, value_base),
        _hsv_hex(base_hue + 6, base_sat * 1.15, value_base * (0.55 if dark_backdrop else 0.82)),
        _hsv_hex(accent_hue, accent_sat, 0.9),
        _hsv_hex(base_hue, 0.08, 0.95),
        _hsv_hex(dominant_hue if colorful > 0.04 else base_hue, 0.28, 0.5),
    ]
    base_rgb = colorsys.hsv_to_rgb((base_hue % 360) / 360, base_sat, value_base)
    brightness = float(0.2126 * base_rgb[0] + 0.7152 * base_rgb[1] + 0.0722 * base_rgb[2])
    return StyleProfile(
        source=source, palette=palette, temperature=_temperature_of_hue(base_hue, base_sat),
        contrast=0.5, brightness=round(brightness, 3), lighting="soft",
        mood="intimate" if dark_backdrop else "airy", texture="soft-focus" if dark_backdrop else "paper",
    )


# ---------------------------------------------------------------------------------------------------------
# Providers


class LocalStyleProvider:
    """The embedded provider: :func:`analyze_reference` and :func:`analyze_keyframes` on this CPU."""

    name = "local"

    def from_reference(self, image: bytes, *, source: str) -> StyleProfile:
        return analyze_reference(image, source=source)

    def from_keyframes(self, frames: Sequence[NDArray[np.uint8]], *, source: str) -> StyleProfile:
        return analyze_keyframes(frames, source=source)


FunctionLookup = Callable[[str, str], Any]


def _modal_lookup(app_name: str, function_name: str) -> Any:
    import modal

    return modal.Function.from_name(app_name, function_name)


class BLoraStyleProvider:
    """B-LoRA style extraction on a Modal GPU function.

    The call is ``modal.Function.from_name("vidluxe-style", "extract_style").remote(image=<bytes>,
    palette_size=5)``; the function returns a dict with the StyleProfile fields (``palette``,
    ``temperature``, ``contrast``, ``brightness``, ``lighting``, ``mood``, ``texture``) and may add its own
    (such as where it stored the learned LoRA), which are ignored here. ``source`` is set by the caller.
    Keyframes are analyzed locally (see the module docstring).

    Errors: ConfigurationError (STYLE_PROVIDER_NOT_DEPLOYED) when the app or function does not exist;
    TransientError (STYLE_PROVIDER_UNAVAILABLE) for any other failure of the call, so the state's Retry
    applies; VidluxeError (STYLE_PROVIDER_BAD_RESPONSE) when the answer is not a profile.
    """

    name = "blora"

    def __init__(
        self, *, app_name: str = "vidluxe-style", function_name: str = "extract_style",
        lookup: FunctionLookup | None = None, local: StyleProvider | None = None,
    ) -> None:
        self.app_name = app_name
        self.function_name = function_name
        self._lookup = lookup or _modal_lookup
        self._local = local or LocalStyleProvider()

    def from_reference(self, image: bytes, *, source: str) -> StyleProfile:
        _open_image(image)  # fail fast, and with the same code as the local provider, on a non-image
        try:
            function = self._lookup(self.app_name, self.function_name)
            result = function.remote(image=image, palette_size=PALETTE_SIZE)
        except Exception as exc:
            if type(exc).__name__ == "NotFoundError":  # modal.exception.NotFoundError
                raise ConfigurationError(
                    f"The Modal function {self.app_name}/{self.function_name} is not deployed ({exc}).",
                    code="STYLE_PROVIDER_NOT_DEPLOYED",
                ) from exc
            raise TransientError(
                f"B-LoRA style extraction failed: {type(exc).__name__}: {exc}", code="STYLE_PROVIDER_UNAVAILABLE"
            ) from exc
        if not isinstance(result, dict):
            raise VidluxeError(
                f"B-LoRA style extraction returned {type(result).__name__}, not a profile.",
                code="STYLE_PROVIDER_BAD_RESPONSE",
            )
        try:
            return StyleProfile.model_validate({**result, "source": source})
        except ValidationError as exc:
            raise VidluxeError(
                f"B-LoRA style extraction returned an invalid profile: {exc.errors(include_url=False)}",
                code="STYLE_PROVIDER_BAD_RESPONSE",
            ) from exc

    def from_keyframes(self, frames: Sequence[NDArray[np.uint8]], *, source: str) -> StyleProfile:
        return self._local.from_keyframes(frames, source=source)


STYLE_PROVIDERS = ("local", "blora")


def build_style_provider(name: str) -> StyleProvider:
    """The style provider called ``name`` ("local" or "blora"; "b-lora" is accepted too).

    Raises ConfigurationError (UNKNOWN_STYLE_PROVIDER) for any other name.
    """
    normalized = name.strip().lower().replace("-", "").replace("_", "")
    if normalized == "local":
        return LocalStyleProvider()
    if normalized == "blora":
        return BLoraStyleProvider()
    raise ConfigurationError(
        f"Unknown style provider {name!r}; choose one of {', '.join(STYLE_PROVIDERS)}.",
        code="UNKNOWN_STYLE_PROVIDER",
    )
