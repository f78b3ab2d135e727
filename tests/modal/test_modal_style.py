"""B-LoRA on the CPU: the target selection and the LoRA training step on a tiny UNet with SDXL's module
names (not SDXL: diffusers and the SDXL weights live only in the Modal image), and the function's
contract as BLoraStyleProvider calls it."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from tiny_unet import TinyUNet  # noqa: E402

from modal_apps import style  # noqa: E402
from shared.errors import InvalidInputError  # noqa: E402
from shared.providers.style import BLoraStyleProvider, StyleProfile  # noqa: E402


def test_blora_trains_exactly_the_content_and_style_blocks() -> None:
    names = [name for name, _ in TinyUNet().named_modules()]
    targets = style.blora_target_modules(names)

    assert len(targets) == 2 * 2 * 4  # two blocks x (self- and cross-attention) x (q, k, v, out)
    assert all(t.startswith(("up_blocks.0.attentions.0.", "up_blocks.0.attentions.1.")) for t in targets)
    assert "up_blocks.0.attentions.1.transformer_blocks.0.attn2.to_out.0" in targets
    assert not any(".ff." in t or "proj_" in t for t in targets)
    assert len(style.blora_target_modules(names, [style.BLOCKS["style"]])) == 8


def test_the_training_step_moves_only_the_adapters_and_lowers_the_loss() -> None:
    torch.manual_seed(0)
    unet = TinyUNet()
    context = torch.randn(1, 3, 8)
    latents = torch.randn(1, 4, 6, 6)
    frozen = {name: p.detach().clone() for name, p in unet.named_parameters()}
    before = unet(latents, torch.tensor([10]), context)

    parameters = style.inject_lora(unet, style.blora_target_modules(n for n, _ in unet.named_modules()), rank=4)
    assert len(parameters) == 2 * 16
    assert torch.allclose(unet(latents, torch.tensor([10]), context), before)  # B starts at zero: no change

    def predict(noisy: Any, timesteps: Any) -> Any:
        return unet(noisy, timesteps, context)

    def fixed_loss() -> float:
        g = torch.Generator().manual_seed(7)
        noise = torch.randn(latents.shape, generator=g)
        a = style.ddpm_alphas_cumprod()[500]
        with torch.no_grad():
            return float(((predict(a.sqrt() * latents + (1 - a).sqrt() * noise, torch.tensor([500])) - noise) ** 2)
                         .mean())

    start = fixed_loss()
    optimizer = torch.optim.AdamW(parameters, lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    alphas = style.ddpm_alphas_cumprod()
    for _ in range(40):
        style.training_step(predict, latents, alphas, optimizer, parameters, generator=generator)
    assert fixed_loss() < start
    for name, p in unet.named_parameters():
        if "lora_" not in name:
            assert torch.equal(p, frozen[name.replace(".base.", ".")]), name


class TinyTrainer:
    """The real adapters and training step on the tiny UNet; the 'render' is the reference itself, a
    stand-in for SDXL sampling with the style adapter."""

    method = "b-lora-tiny-test"

    def learn_and_render(self, reference: Image.Image, steps: int) -> bytes:
        unet = TinyUNet()
        parameters = style.inject_lora(unet, style.blora_target_modules(n for n, _ in unet.named_modules()), rank=4)
        pixels = torch.from_numpy(np.asarray(reference.resize((8, 8)), dtype=np.float32) / 255).permute(2, 0, 1)
        latents = torch.cat([pixels, pixels.mean(0, keepdim=True)])[None] * 2 - 1  # [1, 4, 8, 8]
        context = torch.zeros(1, 1, 8)
        optimizer = torch.optim.AdamW(parameters, lr=1e-3)
        for _ in range(steps):
            style.training_step(lambda x, t: unet(x, t, context), latents, style.ddpm_alphas_cumprod(), optimizer,
                                parameters)
        out = io.BytesIO()
        reference.save(out, format="PNG")
        return out.getvalue()


def _png(color: tuple[int, int, int]) -> bytes:
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[:] = color
    pixels[8:24, 8:24] = (240, 230, 200)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_the_provider_reads_a_profile_from_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(style, "load_trainer", TinyTrainer)

    class Local:  # what modal.Function.from_name("vidluxe-style", "extract_style") gives, run here
        def remote(self, **kwargs: Any) -> Any:
            return style.extract_style.local(steps=3, **kwargs)

    provider = BLoraStyleProvider(lookup=lambda app, name: Local())
    profile = provider.from_reference(_png((30, 60, 120)), source="reference:abc")
    assert isinstance(profile, StyleProfile) and profile.source == "reference:abc"
    assert 2 <= len(profile.palette) <= 5 and profile.temperature == "cool"


def test_a_non_image_is_refused_before_any_training() -> None:
    class Refuses:
        method = "x"

        def learn_and_render(self, reference: Any, steps: int) -> bytes:
            raise AssertionError("trained on a non-image")

    with pytest.raises(InvalidInputError) as caught:
        style.extract(b"not an image", 5, Refuses())
    assert caught.value.code == "REFERENCE_NOT_IMAGE"
