"""Pyramid pooling module (PPM) of PSPNet, the spatial pooling baseline that strip pooling is compared with.

Zhao, Shi, Qi, Wang, Jia, *Pyramid Scene Parsing Network*, CVPR 2017, arXiv:1612.01105, Sec. 3.2: the
feature map is average-pooled to ``b×b`` grids for ``b`` in the bins (1, 2, 3, 6), each pooled map is
reduced to ``C/len(bins)`` channels by a 1×1 convolution (+ BN + ReLU), upsampled bilinearly to the input
size and concatenated with the input: ``(N, C, H, W) -> (N, 2C, H, W)`` for four bins. A 3×3 convolution
after it (the segmentation head) fuses the concatenation, as in PSPNet.

Parameters: ``len(bins) · (C · C/len(bins) + 2 · C/len(bins))`` = ``C² + 2C`` for four bins.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PyramidPooling(nn.Module):
    """``concat[x, up(ReLU(BN(conv1x1(avgpool_b(x))))) for b in bins]``.

    Args:
        channels: input channels ``C`` (must be divisible by ``len(bins)``).
        bins: the pooling grid sizes (PSPNet: 1, 2, 3, 6).
    """

    def __init__(self, channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        bins = tuple(bins)
        if not bins or not all(isinstance(b, int) and b >= 1 for b in bins):
            raise ValueError(f"bins must be positive integers, got {bins!r}")
        if not isinstance(channels, int) or channels < 1 or channels % len(bins):
            raise ValueError(f"channels must be a positive integer divisible by len(bins)={len(bins)}, got {channels!r}")
        self.channels, self.bins = channels, bins
        width = channels // len(bins)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
            for _ in bins)

    @property
    def out_channels(self) -> int:
        return 2 * self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected input (N, {self.channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[2:]
        pooled = [F.interpolate(branch(F.adaptive_avg_pool2d(x, b)), (h, w), mode="bilinear", align_corners=True)
                  for b, branch in zip(self.bins, self.branches)]
        return torch.cat([x, *pooled], dim=1)


def ppm_params(channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> int:
    """Closed-form parameter count of ``PyramidPooling(channels, bins)``."""
    width = channels // len(bins)
    return len(bins) * (channels * width + 2 * width)


__all__ = ["PyramidPooling", "ppm_params"]
