"""ResNet for 32×32 images: the CIFAR ResNets of He et al. (ResNet-20/32/44/56/110) with a width option.

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385. Implements Sec. 4.2 (CIFAR-10 analysis): a 3×3 stem convolution with ``16k`` filters,
three stages of ``n`` basic blocks (two 3×3 convolutions, Eq. 1: ``y = F(x) + x``) on maps of 32, 16 and
8 pixels with ``16k``, ``32k`` and ``64k`` filters, global average pooling and a linear classifier:
``6n + 2`` weighted layers. ``k = width`` (1 in the paper).

Shapes: ``(N, in_channels, 32, 32)`` in, ``(N, num_classes)`` logits out; ``forward_features`` returns the
pooled ``(N, 64k)`` features (for losses that need them, e.g. ISDA).

``ibn`` (one entry per stage: ``None``, ``"a"`` or ``"b"``) adds IBN-Net's instance normalisation
(``lib.nn.ibn``): ``"a"`` replaces the first BN of every block of the stage by ``IBN``; ``"b"`` adds an IN after
the residual addition of the stage's last block (never its first, as the official ``_make_layer``: a one-block
stage gets none) and, in the first stage, replaces the stem's BN by an IN, as the official ResNet-IBN-b does.
``(None, None, None)`` (default) is the plain network, bit for bit.

Deviation: where the number of channels changes, the shortcut is a 1×1 convolution with stride 2 + BN
(option B of the paper) instead of zero-padding (option A, used by the paper for CIFAR); this adds
``16k·32k + 32k·64k`` weights plus their BN (2,752 parameters at k = 1) and is the common choice in
re-implementations.
"""
from __future__ import annotations

import torch
from torch import nn

from ..nn.ibn import IBN, check_ibn_config


class BasicBlock(nn.Module):
    """Two 3×3 conv + BN layers with an identity (or 1×1 projection) shortcut: ``relu(F(x) + s(x))``;
    ``dilation`` > 1 dilates both convolutions (the dilated encoder of ``lib.models.segmentation``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1, ibn: str | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = IBN(out_ch) if ibn == "a" else nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
        self.IN = nn.InstanceNorm2d(out_ch, affine=True) if ibn == "b" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + self.shortcut(x)
        return torch.relu(self.IN(out) if self.IN is not None else out)


class ResNetCIFAR(nn.Module):
    """ResNet-(6n+2) for CIFAR: ``depth`` in {20, 32, 44, 56, 110, ...}, ``width`` multiplies the filters."""

    def __init__(self, depth: int = 20, num_classes: int = 10, width: int = 1, in_channels: int = 3,
                 ibn=(None, None, None)):
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110, ...), got {depth}")
        ibn = check_ibn_config(ibn, 3)
        n = (depth - 2) // 6
        widths = [16 * width, 32 * width, 64 * width]
        stem_norm = nn.InstanceNorm2d(widths[0], affine=True) if ibn[0] == "b" else nn.BatchNorm2d(widths[0])
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), stem_norm,
                                  nn.ReLU(inplace=True))
        layers, channels = [], widths[0]
        for stage, out in enumerate(widths):
            for i in range(n):
                # official _make_layer: "a" in every block; "b" only in the last block, never in the first (so a
                # one-block stage, as in ResNet-8, gets no IN from "b")
                block_ibn = "a" if ibn[stage] == "a" else ("b" if ibn[stage] == "b" and 0 < i == n - 1 else None)
                layers.append(BasicBlock(channels, out, stride=2 if stage > 0 and i == 0 else 1, ibn=block_ibn))
                channels = out
        self.stages = nn.Sequential(*layers)
        self.feature_dim = channels
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))
