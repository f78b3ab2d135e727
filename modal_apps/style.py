"""B-LoRA style extraction on a Modal GPU (Frenkel et al., "Implicit Style-Content Separation using B-LoRA",
ECCV 2024), the function ``shared.providers.style.BLoraStyleProvider`` calls.

Contract (the provider's): ``vidluxe-style/extract_style.remote(image=<bytes>, palette_size=5)`` returns
a dict with the StyleProfile fields (``palette``, ``temperature``, ``contrast``, ``brightness``,
``lighting``, ``mood``, ``texture``) and may add its own (here ``method`` and ``steps``).

B-LoRA fine-tunes SDXL on the one reference image with LoRA adapters on exactly two transformer blocks
of the UNet: ``up_blocks.0.attentions.0`` learns the content, ``up_blocks.0.attentions.1`` the style
(their ``to_q``, ``to_k``, ``to_v`` and ``to_out.0`` projections; rank 64, alpha = rank, Gaussian init
of A, zero B). Only the style adapter is then applied to render a plain backdrop "in the style of" the
reference, and the profile is measured on that render with the same analyzer the local provider uses,
so a photo's subject does not leak into the palette.

What is here and what is not: the target selection (:func:`blora_target_modules`), the adapters
(:class:`LoRALinear`, :func:`inject_lora`) and the diffusion training step (:func:`training_step`:
DDPM epsilon prediction, MSE) are plain PyTorch and tested on the CPU on a tiny UNet with SDXL's module
names. :class:`SdxlBLora`, which wires them to diffusers' SDXL UNet, text encoders, VAE and sampler in
the image below, has never run here (no diffusers, no GPU, no SDXL weights): it is written against
diffusers' documented API and must be tried on a GPU before it is trusted.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import modal

app = modal.App("vidluxe-style")

SDXL = "stabilityai/stable-diffusion-xl-base-1.0"  # CreativeML Open RAIL++-M
SDXL_VAE = "madebyollin/sdxl-vae-fp16-fix"  # the fp16-safe VAE B-LoRA's scripts use (MIT)
WEIGHTS = "/weights/hf"


def download_sdxl() -> None:
    """Build step: SDXL base (fp16 safetensors) and the fp16-fix VAE into the image."""
    from huggingface_hub import snapshot_download

    snapshot_download(SDXL, cache_dir=WEIGHTS, allow_patterns=["*.json", "*.txt", "*fp16.safetensors"])
    snapshot_download(SDXL_VAE, cache_dir=WEIGHTS, allow_patterns=["*.json", "*.safetensors"])


image = (
    modal.Image.debian_slim(python_version="3.11")
    .pip_install(
        "torch==2.13.0", "numpy==1.26.4", "pydantic==2.13.4", "pillow==13.0.0", "diffusers==0.31.0",
        "transformers==4.46.3", "accelerate==1.1.1", "huggingface_hub==0.26.2", "safetensors==0.4.5",
    )
    .run_function(download_sdxl)
    .add_local_python_source("shared", "modal_apps")
)


@app.function(
    image=image,
    gpu="A100-40GB",  # SDXL fine-tuning in fp16 with gradient checkpointing fits 40 GB
    timeout=20 * 60,
    retries=modal.Retries(max_retries=1, initial_delay=5.0),
    scaledown_window=60,
    max_containers=4,
)
def extract_style(image: bytes, palette_size: int = 5, steps: int = 400) -> dict[str, Any]:
    return extract(image, palette_size, load_trainer(), steps=steps)


# ---------------------------------------------------------------------------------------------------------
# The function body


class StyleTrainer(Protocol):
    """Learns the reference's style and renders a backdrop with it (PNG bytes)."""

    method: str

    def learn_and_render(self, reference: Any, steps: int) -> bytes: ...


