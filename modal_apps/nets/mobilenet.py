"""MobileNetV2 (as MODNet builds it) and MobileNetV3-Large (as torchvision builds it, which RVM subclasses).

Both are written here in plain PyTorch so no torchvision is needed, with the same module tree as the
originals, so state-dict keys match:

* :class:`MobileNetV2` follows ``ZHKKKe/MODNet src/models/backbones/mobilenetv2.py``: ``features`` is a
  Sequential of ``conv_bn`` (Sequential: conv, BN, ReLU6), 17 :class:`InvertedResidualV2` blocks whose
  layers sit in ``.conv``, and ``conv_1x1_bn`` to 1280 channels (keys ``features.N.conv.M.weight``).
* :class:`MobileNetV3Large` follows ``torchvision.models.mobilenetv3`` (``features.0`` is
  Conv2dNormActivation, ``features.1..15`` are inverted residuals whose layers sit in ``.block``, the
  squeeze-excitation has ``fc1``/``fc2`` convolutions, ``features.16`` is the 960-channel 1x1 conv), with
  RVM's configuration: the last stage dilated instead of strided (output stride 16), no classifier.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The channel rounding both papers use: to a multiple of ``divisor``, never more than 10% down."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


# ---------------------------------------------------------------------------------------------------------
# MobileNetV2 (MODNet's backbone)


def conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


def conv_1x1_bn(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidualV2(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1), residual when the shape is kept."""

    def __init__(self, inp: int, oup: int, stride: int, expansion: int, dilation: int = 1) -> None:
        super().__init__()
        hidden = round(inp * expansion)
        self.use_res_connect = stride == 1 and inp == oup
        depthwise = [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, dilation=dilation, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
        ]
        project = [nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        if expansion == 1:
            self.conv = nn.Sequential(*depthwise, *project)
        else:
            expand = [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
            self.conv = nn.Sequential(*expand, *depthwise, *project)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MODNet's MobileNetV2 (alpha 1.0, expansion 6, no classifier): ``features`` 0..18."""

    # expansion t, channels c, repeats n, first stride s
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))

    def __init__(self, in_channels: int = 3, alpha: float = 1.0) -> None:
        super().__init__()
        channels = make_divisible(32 * alpha, 8)
        last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
        layers: list[nn.Module] = [conv_bn(in_channels, channels, 2)]
        for t, c, n, s in self.SETTING:
            out = make_divisible(int(c * alpha), 8)
            for i in range(n):
                layers.append(InvertedResidualV2(channels, out, s if i == 0 else 1, expansion=t))
                channels = out
        layers.append(conv_1x1_bn(channels, last))
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)  # type: ignore[no-any-return]


class MobileNetV2Backbone(nn.Module):
    """MODNet's wrapper: ``.model`` is the network; features at strides 2, 4, 8, 16, 32."""

    enc_channels = (16, 24, 32, 96, 1280)
    _STAGES = ((0, 2), (2, 4), (4, 7), (7, 14), (14, 19))

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.model = MobileNetV2(in_channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for start, stop in self._STAGES:
            for index in range(start, stop):
                x = self.model.features[index](x)
            features.append(x)
        return features  # [enc2x, enc4x, enc8x, enc16x, enc32x]


# ---------------------------------------------------------------------------------------------------------
# MobileNetV3-Large (RVM's encoder)


class ConvNormActivation(nn.Sequential):
    """torchvision's Conv2dNormActivation: conv (no bias), BatchNorm(eps 1e-3, momentum 0.01), activation."""

    def __init__(
        self, inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        padding = (kernel - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(inp, oup, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(oup, eps=0.001, momentum=0.01),
        ]
        if activation is not None:
            layers.append(activation(inplace=True) if activation in (nn.ReLU, nn.Hardswish) else activation())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation with MobileNetV3's hard-sigmoid gate."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x  # type: ignore[no-any-return]


class InvertedResidualV3(nn.Module):
    def __init__(
        self, inp: int, kernel: int, expanded: int, oup: int, use_se: bool, use_hs: bool, stride: int, dilation: int
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and inp == oup
        activation: type[nn.Module] = nn.Hardswish if use_hs else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != inp:
            layers.append(ConvNormActivation(inp, expanded, 1, activation=activation))
        layers.append(ConvNormActivation(
            expanded, expanded, kernel, stride=1 if dilation > 1 else stride, groups=expanded, dilation=dilation,
            activation=activation,
        ))
        if use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8)))
        layers.append(ConvNormActivation(expanded, oup, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        result: Tensor = self.block(x)
        return result + x if self.use_res_connect else result


class MobileNetV3Large(nn.Module):
    """RVM's MobileNetV3LargeEncoder: ``features`` 0..16; :meth:`forward` returns f1..f4 at 1/2, 1/4,
    1/8 and 1/16 with 16, 24, 40 and 960 channels (input normalized with ImageNet's mean and std)."""

    # input, kernel, expanded, output, SE, hard-swish, stride, dilation (RVM's InvertedResidualConfig list)
    SETTING = (
        (16, 3, 16, 16, False, False, 1, 1),
        (16, 3, 64, 24, False, False, 2, 1),  # C1
        (24, 3, 72, 24, False, False, 1, 1),
        (24, 5, 72, 40, True, False, 2, 1),  # C2
        (40, 5, 120, 40, True, False, 1, 1),
        (40, 5, 120, 40, True, False, 1, 1),
        (40, 3, 240, 80, False, True, 2, 1),  # C3
        (80, 3, 200, 80, False, True, 1, 1),
        (80, 3, 184, 80, False, True, 1, 1),
        (80, 3, 184, 80, False, True, 1, 1),
        (80, 3, 480, 112, True, True, 1, 1),
        (112, 3, 672, 112, True, True, 1, 1),
        (112, 5, 672, 160, True, True, 2, 2),  # C4: dilated, so stride 1
        (160, 5, 960, 160, True, True, 1, 2),
        (160, 5, 960, 160, True, True, 1, 2),
    )
    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvNormActivation(3, 16, 3, stride=2, activation=nn.Hardswish)]
        layers += [InvertedResidualV3(*setting) for setting in self.SETTING]
        layers.append(ConvNormActivation(160, 960, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x``: [N, 3, H, W] RGB in 0..1."""
        mean = torch.tensor(self.MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        out = []
        for start, stop in ((0, 2), (2, 4), (4, 7), (7, 17)):
            for index in range(start, stop):
                x = self.features[index](x)
            out.append(x)
        return out
