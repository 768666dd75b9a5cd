"""A small dilated-ResNet segmentation network with a context-module slot: none | ppm | spm | mpm.

The book's CPU-sized counterpart of the "Base FCN" of Hou et al., *Strip Pooling: Rethinking Spatial
Pooling for Scene Parsing*, CVPR 2020, arXiv:2003.13328 (Sec. 4.1): a ResNet encoder with output stride 8
(the last stage dilated instead of strided, as in their dilated ResNet-50/101), a context module on the
last feature map, an FCN head (3×3 conv + BN + ReLU, dropout, 1×1 classifier) and bilinear upsampling of
the logits to the input size. The context modules:

* ``none`` — the Base FCN;
* ``ppm``  — PSPNet's pyramid pooling, bins (1, 2, 3, 6) (``lib.nn.pyramid_pooling``); the head then
  reads ``2C`` channels;
* ``spm``  — a strip pooling module (``lib.nn.strip_pooling.StripPoolingModule``) on the last map;
* ``mpm``  — a mixed pooling module (``lib.nn.strip_pooling.MixedPoolingModule``) on the last map.

Deviations from the paper's network: trained from scratch (no ImageNet weights), basic blocks and widths
16-32-64-64 instead of ResNet-50 bottlenecks, one context module in the head instead of SPMs inside the
backbone's blocks and two MPMs in the head (the paper's full SPNet), no auxiliary loss.

Shapes: ``(N, 3, H, W)`` in, ``(N, num_classes, H, W)`` logits out (H, W divisible by 8).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from lib.nn.pyramid_pooling import PyramidPooling
from lib.nn.strip_pooling import MixedPoolingModule, StripPoolingModule

from .resnet_cifar import BasicBlock

CONTEXT_MODULES = ("none", "ppm", "spm", "mpm")


# Two dilated 3×3 conv + BN layers (stride on the first) with a 1×1 projection shortcut when needed: the
# CIFAR ResNet's basic block with its dilation option.
DilatedBlock = BasicBlock


def create_context(name: str, channels: int, *, mpm_bins: tuple[int, int] = (4, 2)) -> tuple[nn.Module, int]:
    """The context module ``name`` on ``channels`` and the channel count it outputs."""
    if name == "none":
        return nn.Identity(), channels
    if name == "ppm":
        module = PyramidPooling(channels)
        return module, module.out_channels
    if name == "spm":
        return StripPoolingModule(channels), channels
    if name == "mpm":
        return MixedPoolingModule(channels, bins=tuple(mpm_bins)), channels
    raise ValueError(f"unknown context module {name!r}; accepted: {', '.join(CONTEXT_MODULES)}")


class SegmentationNet(nn.Module):
    """Dilated ResNet (output stride 8) + context module + FCN head + bilinear upsampling.

    Args:
        num_classes: output classes.
        context: ``"none" | "ppm" | "spm" | "mpm"``.
        widths: channels of the stem and the three stages (strides 2, 2, 2, then dilation 2 at stride 8).
        blocks: basic blocks per stage.
        head_channels: channels of the FCN head's 3×3 convolution.
        dropout: dropout before the classifier (PSPNet / SPNet heads: 0.1).
        mpm_bins: pyramid bins of the MPM's short-range branch.
    """

    def __init__(self, num_classes: int = 11, context: str = "none", *, widths=(16, 32, 64, 64), blocks=(1, 1, 2),
                 head_channels: int = 64, dropout: float = 0.1, mpm_bins=(4, 2)):
        super().__init__()
        if context not in CONTEXT_MODULES:
            raise ValueError(f"unknown context module {context!r}; accepted: {', '.join(CONTEXT_MODULES)}")
        if len(widths) != 4 or len(blocks) != 3:
            raise ValueError(f"widths needs 4 entries (stem + 3 stages) and blocks 3, got {widths!r}, {blocks!r}")
        self.context_name = context
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers, channels = [], widths[0]
        for stage, (out, n) in enumerate(zip(widths[1:], blocks)):
            stride, dilation = (2, 1) if stage < 2 else (1, 2)
            for i in range(n):
                layers.append(DilatedBlock(channels, out, stride=stride if i == 0 else 1, dilation=dilation))
                channels = out
        self.encoder = nn.Sequential(*layers)
        self.feature_channels = channels
        self.context, context_out = create_context(context, channels, mpm_bins=mpm_bins)
        self.head = nn.Sequential(nn.Conv2d(context_out, head_channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(head_channels), nn.ReLU(inplace=True), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's last map ``(N, C, H/8, W/8)``, before the context module."""
        return self.encoder(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        logits = self.classifier(self.head(self.context(self.features(x))))
        return F.interpolate(logits, (h, w), mode="bilinear", align_corners=False)


__all__ = ["CONTEXT_MODULES", "DilatedBlock", "SegmentationNet", "create_context"]