def extract(image: bytes, palette_size: int, trainer: StyleTrainer, *, steps: int = 400) -> dict[str, Any]:
    """The profile of a backdrop rendered in the reference's style. Raises InvalidInputError
    (REFERENCE_NOT_IMAGE) for bytes that are not an image and ValueError for a bad palette size."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from shared.errors import InvalidInputError
    from shared.providers.style import analyze_reference

    if not 2 <= palette_size <= 8:
        raise ValueError(f"palette_size must be 2..8, not {palette_size}")
    try:
        with Image.open(io.BytesIO(image)) as opened:
            reference = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInputError(f"The style reference is not a readable image ({exc}).",
                                code="REFERENCE_NOT_IMAGE") from None
    rendered = trainer.learn_and_render(reference, steps)
    profile = analyze_reference(rendered, source="blora").model_dump(exclude={"source"})
    profile["palette"] = profile["palette"][:palette_size]
    return {**profile, "method": trainer.method, "steps": steps}


# ---------------------------------------------------------------------------------------------------------
# B-LoRA in plain PyTorch

BLOCKS = {"content": "up_blocks.0.attentions.0", "style": "up_blocks.0.attentions.1"}
MATRICES = ("to_q", "to_k", "to_v", "to_out.0")


def blora_target_modules(names: Iterable[str], blocks: Iterable[str] = (BLOCKS["content"], BLOCKS["style"])
                         ) -> list[str]:
    """The attention projections B-LoRA trains: among a UNet's module ``names``, every ``attn*.to_q``,
    ``to_k``, ``to_v`` and ``to_out.0`` inside one of ``blocks`` (names as in diffusers' SDXL UNet)."""
    prefixes = tuple(f"{block}." for block in blocks)
    suffixes = tuple(f".{matrix}" for matrix in MATRICES)
    return sorted(name for name in names if name.startswith(prefixes) and ".attn" in name and name.endswith(suffixes))


LORA_RANK = 64


def _lora_module(base: Any, rank: int, alpha: float) -> Any:
    import torch
    from torch import nn

    class Adapted(nn.Module):
        """``base(x) + (alpha / rank) * up(down(x))``; ``base`` frozen, ``up`` starts at zero."""

        def __init__(self) -> None:
            super().__init__()
            self.base = base
            # float32 adapters beside a possibly half-precision base, on its device
            self.lora_A = nn.Linear(base.in_features, rank, bias=False, device=base.weight.device)
            self.lora_B = nn.Linear(rank, base.out_features, bias=False, device=base.weight.device)
            nn.init.normal_(self.lora_A.weight, std=1 / rank)  # peft's "gaussian" init, B-LoRA's choice
            nn.init.zeros_(self.lora_B.weight)
            self.scale = alpha / rank
            for parameter in self.base.parameters():
                parameter.requires_grad_(False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            delta = self.lora_B(self.lora_A(x.to(self.lora_A.weight.dtype)))
            return self.base(x) + (self.scale * delta).to(x.dtype)  # type: ignore[no-any-return]

    return Adapted()


def inject_lora(model: Any, targets: Iterable[str], *, rank: int = 64, alpha: float | None = None) -> list[Any]:
    """Replace each named nn.Linear of ``model`` by a LoRA-adapted one, freeze everything else; returns the
    trainable parameters. Raises KeyError for a target that is not an nn.Linear of ``model``."""
    from torch import nn

    for parameter in model.parameters():
        parameter.requires_grad_(False)
    modules = dict(model.named_modules())
    trainable = []
    for name in targets:
        base = modules.get(name)
        if not isinstance(base, nn.Linear):
            raise KeyError(f"{name} is not a Linear layer of {type(model).__name__}")
        parent_name, _, child = name.rpartition(".")
        adapted = _lora_module(base, rank, float(alpha or rank))
        setattr(modules[parent_name] if parent_name else model, child, adapted)
        trainable += [adapted.lora_A.weight, adapted.lora_B.weight]
    return trainable


def ddpm_alphas_cumprod(steps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> Any:
    """SDXL's noise schedule ("scaled_linear"): cumulative products of 1 - beta."""
    import torch

    betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, dim=0).float()


def training_step(predict: Callable[[Any, Any], Any], latents: Any, alphas_cumprod: Any, optimizer: Any,
                  parameters: list[Any], *, generator: Any = None, max_grad_norm: float = 1.0) -> float:
    """One DreamBooth-style step: noise the latents at a random timestep, predict the noise, MSE, update.

    ``predict(noisy_latents, timesteps)`` is the UNet with its conditioning bound. Returns the loss.
    """
    import torch
    import torch.nn.functional as F

    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    timesteps = torch.randint(0, len(alphas_cumprod), (latents.shape[0],), generator=generator,
                              device=latents.device)
    a = alphas_cumprod.to(latents.device)[timesteps].view(-1, *([1] * (latents.ndim - 1)))
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    loss = F.mse_loss(predict(noisy, timesteps).float(), noise.float())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
    return float(loss.detach())


# ---------------------------------------------------------------------------------------------------------
# SDXL (runs only in the image above, on a GPU; not exercised by the tests)


class SdxlBLora:
    """B-LoRA on diffusers' SDXL: train content+style adapters on the reference, render with style only."""

    method = "b-lora-sdxl"
    prompt = "A [v] backdrop"  # B-LoRA's scripts use "A [v]"; the renders below ask for an empty backdrop
    render_prompt = "an empty studio backdrop wall, soft light, in [v] style"

    def __init__(self, pipe: Any, device: str = "cuda") -> None:
        self.pipe, self.device = pipe, device

    def learn_and_render(self, reference: Any, steps: int) -> bytes:
        import torch

        pipe = self.pipe
        unet = pipe.unet
        targets = blora_target_modules(name for name, _ in unet.named_modules())
        parameters = inject_lora(unet, targets, rank=LORA_RANK)
        unet.enable_gradient_checkpointing()
        optimizer = torch.optim.AdamW(parameters, lr=5e-5, weight_decay=1e-4)
        pixels = pipe.image_processor.preprocess(reference.resize((1024, 1024))).to(self.device, torch.float32)
        with torch.no_grad():
            latents = pipe.vae.to(torch.float32).encode(pixels).latent_dist.sample() * pipe.vae.config.scaling_factor
            embeds, _, pooled, _ = pipe.encode_prompt(
                self.prompt, device=self.device, do_classifier_free_guidance=False
            )
        time_ids = torch.tensor([[1024, 1024, 0, 0, 1024, 1024]], device=self.device, dtype=embeds.dtype)

        def predict(noisy: Any, timesteps: Any) -> Any:
            return unet(noisy.to(embeds.dtype), timesteps, encoder_hidden_states=embeds,
                        added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample

        alphas = ddpm_alphas_cumprod()
        unet.train()
        for _ in range(steps):
            training_step(predict, latents, alphas, optimizer, parameters)
        unet.eval()
        with torch.no_grad():  # style only: the content adapter's up-projection is zeroed for the render
            for name, module in unet.named_modules():
                if name.startswith(BLOCKS["content"] + ".") and hasattr(module, "lora_B"):
                    module.lora_B.weight.zero_()
            rendered = pipe(self.render_prompt, num_inference_steps=30, guidance_scale=5.0).images[0]
        out = io.BytesIO()
        rendered.save(out, format="PNG")
        return out.getvalue()


@functools.cache
def load_trainer() -> StyleTrainer:
    import torch
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline

    vae = AutoencoderKL.from_pretrained(SDXL_VAE, cache_dir=WEIGHTS, torch_dtype=torch.float16)
    pipe = StableDiffusionXLPipeline.from_pretrained(
        SDXL, vae=vae, cache_dir=WEIGHTS, torch_dtype=torch.float16, variant="fp16", use_safetensors=True
    ).to("cuda")
    return SdxlBLora(pipe)

