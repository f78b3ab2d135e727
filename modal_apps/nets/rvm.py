"""Robust Video Matting (Lin et al., WACV 2022), the MobileNetV3 variant, in plain PyTorch.

The module tree of ``PeterL1n/RobustVideoMatting model/``: ``backbone`` (MobileNetV3-Large encoder),
``aspp`` (LR-ASPP, 960 -> 128), ``decoder`` (recurrent: a ConvGRU on half the channels of every
decoder stage), ``project_mat`` (16 -> 3 foreground residual + 1 alpha), ``project_seg`` and ``refiner``
(deep guided filter), so ``rvm_mobilenetv3.pth`` (a plain state dict) loads with ``strict=True``.

Temporal state is explicit, as in RVM: ``fgr, pha, *rec = model(src, *rec, downsample_ratio=r)``; the
model holds none, so a caller carries ``rec`` from one batch of frames to the next.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modal_apps.nets.mobilenet import MobileNetV3Large

Recurrent = list[Tensor | None]


def _frames(x: Tensor) -> Tensor:
    return x.flatten(0, 1)  # [B, T, C, H, W] -> [B*T, C, H, W]


def _clips(x: Tensor, b: int, t: int) -> Tensor:
    return x.unflatten(0, (b, t))  # [B*T, C, H, W] -> [B, T, C, H, W]


class LRASPP(nn.Module):
    def __init__(self, inp: int, oup: int) -> None:
        super().__init__()
        self.aspp1 = nn.Sequential(nn.Conv2d(inp, oup, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(True))
        self.aspp2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(inp, oup, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.aspp1(x) * self.aspp2(x)  # type: ignore[no-any-return]


class ConvGRU(nn.Module):
    def __init__(self, channels: int, kernel: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.ih = nn.Sequential(nn.Conv2d(channels * 2, channels * 2, kernel, padding=padding), nn.Sigmoid())
        self.hh = nn.Sequential(nn.Conv2d(channels * 2, channels, kernel, padding=padding), nn.Tanh())

    def forward(self, x: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """``x``: [B, T, C, H, W]; ``h``: [B, C, H, W] or None (zeros). Steps through T in order."""
        if h is None:
            h = torch.zeros((x.size(0), x.size(-3), x.size(-2), x.size(-1)), device=x.device, dtype=x.dtype)
        outputs = []
        for xt in x.unbind(dim=1):
            r, z = self.ih(torch.cat([xt, h], dim=1)).split(self.channels, dim=1)
            c = self.hh(torch.cat([xt, r * h], dim=1))
            h = (1 - z) * h + z * c
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class BottleneckBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gru = ConvGRU(channels // 2)

    def forward(self, x: Tensor, r: Tensor | None) -> tuple[Tensor, Tensor]:
        a, b = x.split(self.channels // 2, dim=-3)
        b, r = self.gru(b, r)
        return torch.cat([a, b], dim=-3), r


class UpsamplingBlock(nn.Module):
    def __init__(self, inp: int, skip: int, src: int, oup: int) -> None:
        super().__init__()
        self.out_channels = oup
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Sequential(
            nn.Conv2d(inp + skip + src, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(True)
        )
        self.gru = ConvGRU(oup // 2)

    def forward(self, x: Tensor, f: Tensor, s: Tensor, r: Tensor | None) -> tuple[Tensor, Tensor]:
        b, t, _, h, w = s.shape
        x = self.upsample(_frames(x))[:, :, :h, :w]
        x = _clips(self.conv(torch.cat([x, _frames(f), _frames(s)], dim=1)), b, t)
        a, g = x.split(self.out_channels // 2, dim=2)
        g, r = self.gru(g, r)
        return torch.cat([a, g], dim=2), r


class OutputBlock(nn.Module):
    def __init__(self, inp: int, src: int, oup: int) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Sequential(
            nn.Conv2d(inp + src, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(True),
            nn.Conv2d(oup, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(True),
        )

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        b, t, _, h, w = s.shape
        x = self.upsample(_frames(x))[:, :, :h, :w]
        return _clips(self.conv(torch.cat([x, _frames(s)], dim=1)), b, t)


class RecurrentDecoder(nn.Module):
    def __init__(self, feature_channels: tuple[int, ...], decoder_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.avgpool = nn.AvgPool2d(2, 2, count_include_pad=False, ceil_mode=True)
        self.decode4 = BottleneckBlock(feature_channels[3])
        self.decode3 = UpsamplingBlock(feature_channels[3], feature_channels[2], 3, decoder_channels[0])
        self.decode2 = UpsamplingBlock(decoder_channels[0], feature_channels[1], 3, decoder_channels[1])
        self.decode1 = UpsamplingBlock(decoder_channels[1], feature_channels[0], 3, decoder_channels[2])
        self.decode0 = OutputBlock(decoder_channels[2], 3, decoder_channels[3])

    def forward(
        self, s0: Tensor, f1: Tensor, f2: Tensor, f3: Tensor, f4: Tensor, rec: Recurrent
    ) -> tuple[Tensor, list[Tensor]]:
        b, t = s0.shape[:2]
        s1 = self.avgpool(_frames(s0))
        s2 = self.avgpool(s1)
        s3 = self.avgpool(s2)
        s1, s2, s3 = (_clips(s, b, t) for s in (s1, s2, s3))
        x4, r4 = self.decode4(f4, rec[3])
        x3, r3 = self.decode3(x4, f3, s3, rec[2])
        x2, r2 = self.decode2(x3, f2, s2, rec[1])
        x1, r1 = self.decode1(x2, f1, s1, rec[0])
        return self.decode0(x1, s0), [r1, r2, r3, r4]


class Projection(nn.Module):
    def __init__(self, inp: int, oup: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, 1)

    def forward(self, x: Tensor) -> Tensor:
        return _clips(self.conv(_frames(x)), x.shape[0], x.shape[1])


class DeepGuidedFilterRefiner(nn.Module):
    """Upsamples the low-resolution prediction with a learned guided filter against the full frame."""

    def __init__(self, hid: int = 16) -> None:
        super().__init__()
        self.box_filter = nn.Conv2d(4, 4, kernel_size=3, padding=1, bias=False, groups=4)
        self.box_filter.weight.data[...] = 1 / 9
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hid, hid, kernel_size=1, bias=False), nn.BatchNorm2d(hid), nn.ReLU(True),
            nn.Conv2d(hid, hid, kernel_size=1, bias=False), nn.BatchNorm2d(hid), nn.ReLU(True),
            nn.Conv2d(hid, 4, kernel_size=1, bias=True),
        )

    def forward(self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
                ) -> tuple[Tensor, Tensor]:
        b, t = fine_src.shape[:2]
        fine_src, base_src, base_fgr, base_pha, base_hid = map(
            _frames, (fine_src, base_src, base_fgr, base_pha, base_hid))
        fine_x = torch.cat([fine_src, fine_src.mean(1, keepdim=True)], dim=1)
        base_x = torch.cat([base_src, base_src.mean(1, keepdim=True)], dim=1)
        base_y = torch.cat([base_fgr, base_pha], dim=1)
        mean_x, mean_y = self.box_filter(base_x), self.box_filter(base_y)
        cov_xy = self.box_filter(base_x * base_y) - mean_x * mean_y
        var_x = self.box_filter(base_x * base_x) - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, base_hid], dim=1))
        bias = mean_y - a * mean_x
        size = fine_src.shape[2:]
        a = F.interpolate(a, size, mode="bilinear", align_corners=False)
        bias = F.interpolate(bias, size, mode="bilinear", align_corners=False)
        fgr, pha = (a * fine_x + bias).split([3, 1], dim=1)
        return _clips(fgr, b, t), _clips(pha, b, t)


class MattingNetwork(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = MobileNetV3Large()
        self.aspp = LRASPP(960, 128)
        self.decoder = RecurrentDecoder((16, 24, 40, 128), (80, 40, 32, 16))
        self.project_mat = Projection(16, 4)
        self.project_seg = Projection(16, 1)
        self.refiner = DeepGuidedFilterRefiner()

    def forward(
        self, src: Tensor, r1: Tensor | None = None, r2: Tensor | None = None, r3: Tensor | None = None,
        r4: Tensor | None = None, downsample_ratio: float = 1.0,
    ) -> list[Tensor]:
        """``src``: [B, T, 3, H, W] RGB in 0..1. Returns [fgr [B, T, 3, H, W], pha [B, T, 1, H, W], r1..r4]."""
        b, t = src.shape[:2]
        src_sm = src
        if downsample_ratio != 1:
            src_sm = _clips(F.interpolate(_frames(src), scale_factor=downsample_ratio, mode="bilinear",
                                          align_corners=False, recompute_scale_factor=False), b, t)
        f1, f2, f3, f4 = (_clips(f, b, t) for f in self.backbone(_frames(src_sm)))
        f4 = _clips(self.aspp(_frames(f4)), b, t)
        hid, rec = self.decoder(src_sm, f1, f2, f3, f4, [r1, r2, r3, r4])
        fgr_residual, pha = self.project_mat(hid).split([3, 1], dim=-3)
        if downsample_ratio != 1:
            fgr_residual, pha = self.refiner(src, src_sm, fgr_residual, pha, hid)
        fgr = (fgr_residual + src).clamp(0.0, 1.0)
        return [fgr, pha.clamp(0.0, 1.0), *rec]


def auto_downsample_ratio(width: int, height: int, target: int = 512) -> float:
    """RVM's rule: the long side brought down to about ``target`` pixels (never up)."""
    return min(target / max(width, height), 1.0)
