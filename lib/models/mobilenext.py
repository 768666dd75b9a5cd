"""MobileNeXt: MobileNetV2's body rebuilt from sandglass blocks, at CIFAR or ImageNet strides.

Paper: D. Zhou, Q. Hou, Y. Chen, J. Feng, S. Yan, "Rethinking Bottleneck Structure for Efficient Mobile Network
Design", ECCV 2020, arXiv:2007.02269; official code github.com/zhoudaquan/rethinking_bottleneck_design
(``mnext.py``). The network of Sec. 4 (architecture table): a 3x3 stem convolution to 32 channels, then rows
``(t, c, n, s)`` of sandglass blocks (``lib/nn/sandglass.py``) with reduction ratio ``t``, output width ``c``,
``n`` repeats and stride ``s`` on the first repeat, global average pooling and a linear classifier on the
1280 channels of the last block (no separate 1x1 convolution before the pooling, unlike MobileNetV2).

Shapes: ``(N, in_channels, H, W)`` in, ``(N, num_classes)`` logits out; the last map is ``H / 8`` at CIFAR
strides (``H / 32`` at ImageNet strides), as in ``lib.models.mobilenetv2.MobileNetV2``.

Following the official code (which is more specific than the text):

* rows ``(2, 96, 1, 2), (6, 144, 1, 1), (6, 192, 3, 2), (6, 288, 3, 2), (6, 384, 4, 1), (6, 576, 4, 2),
  (6, 960, 3, 1), (6, 1280, 1, 1)``; the first block of a single-block stride-1 row keeps the full
  four-layer layout without a shortcut; other blocks pick their layout from their shapes (``"auto"``);
* widths are ``make_divisible(c * width_mult, 8)``; the last row keeps 1280 channels when ``width_mult < 1``;
* initialisation: He normal on fan-out for convolutions, BN weight 1 and bias 0, linear N(0, 0.01) and zero
  bias (the same as ``MobileNetV2`` in this book).

Deviations: dropout before the classifier defaults to 0 (the official code uses 0.2 on ImageNet), as
``MobileNetV2`` here, so that a comparison of the two changes only the blocks; ``strides="cifar"`` sets the
stem stride to 1 and the first ``c = 576`` block to stride 1, so 32x32 inputs go 32 -> 16 -> 8 -> 4 at the
``c = 96, 192, 288`` rows, the same resolution schedule as the book's MobileNetV2 at CIFAR strides.
"""
from __future__ import annotations

import torch
from torch import nn

from ..nn.sandglass import SandglassBlock, make_divisible

# (t, c, n, s) rows of the official mnext.py (the architecture table of the paper), ImageNet strides.
IMAGENET_SETTING = (
    (2, 96, 1, 2),
    (6, 144, 1, 1),
    (6, 192, 3, 2),
    (6, 288, 3, 2),
    (6, 384, 4, 1),
    (6, 576, 4, 2),
    (6, 960, 3, 1),
    (6, 1280, 1, 1),
)
# CIFAR strides: the c = 576 row at stride 1 (and stem stride 1, see MobileNeXt).
CIFAR_SETTING = tuple((t, c, n, 1 if c == 576 else s) for t, c, n, s in IMAGENET_SETTING)


class MobileNeXt(nn.Module):
    """MobileNeXt of the official code; ``width_mult`` scales every width (the last 1280 only above 1)."""

    def __init__(self, num_classes: int = 10, width_mult: float = 0.5, in_channels: int = 3, dropout: float = 0.0,
                 round_nearest: int = 8, strides: str = "cifar"):
        super().__init__()
        settings = {"cifar": (1, CIFAR_SETTING), "imagenet": (2, IMAGENET_SETTING)}
        if strides not in settings:
            raise ValueError(f"unknown strides {strides!r}; accepted: {', '.join(settings)}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        stem_stride, setting = settings[strides]
        channels = make_divisible(32 * width_mult, round_nearest)
        layers: list[nn.Module] = [nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU6(inplace=True))]
        for t, c, n, s in setting:
            out = make_divisible(c * width_mult, round_nearest)
            if c == 1280 and width_mult < 1:
                out = 1280
            for i in range(n):
                layout = "full" if (i == 0 and (t == 2 or (n == 1 and s == 1))) else "auto"
                layers.append(SandglassBlock(channels, out, s if i == 0 else 1, t, layout))
                channels = out
        self.feature_dim = channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


__all__ = ["CIFAR_SETTING", "IMAGENET_SETTING", "MobileNeXt"]
