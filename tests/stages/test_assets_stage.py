"""Generate assets: the stage's outputs, the 30-day background cache, and an image-model provider in place."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import shared.stages.assets as assets_module
from shared.errors import VidluxeError
from shared.pipeline.execution import create_task
from shared.pipeline.runtime import Runtime
from shared.pipeline.stage import StageContext, execute_stage
from shared.providers.images import ImageRequest
from shared.settings import Settings
from shared.stages.assets import (
    ASSET_CACHE_TTL_SECONDS,
    GENERATE_ASSETS,
    GenerateAssetsInput,
    GenerateAssetsOutput,
    card_look,
    fit_png,
    generate_assets,
)
from shared.stages.style import PRESETS

W, H = 270, 480


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(home=tmp_path / "home", object_store="local", task_store="sqlite", cache="local")
    with Runtime.from_settings(settings) as rt:
        yield rt


def _ctx(runtime: Runtime, tmp_path: Path, task: str = "tsk_assets") -> StageContext:
    scratch = tmp_path / f"scratch-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    return StageContext(task_id=task, stage="generate_assets", attempt=1, input_hash=uuid.uuid4().hex * 2,
                        runtime=runtime, scratch=scratch)


def _image(runtime: Runtime, key: str) -> Image.Image:
    with Image.open(io.BytesIO(runtime.objects.get_bytes(key))) as image:
        image.load()
        return image


def _input(preset: str = "luxury", **extra: object) -> GenerateAssetsInput:
    return GenerateAssetsInput.model_validate({"task_id": "tsk_assets", "style": PRESETS[preset].model_dump(),
                                               "width": W, "height": H, **extra})


def test_all_assets_are_made(runtime: Runtime, tmp_path: Path) -> None:
    quotes = ["慢就是稳，稳就是快。", "quotes: 100% {braces} \\ backslash", "A third, rather longer quote " * 4]
    out = generate_assets(_input(title="Three habits of calm creators", subtitle="第十二集", quotes=quotes),
                          _ctx(runtime, tmp_path))
    assert out.provider == "procedural" and out.cache_hits == 0
    assert len(out.backgrounds) == 3 and len(set(out.backgrounds)) == 3
    pictures = []
    for key in out.backgrounds:
        image = _image(runtime, key)
        assert image.size == (W, H) and image.mode == "RGB"
        pictures.append(np.asarray(image, dtype=np.int16))
    assert np.abs(pictures[0] - pictures[1]).mean() > 3 and np.abs(pictures[1] - pictures[2]).mean() > 3

    for key in (out.light_leak_key, out.gradient_mask_key, out.frame_key):
        assert key is not None
        layer = _image(runtime, key)
        assert layer.size == (W, H) and layer.mode == "RGBA"

    assert out.title_card is not None
    cards = [out.title_card, *out.quote_cards]
    assert len(out.quote_cards) == 3
    for card in cards:
        image = _image(runtime, card.key)
        assert image.mode == "RGBA" and image.size == (card.width, card.height) and card.width == W
        box = image.getchannel("A").getbbox()
        assert box is not None and box[0] > 0 and box[1] > 0 and box[2] < card.width and box[3] < card.height
    assert out.quote_cards[2].height > out.quote_cards[0].height  # same order as the quotes
    assert len({card.key for card in cards}) == 4


def test_no_text_no_cards_and_no_frame_for_cinematic(runtime: Runtime, tmp_path: Path) -> None:
    out = generate_assets(_input("cinematic"), _ctx(runtime, tmp_path))
    assert out.title_card is None and out.quote_cards == [] and out.frame_key is None
    subtitle_only = generate_assets(_input("cinematic", subtitle="Episode 12"), _ctx(runtime, tmp_path))
    assert subtitle_only.title_card is not None


def test_backgrounds_are_cached_across_tasks(runtime: Runtime, tmp_path: Path) -> None:
    first = generate_assets(_input(), _ctx(runtime, tmp_path, "tsk_one"))
    second = generate_assets(_input(quotes=["new text does not matter"]), _ctx(runtime, tmp_path, "tsk_two"))
    assert second.cache_hits == 3 and second.backgrounds == first.backgrounds
    other_style = generate_assets(_input("fresh"), _ctx(runtime, tmp_path, "tsk_three"))
    assert other_style.cache_hits == 0 and not set(other_style.backgrounds) & set(first.backgrounds)
    other_size = generate_assets(GenerateAssetsInput.model_validate({**_input().model_dump(), "width": 180}),
                                 _ctx(runtime, tmp_path, "tsk_four"))
    assert other_size.cache_hits == 0

    runtime.objects.delete(first.backgrounds[1])  # a cache entry whose object is gone is regenerated
    again = generate_assets(_input(), _ctx(runtime, tmp_path, "tsk_five"))
    assert again.cache_hits == 2 and runtime.objects.exists(first.backgrounds[1])
    assert ASSET_CACHE_TTL_SECONDS == 30 * 24 * 3600


class FakeModelProvider:
    """An image model that answers with a 9:16-ish JPEG of its own size (as Flux and Gemini do)."""

    name = "replicate-flux"
    model = "black-forest-labs/flux-schnell"

    def __init__(self) -> None:
        self.requests: list[ImageRequest] = []

    def generate(self, request: ImageRequest) -> bytes:
        self.requests.append(request)
        rng = np.random.default_rng(len(self.requests))
        pixels = rng.integers(0, 255, size=(1344, 768, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG")
        return buffer.getvalue()


def test_an_image_model_provider_is_used_and_cached(runtime: Runtime, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeModelProvider()
    monkeypatch.setattr(assets_module, "build_image_provider", lambda name, api_key=None: fake)
    ctx = _ctx(runtime, tmp_path)
    out = generate_assets(_input(), ctx)
    assert out.provider == "replicate-flux" and out.cache_hits == 0
    assert [r.variant for r in fake.requests] == ["studio", "bokeh", "window"]
    assert all("no people" in r.prompt and r.width == W and r.height == H for r in fake.requests)
    assert ctx.usage.provider_calls == {"replicate-flux": 3}
    for key in out.backgrounds:
        image = _image(runtime, key)
        assert image.size == (W, H) and image.format == "PNG"
    again = generate_assets(_input(), _ctx(runtime, tmp_path))
    assert again.cache_hits == 3 and len(fake.requests) == 3


def test_fit_png_covers_and_crops() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (768, 1344), (10, 20, 30)).save(buffer, format="WEBP")
    fitted = fit_png(buffer.getvalue(), 1080, 1920)
    with Image.open(io.BytesIO(fitted)) as image:
        assert image.size == (1080, 1920) and image.format == "PNG"
    exact = io.BytesIO()
    Image.new("RGB", (W, H)).save(exact, format="PNG")
    assert fit_png(exact.getvalue(), W, H) == exact.getvalue()
    with pytest.raises(VidluxeError) as caught:
        fit_png(b"<html>error</html>", W, H)
    assert caught.value.code == "IMAGE_PROVIDER_NO_IMAGE"


def test_card_look_follows_the_style() -> None:
    luxury, fresh = card_look(PRESETS["luxury"]), card_look(PRESETS["fresh"])
    assert luxury.serif and not fresh.serif
    for look in (luxury, fresh, card_look(PRESETS["cinematic"])):
        r, g, b = (int(look.accent[i : i + 2], 16) / 255 for i in (1, 3, 5))
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b >= 0.5  # readable on the dark scrim


def test_through_the_stage_runner(runtime: Runtime) -> None:
    create_task(runtime, "enhance", {}, "tsk_runner")
    payload = {"task_id": "tsk_runner", "style": PRESETS["warm"].model_dump(mode="json"), "width": W, "height": H,
               "title": "Title", "subtitle": None, "quotes": ["one"]}
    out = GenerateAssetsOutput.model_validate(execute_stage(GENERATE_ASSETS, payload, runtime))
    assert out.provider == "procedural" and out.title_card is not None and len(out.quote_cards) == 1
    assert out.backgrounds[0].startswith("cache/assets/")
    assert out.light_leak_key.startswith("tasks/tsk_runner/generate_assets/")
