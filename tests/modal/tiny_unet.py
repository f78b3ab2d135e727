"""A tiny denoiser whose module names follow diffusers' SDXL UNet where B-LoRA looks
(``up_blocks.N.attentions.M.transformer_blocks.K.attn{1,2}.to_q|to_k|to_v|to_out.0``), so the B-LoRA
selection and training step run on the CPU in milliseconds. Not SDXL: a stand-in with its names."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    def __init__(self, dim: int, context: int | None = None) -> None:
        super().__init__()
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context or dim, dim, bias=False)
        self.to_v = nn.Linear(context or dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        ctx = x if context is None else context
        weights = torch.softmax(self.to_q(x) @ self.to_k(ctx).transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1)
        return self.to_out[1](self.to_out[0](weights @ self.to_v(ctx)))  # type: ignore[no-any-return]


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, context: int) -> None:
        super().__init__()
        self.attn1 = Attention(dim)
        self.attn2 = Attention(dim, context)
        self.ff = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn1(x)
        x = x + self.attn2(x, context)
        return x + self.ff(x)  # type: ignore[no-any-return]


class Transformer2D(nn.Module):
    def __init__(self, dim: int, context: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim, context)])
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.proj_in(x.flatten(2).transpose(1, 2))
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        return x + self.proj_out(tokens).transpose(1, 2).reshape(b, c, h, w)


class UpBlock(nn.Module):
    def __init__(self, dim: int, context: int, attentions: int) -> None:
        super().__init__()
        self.attentions = nn.ModuleList([Transformer2D(dim, context) for _ in range(attentions)])


class TinyUNet(nn.Module):
    def __init__(self, channels: int = 4, dim: int = 16, context: int = 8) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(channels, dim, 3, padding=1)
        self.time_embedding = nn.Linear(1, dim)
        self.down_blocks = nn.ModuleList([UpBlock(dim, context, 2)])  # names only; same block type
        self.up_blocks = nn.ModuleList([UpBlock(dim, context, 3), UpBlock(dim, context, 3)])
        self.conv_out = nn.Conv2d(dim, channels, 3, padding=1)

    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor) -> Tensor:
        h = self.conv_in(x) + self.time_embedding(timesteps.float().view(-1, 1) / 1000)[:, :, None, None]
        for block in [*self.down_blocks, *self.up_blocks]:
            for attention in block.attentions:
                h = attention(h, context)
        return self.conv_out(h)  # type: ignore[no-any-return]
