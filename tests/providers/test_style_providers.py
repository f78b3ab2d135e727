"""Style providers: the local analyzer, and B-LoRA on Modal faked at the SDK boundary (``.remote``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import modal
import modal.exception
import numpy as np
import pytest

from shared.errors import ConfigurationError, InvalidInputError, TransientError, VidluxeError
from shared.providers.style import (
    BLoraStyleProvider,
    LocalStyleProvider,
    StyleProfile,
    build_style_provider,
)

STOCK = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "stock"
PROFILE = {
    "palette": ["#1b1a17", "#3b332b", "#c8a25e", "#efe1c0", "#6e5b45"],
    "temperature": "warm", "contrast": 0.72, "brightness": 0.22, "lighting": "dramatic", "mood": "elegant",
    "texture": "grain", "lora": {"key": "loras/abc.safetensors"},
}


class FakeFunction:
    """Stands in for a ``modal.Function``: records ``.remote`` calls and answers like the deployed one."""

    def __init__(self, result: Any = None, error: BaseException | None = None):
        self.result = PROFILE if result is None else result
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        assert not args, "the function is called with keyword arguments"
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def reference() -> bytes:
    return (STOCK / "imageio_chelsea_cat.png").read_bytes()


def test_build_style_provider_by_name() -> None:
    assert isinstance(build_style_provider("local"), LocalStyleProvider)
    assert isinstance(build_style_provider("blora"), BLoraStyleProvider)
    assert isinstance(build_style_provider("B-LoRA"), BLoraStyleProvider)
    with pytest.raises(ConfigurationError) as caught:
        build_style_provider("midjourney")
    assert caught.value.code == "UNKNOWN_STYLE_PROVIDER"


def test_blora_calls_the_deployed_modal_function(monkeypatch: pytest.MonkeyPatch, reference: bytes) -> None:
    fake = FakeFunction()
    looked_up: list[tuple[str, str]] = []

    def from_name(app_name: str, name: str, **kwargs: Any) -> FakeFunction:
        looked_up.append((app_name, name))
        return fake

    monkeypatch.setattr(modal.Function, "from_name", from_name)
    style = build_style_provider("blora").from_reference(reference, source="reference:abc")
    assert looked_up == [("vidluxe-style", "extract_style")]
    assert fake.calls == [{"image": reference, "palette_size": 5}]
    assert style == StyleProfile.model_validate({**PROFILE, "source": "reference:abc"})


def test_blora_errors_are_classified(reference: bytes) -> None:
    def provider(function: FakeFunction) -> BLoraStyleProvider:
        return BLoraStyleProvider(lookup=lambda app, name: function)

    with pytest.raises(ConfigurationError) as missing:
        provider(FakeFunction(error=modal.exception.NotFoundError("App 'vidluxe-style' not found"))).from_reference(
            reference, source="reference:x")
    assert missing.value.code == "STYLE_PROVIDER_NOT_DEPLOYED"

    with pytest.raises(TransientError) as down:
        provider(FakeFunction(error=ConnectionError("reset by peer"))).from_reference(reference, source="reference:x")
    assert down.value.code == "STYLE_PROVIDER_UNAVAILABLE"

    with pytest.raises(VidluxeError) as bad:
        provider(FakeFunction(result={"palette": ["#fff"]})).from_reference(reference, source="reference:x")
    assert bad.value.code == "STYLE_PROVIDER_BAD_RESPONSE"

    with pytest.raises(VidluxeError) as not_a_dict:
        provider(FakeFunction(result=["#ffffff"])).from_reference(reference, source="reference:x")
    assert not_a_dict.value.code == "STYLE_PROVIDER_BAD_RESPONSE"


def test_blora_rejects_a_non_image_before_calling_the_gpu() -> None:
    fake = FakeFunction()
    with pytest.raises(InvalidInputError) as caught:
        BLoraStyleProvider(lookup=lambda app, name: fake).from_reference(b"not an image", source="reference:x")
    assert caught.value.code == "REFERENCE_NOT_IMAGE"
    assert fake.calls == []


def test_blora_keeps_keyframes_local() -> None:
    fake = FakeFunction()
    frame = np.full((90, 60, 3), 90, dtype=np.uint8)
    style = BLoraStyleProvider(lookup=lambda app, name: fake).from_keyframes([frame], source="keyframes:x")
    assert style.source == "keyframes:x" and fake.calls == []


def test_local_provider_reference_and_keyframes(reference: bytes) -> None:
    local = LocalStyleProvider()
    style = local.from_reference(reference, source="reference:cat")
    assert style.source == "reference:cat" and len(style.palette) == 5
    frame = np.full((90, 60, 3), 200, dtype=np.uint8)
    assert local.from_keyframes([frame], source="keyframes:y").source == "keyframes:y"
