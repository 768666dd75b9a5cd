"""Squeeze-and-Excitation (SE) channel attention, configured as the SE baseline of the coordinate attention paper.

Paper: J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.

Implements Eq. 2 (squeeze: global average pool, ``z_c = mean_{i,j} u_c(i, j)``), Eq. 3 (excitation:
``s = sigmoid(W2 relu(W1 z))`` with ``W1`` reducing ``C`` to ``C / r`` and ``W2`` expanding back) and
Eq. 4 (rescale: ``x~_c = s_c * u_c``). The two fully connected layers are 1x1 convolutions with bias, which
is the same map on a ``C×1×1`` tensor and avoids reshaping.

Shapes: ``(N, C, H, W)`` in, ``(N, C, H, W)`` out.

Choices made to match the SE arm of Hou, Zhou, Feng, "Coordinate Attention for Efficient Mobile Network
Design", CVPR 2021, arXiv:2103.02907 (no SE code was released with it):

* the gate is the plain sigmoid and the hidden non-linearity ReLU, as in Eq. 3 of the SE paper (not the
  hard-sigmoid SE of MobileNetV3);
* the default reduction is ``r = 24``: placed after the depthwise convolution of every expanding
  MobileNetV2 block (the CA slot), SE with ``r = 24`` adds 0.383M parameters to MobileNetV2-1.0, giving the
  3.89M of the CA paper's comparison table; ``r = 4`` or ``16`` would give 5.77M or 4.08M;
* the bottleneck width is ``max(1, C // r)`` so that narrow CIFAR-sized blocks keep at least one unit.
"""
from __future__ import annotations

import torch
from torch import nn


def _mid(channels: int, reduction: int) -> int:
    return max(1, channels // reduction)


def se_params(channels: int, reduction: int = 24) -> int:
    """Closed-form parameter count of ``SqueezeExcite(channels, reduction)``: two 1x1 convs with bias."""
    mid = _mid(channels, reduction)
    return (channels * mid + mid) + (mid * channels + channels)


class SqueezeExcite(nn.Module):
    """SE block: ``x * sigmoid(W2 relu(W1 avgpool(x)))``, one gate value per channel."""

    def __init__(self, channels: int, reduction: int = 24):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels and reduction must be >= 1, got {channels} and {reduction}")
        mid = _mid(channels, reduction)
        self.reduce = nn.Conv2d(channels, mid, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, kernel_size=1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Channel weights ``s`` of Eq. 3, shape ``(N, C, 1, 1)``, each in ``(0, 1)``."""
        z = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.expand(self.act(self.reduce(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)
