"""Image providers: the prompt, procedural, and the two cloud models faked at their HTTP boundary.

Replicate is driven through the real ``replicate`` SDK whose httpx transport is an ``httpx.MockTransport``
answering with the documented prediction shape; Gemini through an ``httpx.Client`` with a MockTransport
answering ``generateContent``'s documented response.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from replicate.client import Client

from shared.errors import ConfigurationError, TransientError, VidluxeError
from shared.providers.images import (
    GEMINI_BASE_URL,
    ImageRequest,
    NanoBananaProvider,
    ProceduralImageProvider,
    ReplicateFluxProvider,
    build_background_prompt,
    build_image_provider,
    color_name,
)
from shared.stages.style import PRESETS

DELIVERY_URL = "https://replicate.delivery/xezq/abc123/out-0.png"


def _png(width: int = 48, height: int = 80, color: tuple[int, int, int] = (40, 60, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _request(width: int = 1080, height: int = 1920) -> ImageRequest:
    style = PRESETS["luxury"]
    return ImageRequest(prompt=build_background_prompt(style, "bokeh"), style=style, variant="bokeh",
                        width=width, height=height, seed=1234)


# --- prompt ------------------------------------------------------------------------------------------------


def test_prompt_describes_the_style_and_forbids_people_and_text() -> None:
    style = PRESETS["luxury"]
    prompts = {variant: build_background_prompt(style, variant) for variant in ("studio", "bokeh", "window")}
    assert len(set(prompts.values())) == 3
    for prompt in prompts.values():
        assert "no people" in prompt and "no text" in prompt and "9:16" in prompt
        assert "#c9a45c" in prompt and "gold" in prompt
        assert "dramatic" in prompt and "warm" in prompt and "elegant" in prompt
    assert "bokeh" in prompts["bokeh"] and "window" in prompts["window"]
    assert "paper texture" in build_background_prompt(PRESETS["minimal"], "studio")


def test_color_names() -> None:
    assert color_name("#c9a45c") == "gold"
    assert color_name("#e8d5a8") == "muted gold"
    assert color_name("#14110f") == "charcoal"
    assert color_name("#0f1c24") == "near-black muted teal"
    assert color_name("#f4f1ec") == "ivory"
    assert color_name("#3a3835") == "deep gray"
    assert color_name("#d98c4a") == "orange"


# --- procedural --------------------------------------------------------------------------------------------


def test_procedural_renders_the_exact_size() -> None:
    data = ProceduralImageProvider().generate(_request(90, 160))
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size == (90, 160) and image.mode == "RGB"


def test_build_image_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert isinstance(build_image_provider("procedural"), ProceduralImageProvider)
    assert build_image_provider("").name == "procedural"
    for name in ("replicate-flux", "nano-banana"):
        with pytest.raises(ConfigurationError) as caught:
            build_image_provider(name)
        assert caught.value.code == "IMAGE_PROVIDER_NO_KEY"
    assert build_image_provider("flux", api_key="r8_x").name == "replicate-flux"
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    assert build_image_provider("nano-banana").name == "nano-banana"
    with pytest.raises(ConfigurationError) as unknown:
        build_image_provider("dall-e")
    assert unknown.value.code == "UNKNOWN_IMAGE_PROVIDER"


# --- Replicate Flux ----------------------------------------------------------------------------------------


def _prediction(status: str, output: Any = None, error: str | None = None) -> dict[str, Any]:
    return {
        "id": "gm3qorzdhgbfurvjtvhg6dckhu", "model": "black-forest-labs/flux-schnell", "version": "hidden",
        "input": {}, "logs": "", "output": output, "data_removed": False, "error": error, "status": status,
        "created_at": "2026-11-23T10:00:00.000Z",
        "urls": {
            "cancel": "https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu/cancel",
            "get": "https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu",
            "stream": "https://stream.replicate.com/v1/files/abc",
        },
    }


def _replicate(handler: Any) -> Client:
    return Client(api_token="r8_test_token", transport=httpx.MockTransport(handler))


def test_flux_runs_the_model_and_reads_the_file_output() -> None:
    seen: list[httpx.Request] = []
    image = _png()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(201, json=_prediction("succeeded", output=[DELIVERY_URL]))
        if str(request.url) == DELIVERY_URL:
            return httpx.Response(200, content=image, headers={"Content-Type": "image/png"})
        return httpx.Response(404)

    provider = ReplicateFluxProvider(client=_replicate(handler))
    assert provider.generate(_request()) == image

    create = seen[0]
    assert create.method == "POST"
    assert create.url == "https://api.replicate.com/v1/models/black-forest-labs/flux-schnell/predictions"
    assert create.headers["Authorization"] == "Bearer r8_test_token"
    assert create.headers["Prefer"].startswith("wait")
    body = json.loads(create.content)
    assert body["input"] == {
        "prompt": _request().prompt, "aspect_ratio": "9:16", "num_outputs": 1, "output_format": "png",
        "seed": 1234, "go_fast": True, "megapixels": "1", "num_inference_steps": 4,
    }
    assert seen[1].method == "GET" and str(seen[1].url) == DELIVERY_URL


def test_flux_aspect_ratio_follows_the_output() -> None:
    provider = ReplicateFluxProvider(client=object())
    assert provider.request_input(_request(1080, 1080))["aspect_ratio"] == "1:1"
    assert provider.request_input(_request(1920, 1080))["aspect_ratio"] == "16:9"
    assert provider.request_input(_request(1080, 1350))["aspect_ratio"] == "4:5"


def test_flux_failures_are_classified() -> None:
    failed = _replicate(lambda request: httpx.Response(201, json=_prediction("failed", error="NSFW content detected")))
    with pytest.raises(VidluxeError) as caught:
        ReplicateFluxProvider(client=failed).generate(_request())
    assert caught.value.code == "IMAGE_PROVIDER_FAILED"

    problem = {"type": "https://replicate.com/docs/errors", "title": "Unauthenticated",
               "detail": "You did not pass a valid authentication token", "status": 401}
    unauthorized = _replicate(lambda request: httpx.Response(401, json=problem))
    with pytest.raises(ConfigurationError) as auth:
        ReplicateFluxProvider(client=unauthorized).generate(_request())
    assert auth.value.code == "IMAGE_PROVIDER_AUTH"

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TransientError):
        ReplicateFluxProvider(client=_replicate(unreachable)).generate(_request())


# --- Nano Banana (Gemini 2.5 Flash Image) ------------------------------------------------------------------


def _gemini(handler: Any) -> NanoBananaProvider:
    return NanoBananaProvider(api_key="g-test-key", http=httpx.Client(transport=httpx.MockTransport(handler)))


def _generate_content_response(data: bytes) -> dict[str, Any]:
    return {
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Here is a softly lit backdrop."},
                {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}},
            ]},
            "finishReason": "STOP", "index": 0,
        }],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 1290, "totalTokenCount": 1410},
        "modelVersion": "gemini-2.5-flash-image",
    }


def test_nano_banana_calls_generate_content_and_decodes_the_inline_image() -> None:
    image = _png(color=(200, 180, 140))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_generate_content_response(image))

    assert _gemini(handler).generate(_request()) == image
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"{GEMINI_BASE_URL}/models/gemini-2.5-flash-image:generateContent"
    assert request.headers["x-goog-api-key"] == "g-test-key"
    body = json.loads(request.content)
    assert body["contents"] == [{"role": "user", "parts": [{"text": _request().prompt}]}]
    assert body["generationConfig"] == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "9:16"}}


@pytest.mark.parametrize(("status", "error", "code"), [
    (429, TransientError, "IMAGE_PROVIDER_UNAVAILABLE"),
    (503, TransientError, "IMAGE_PROVIDER_UNAVAILABLE"),
    (403, ConfigurationError, "IMAGE_PROVIDER_AUTH"),
    (400, VidluxeError, "IMAGE_PROVIDER_REJECTED"),
])
def test_nano_banana_http_errors(status: int, error: type[VidluxeError], code: str) -> None:
    body = {"error": {"code": status, "message": "something went wrong", "status": "ERROR"}}
    with pytest.raises(error) as caught:
        _gemini(lambda request: httpx.Response(status, json=body)).generate(_request())
    assert caught.value.code == code
    assert "something went wrong" in caught.value.message


def test_nano_banana_without_an_image_part() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}}
    with pytest.raises(VidluxeError) as caught:
        _gemini(lambda request: httpx.Response(200, json=blocked)).generate(_request())
    assert caught.value.code == "IMAGE_PROVIDER_NO_IMAGE" and "SAFETY" in caught.value.message

    text_only = {"candidates": [{"content": {"parts": [{"text": "I can't draw that."}]}, "finishReason": "STOP"}]}
    with pytest.raises(VidluxeError):
        _gemini(lambda request: httpx.Response(200, json=text_only)).generate(_request())


def test_nano_banana_network_failure_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(TransientError):
        _gemini(handler).generate(_request())


def test_fake_images_decode() -> None:
    with Image.open(io.BytesIO(_png())) as image:
        assert np.asarray(image).shape == (80, 48, 3)
