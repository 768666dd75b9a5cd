"""Strip pooling: the strip pooling module (SPM) and the mixed pooling module (MPM).

Hou, Zhang, Cheng, Feng, *Strip Pooling: Rethinking Spatial Pooling for Scene Parsing*, CVPR 2020,
arXiv:2003.13328; official code github.com/Andrew-Qibin/SPNet.

Strip pooling (Sec. 3.1) averages a feature map ``x`` (C×H×W) over a long, narrow window: a whole row
(1×W) or a whole column (H×1)::

    y^h_{c,i} = (1/W) Σ_{0≤j<W} x_{c,i,j}        horizontal strip pooling, Eq. (2)
    y^v_{c,j} = (1/H) Σ_{0≤i<H} x_{c,i,j}        vertical strip pooling,   Eq. (3)

**SPM** (Sec. 3.2, Fig. 2): each strip is filtered by a 1D convolution of kernel 3 along its length
(an H×1 column of row means gets a 3×1 convolution, a 1×W row of column means a 1×3 one), the two are
expanded back to H×W and summed, Eq. (4): ``y_{c,i,j} = y^h_{c,i} + y^v_{c,j}``; the output rescales the
input, Eq. (5): ``z = x ⊙ σ(f(y))``. As in the official ``SPBlock``, each 1D convolution is followed by
BatchNorm, ``f`` is ReLU followed by a 1×1 convolution with bias, and the hidden width equals the output
width. Deviation: the official strip convolutions switch between ``bias=True`` and ``bias=False`` across
versions; here they have no bias (a BatchNorm follows, which makes it redundant). Parameters:
``6·C·M + 4·M + M·C + C`` for ``C`` input/output and ``M`` hidden channels (``7C² + 5C`` when ``M = C``).

**MPM** (Sec. 3.3, Fig. 3): two parallel sub-modules on a reduced width ``C/4``:
(a) *short-range*: a 3×3 convolution of ``x`` plus two pyramid-pooling branches (adaptive average
pooling to ``p1×p1`` and ``p2×p2`` bins, 3×3 convolution, bilinear upsampling), summed, ReLU, 3×3 conv;
(b) *long-range*: horizontal and vertical strip pooling, each with a 1×3 / 3×1 convolution, expanded
(bilinear upsampling of a 1×W or H×1 map is a broadcast), summed, ReLU, 3×3 conv. The two outputs are
concatenated, fused by a 1×1 convolution + BN back to ``C`` channels and added to the input:
``out = ReLU(x + fuse([a, b]))``. This follows the official ``StripPooling`` class (which is the MPM):
the bins ``(p1, p2) = (20, 12)`` there are for 60×60 to 96×96 feature maps; a smaller map needs smaller
bins, so they are an argument. Every convolution is bias-free and followed by BatchNorm.

Both modules keep the input shape ``(N, C, H, W)`` and take the channel count first, so a network can swap
them by name (``lib.models.segmentation``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv_bn(cin: int, cout: int, kernel, padding, relu: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, padding=padding, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def strip_pool(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical strip pooling, Eqs. (2)-(3): ``(N, C, H, 1)`` row means, ``(N, C, 1, W)`` column means."""
    return x.mean(dim=3, keepdim=True), x.mean(dim=2, keepdim=True)


class StripPoolingModule(nn.Module):
    """SPM: ``x ⊙ σ(conv1x1(ReLU(expand(BN(conv3x1(row means))) + expand(BN(conv1x3(column means))))))``.

    Args:
        channels: input and output channels ``C``.
        hidden: channels ``M`` of the strip convolutions (default ``C``, as in the official code).
    """

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        hidden = channels if hidden is None else hidden
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive integer or None, got {hidden!r}")
        self.channels, self.hidden = channels, hidden
        self.conv_h = _conv_bn(channels, hidden, (3, 1), (1, 0))   # along H on the H×1 strip of row means
        self.conv_v = _conv_bn(channels, hidden, (1, 3), (0, 1))   # along W on the 1×W strip of column means
        self.out = nn.Conv2d(hidden, channels, 1, bias=True)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The attention map ``σ(f(y))`` of Eq. (5), shape ``(N, C, H, W)``."""
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected input (N, {self.channels}, H, W), got {tuple(x.shape)}")
        rows, cols = strip_pool(x)
        y = self.conv_h(rows) + self.conv_v(cols)     # Eq. (4): broadcast-sum of the two expanded strips
        return torch.sigmoid(self.out(F.relu(y)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def spm_params(channels: int, hidden: int | None = None) -> int:
    """Closed-form parameter count of ``StripPoolingModule(channels, hidden)``."""
    m = channels if hidden is None else hidden
    return 2 * (3 * channels * m + 2 * m) + m * channels + channels


class MixedPoolingModule(nn.Module):
    """MPM: a pyramid-pooling short-range branch and a strip-pooling long-range branch, fused residually.

    Args:
        channels: input and output channels ``C``.
        bins: the two pyramid pooling grid sizes ``(p1, p2)`` (official code: ``(20, 12)``).
        reduction: width divisor of the branches (official code: 4).
    """

    def __init__(self, channels: int, bins: tuple[int, int] = (20, 12), reduction: int = 4):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        if not isinstance(reduction, int) or reduction < 1 or channels % reduction:
            raise ValueError(f"reduction must be a positive integer dividing channels={channels}, got {reduction!r}")
        bins = tuple(bins)
        if len(bins) != 2 or not all(isinstance(b, int) and b >= 1 for b in bins):
            raise ValueError(f"bins must be two positive integers, got {bins!r}")
        c, m = channels, channels // reduction
        self.channels, self.bins = channels, bins
        self.reduce_short = _conv_bn(c, m, 1, 0, relu=True)
        self.reduce_long = _conv_bn(c, m, 1, 0, relu=True)
        self.local = _conv_bn(m, m, 3, 1)
        self.pool_convs = nn.ModuleList([_conv_bn(m, m, 3, 1) for _ in bins])
        self.strip_h = _conv_bn(m, m, (3, 1), (1, 0))
        self.strip_v = _conv_bn(m, m, (1, 3), (0, 1))
        self.fuse_short = _conv_bn(m, m, 3, 1, relu=True)
        self.fuse_long = _conv_bn(m, m, 3, 1, relu=True)
        self.fuse = _conv_bn(2 * m, c, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"expected input (N, {self.channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[2:]
        s, l = self.reduce_short(x), self.reduce_long(x)
        short = self.local(s)
        for b, conv in zip(self.bins, self.pool_convs):
            short = short + F.interpolate(conv(F.adaptive_avg_pool2d(s, b)), (h, w), mode="bilinear",
                                          align_corners=True)
        rows, cols = strip_pool(l)
        long = self.strip_h(rows) + self.strip_v(cols)
        short = self.fuse_short(F.relu(short))
        long = self.fuse_long(F.relu(long))
        return F.relu(x + self.fuse(torch.cat([short, long], dim=1)))


def mpm_params(channels: int, bins: tuple[int, int] = (20, 12), reduction: int = 4) -> int:
    """Closed-form parameter count of ``MixedPoolingModule(channels, bins, reduction)``."""
    c, m = channels, channels // reduction
    reduce = 2 * (c * m + 2 * m)
    square = (1 + len(bins) + 2) * (9 * m * m + 2 * m)     # local, pooled branches, two fusing 3×3 convs
    strips = 2 * (3 * m * m + 2 * m)
    return reduce + square + strips + 2 * m * c + 2 * c


__all__ = ["strip_pool", "StripPoolingModule", "MixedPoolingModule", "spm_params", "mpm_params"]
