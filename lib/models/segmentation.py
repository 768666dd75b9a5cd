"""A small dilated-ResNet segmentation network with a context-module slot (none | ppm | spm | mpm) and SPMs.

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

``num_contexts`` stacks that many ``spm`` / ``mpm`` modules in the head (the paper's full SPNet stacks two
MPMs; its ablation counts "#MPM"). ``backbone_spm`` puts strip pooling modules inside the encoder's
residual blocks, as the full SPNet does:

* ``none``       — no SPM in the encoder (the default);
* ``last-stage`` — one SPM in every block of the last (dilated) stage;
* ``official``   — the placement of the official ResNet: the last block of every earlier stage and every
  block of the last stage (in their ResNet-50/101: block 3 of layer1, 4 of layer2, the last of layer3 and
  all three of layer4, six SPMs). With the default ``blocks=(1, 1, 2)`` this is every block.

Inside a block the SPM gates the residual branch between its convolutions: the official bottleneck applies it
after the 3×3 convolution + BN + ReLU and before the 1×1 expansion; a basic block has two 3×3 convolutions,
so here it sits after the first (+ BN + ReLU) and before the second, at the block's width:
``relu(BN(conv2(SPM(relu(BN(conv1(x)))))) + s(x))``. The shortcut is never gated.

Deviations from the paper's network: trained from scratch (no ImageNet weights), basic blocks and widths
16-32-64-64 in three stages instead of ResNet-50 bottlenecks in four, no 1×1 reduction before the head's
context modules (the official head reduces 2048 to 1024 channels first; the book's last map has 64), the
MPMs' pyramid bins scaled to the feature map, no auxiliary loss.

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
BACKBONE_SPM = ("none", "last-stage", "official")
STACKABLE_CONTEXTS = ("spm", "mpm")     # keep the channel count, so several can follow one another


# Two dilated 3×3 conv + BN layers (stride on the first) with a 1×1 projection shortcut when needed: the
# CIFAR ResNet's basic block with its dilation option.
DilatedBlock = BasicBlock


class StripPooledBlock(DilatedBlock):
    """The dilated basic block with a strip pooling module gating its residual branch between the two convolutions:
    ``relu(BN(conv2(SPM(relu(BN(conv1(x)))))) + s(x))``, the SPM at the block's output width."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1):
        super().__init__(in_ch, out_ch, stride=stride, dilation=dilation)
        self.spm = StripPoolingModule(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.spm(torch.relu(self.bn1(self.conv1(x))))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def spm_placement(blocks, backbone_spm: str = "none") -> list[list[bool]]:
    """Which encoder blocks carry an SPM: one list of flags per stage, one flag per block."""
    if backbone_spm not in BACKBONE_SPM:
        raise ValueError(f"unknown backbone_spm {backbone_spm!r}; accepted: {', '.join(BACKBONE_SPM)}")
    last = len(blocks) - 1

    def has_spm(stage: int, i: int, n: int) -> bool:
        if backbone_spm == "none":
            return False
        return stage == last or (backbone_spm == "official" and i == n - 1)

    return [[has_spm(stage, i, n) for i in range(n)] for stage, n in enumerate(blocks)]


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
    """Dilated ResNet (output stride 8), optionally with SPMs in its blocks, + context module(s) + FCN head +
    bilinear upsampling.

    Args:
        num_classes: output classes.
        context: ``"none" | "ppm" | "spm" | "mpm"``.
        widths: channels of the stem and the three stages (strides 2, 2, 2, then dilation 2 at stride 8).
        blocks: basic blocks per stage.
        head_channels: channels of the FCN head's 3×3 convolution.
        dropout: dropout before the classifier (PSPNet / SPNet heads: 0.1).
        mpm_bins: pyramid bins of the MPM's short-range branch.
        num_contexts: how many context modules follow one another in the head (``spm`` / ``mpm`` only; 1 for
            ``none`` and ``ppm``). The full SPNet: 2 MPMs.
        backbone_spm: ``"none" | "last-stage" | "official"``, the SPMs inside the encoder's blocks (see the
            module docstring). The full SPNet: ``"official"``.
    """

    def __init__(self, num_classes: int = 11, context: str = "none", *, widths=(16, 32, 64, 64), blocks=(1, 1, 2),
                 head_channels: int = 64, dropout: float = 0.1, mpm_bins=(4, 2), num_contexts: int = 1,
                 backbone_spm: str = "none"):
        super().__init__()
        if context not in CONTEXT_MODULES:
            raise ValueError(f"unknown context module {context!r}; accepted: {', '.join(CONTEXT_MODULES)}")
        if len(widths) != 4 or len(blocks) != 3:
            raise ValueError(f"widths needs 4 entries (stem + 3 stages) and blocks 3, got {widths!r}, {blocks!r}")
        if isinstance(num_contexts, bool) or not isinstance(num_contexts, int) or num_contexts < 1:
            raise ValueError(f"num_contexts must be a positive integer, got {num_contexts!r}")
        if num_contexts > 1 and context not in STACKABLE_CONTEXTS:
            raise ValueError(f"num_contexts={num_contexts} needs a context that keeps the channel count; "
                             f"context {context!r} accepts only 1; stackable: {', '.join(STACKABLE_CONTEXTS)}")
        placement = spm_placement(blocks, backbone_spm)
        self.context_name, self.num_contexts, self.backbone_spm = context, num_contexts, backbone_spm
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers, channels = [], widths[0]
        for stage, (out, n) in enumerate(zip(widths[1:], blocks)):
            stride, dilation = (2, 1) if stage < 2 else (1, 2)
            for i in range(n):
                block = StripPooledBlock if placement[stage][i] else DilatedBlock
                layers.append(block(channels, out, stride=stride if i == 0 else 1, dilation=dilation))
                channels = out
        self.encoder = nn.Sequential(*layers)
        self.feature_channels = channels
        self.context, context_out = create_context(context, channels, mpm_bins=mpm_bins)
        if num_contexts > 1:
            self.context = nn.Sequential(self.context, *(create_context(context, channels, mpm_bins=mpm_bins)[0]
                                                         for _ in range(num_contexts - 1)))
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


__all__ = ["BACKBONE_SPM", "CONTEXT_MODULES", "STACKABLE_CONTEXTS", "DilatedBlock", "SegmentationNet",
           "StripPooledBlock", "create_context", "spm_placement"]
