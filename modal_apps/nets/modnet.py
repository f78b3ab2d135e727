"""MODNet (Ke et al., "Is a Green Screen Really Necessary for Real-Time Portrait Matting?", AAAI 2022).

The module tree of ``ZHKKKe/MODNet src/models/modnet.py``: a MobileNetV2 backbone, a low-resolution
(semantic) branch with a squeeze-excitation block, a high-resolution (detail) branch and a fusion branch;
convolutions are followed by IBNorm (half the channels batch-normalized, half instance-normalized).
``backbone`` is registered twice, at the top and inside ``lr_branch``, exactly as there, so the official
checkpoint's keys (``module.backbone.model.features...`` and ``module.lr_branch.backbone.model...``) load
once the DataParallel prefix ``module.`` is removed.

At inference only the fusion output is needed (``inference=True`` skips the branches' own heads).
Input: RGB normalized to -1..1, sides multiples of 32 (see :func:`modnet_input_size`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modal_apps.nets.mobilenet import MobileNetV2Backbone


def _up(x: Tensor, factor: float) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class IBNorm(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bnorm_channels = channels // 2
        self.inorm_channels = channels - self.bnorm_channels
        self.bnorm = nn.BatchNorm2d(self.bnorm_channels, affine=True)
        self.inorm = nn.InstanceNorm2d(self.inorm_channels, affine=False)

    def forward(self, x: Tensor) -> Tensor:
        batch = self.bnorm(x[:, : self.bnorm_channels].contiguous())
        # The original slices from inorm_channels (equal to bnorm_channels for the even counts MODNet uses).
        instance = self.inorm(x[:, self.inorm_channels :].contiguous())
        return torch.cat((batch, instance), 1)


class Conv2dIBNormRelu(nn.Module):
    def __init__(
        self, inp: int, oup: int, kernel: int, stride: int = 1, padding: int = 0, *, with_ibn: bool = True,
        with_relu: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(inp, oup, kernel, stride=stride, padding=padding, bias=True)]
        if with_ibn:
            layers.append(IBNorm(oup))
        if with_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # type: ignore[no-any-return]


class SEBlock(nn.Module):
    def __init__(self, inp: int, oup: int, reduction: int = 1) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(inp, inp // reduction, bias=False), nn.ReLU(inplace=True),
            nn.Linear(inp // reduction, oup, bias=False), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        return x * self.fc(self.pool(x).view(b, c)).view(b, c, 1, 1)  # type: ignore[no-any-return]


class LRBranch(nn.Module):
    def __init__(self, backbone: MobileNetV2Backbone) -> None:
        super().__init__()
        enc = backbone.enc_channels
        self.backbone = backbone
        self.se_block = SEBlock(enc[4], enc[4], reduction=4)
        self.conv_lr16x = Conv2dIBNormRelu(enc[4], enc[3], 5, padding=2)
        self.conv_lr8x = Conv2dIBNormRelu(enc[3], enc[2], 5, padding=2)
        self.conv_lr = Conv2dIBNormRelu(enc[2], 1, 3, stride=2, padding=1, with_ibn=False, with_relu=False)

    def forward(self, img: Tensor, inference: bool) -> tuple[Tensor | None, Tensor, list[Tensor]]:
        enc2x, enc4x, _, _, enc32x = self.backbone(img)
        lr16x = self.conv_lr16x(_up(self.se_block(enc32x), 2))
        lr8x = self.conv_lr8x(_up(lr16x, 2))
        semantic = None if inference else torch.sigmoid(self.conv_lr(lr8x))
        return semantic, lr8x, [enc2x, enc4x]


class HRBranch(nn.Module):
    def __init__(self, hr: int, enc: tuple[int, ...]) -> None:
        super().__init__()
        self.tohr_enc2x = Conv2dIBNormRelu(enc[0], hr, 1)
        self.conv_enc2x = Conv2dIBNormRelu(hr + 3, hr, 3, stride=2, padding=1)
        self.tohr_enc4x = Conv2dIBNormRelu(enc[1], hr, 1)
        self.conv_enc4x = Conv2dIBNormRelu(2 * hr, 2 * hr, 3, padding=1)
        self.conv_hr4x = nn.Sequential(
            Conv2dIBNormRelu(3 * hr + 3, 2 * hr, 3, padding=1),
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, padding=1),
        )
        self.conv_hr2x = nn.Sequential(
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, padding=1),
        )
        self.conv_hr = nn.Sequential(
            Conv2dIBNormRelu(hr + 3, hr, 3, padding=1),
            Conv2dIBNormRelu(hr, 1, 1, with_ibn=False, with_relu=False),
        )

    def forward(
        self, img: Tensor, enc2x: Tensor, enc4x: Tensor, lr8x: Tensor, inference: bool
    ) -> tuple[Tensor | None, Tensor]:
        img2x, img4x = _up(img, 1 / 2), _up(img, 1 / 4)
        enc2x = self.tohr_enc2x(enc2x)
        hr4x = self.conv_enc2x(torch.cat((img2x, enc2x), 1))
        hr4x = self.conv_enc4x(torch.cat((hr4x, self.tohr_enc4x(enc4x)), 1))
        hr4x = self.conv_hr4x(torch.cat((hr4x, _up(lr8x, 2), img4x), 1))
        hr2x = self.conv_hr2x(torch.cat((_up(hr4x, 2), enc2x), 1))
        detail = None if inference else torch.sigmoid(self.conv_hr(torch.cat((_up(hr2x, 2), img), 1)))
        return detail, hr2x


class FusionBranch(nn.Module):
    def __init__(self, hr: int, enc: tuple[int, ...]) -> None:
        super().__init__()
        self.conv_lr4x = Conv2dIBNormRelu(enc[2], hr, 5, padding=2)
        self.conv_f2x = Conv2dIBNormRelu(2 * hr, hr, 3, padding=1)
        self.conv_f = nn.Sequential(
            Conv2dIBNormRelu(hr + 3, hr // 2, 3, padding=1),
            Conv2dIBNormRelu(hr // 2, 1, 1, with_ibn=False, with_relu=False),
        )

    def forward(self, img: Tensor, lr8x: Tensor, hr2x: Tensor) -> Tensor:
        lr2x = _up(self.conv_lr4x(_up(lr8x, 2)), 2)
        f2x = self.conv_f2x(torch.cat((lr2x, hr2x), 1))
        return torch.sigmoid(self.conv_f(torch.cat((_up(f2x, 2), img), 1)))


class MODNet(nn.Module):
    def __init__(self, in_channels: int = 3, hr_channels: int = 32) -> None:
        super().__init__()
        self.backbone = MobileNetV2Backbone(in_channels)
        self.lr_branch = LRBranch(self.backbone)
        self.hr_branch = HRBranch(hr_channels, self.backbone.enc_channels)
        self.f_branch = FusionBranch(hr_channels, self.backbone.enc_channels)

    def forward(self, img: Tensor, inference: bool = True) -> tuple[Tensor | None, Tensor | None, Tensor]:
        """``img``: [N, 3, H, W] in -1..1, H and W multiples of 32. Returns (semantic, detail, matte);
        the matte is [N, 1, H, W] in 0..1, the other two are None when ``inference``."""
        semantic, lr8x, (enc2x, enc4x) = self.lr_branch(img, inference)
        detail, hr2x = self.hr_branch(img, enc2x, enc4x, lr8x, inference)
        return semantic, detail, self.f_branch(img, lr8x, hr2x)


def modnet_input_size(width: int, height: int, reference: int = 512) -> tuple[int, int]:
    """MODNet's inference size for a frame (its demo's rule): the short side scaled to ``reference``
    unless the frame is already between ``reference`` and its double, then both sides floored to 32."""
    if max(width, height) < reference or min(width, height) > reference:
        if width >= height:
            height, width = reference, int(width / height * reference)
        else:
            width, height = reference, int(height / width * reference)
    return max(32, width - width % 32), max(32, height - height % 32)
