"""Coordinate attention (CA): channel attention factorised into one gate along H and one along W.

Paper: Q. Hou, D. Zhou, J. Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021,
arXiv:2103.02907. Official code: github.com/houqb/CoordAttention (``coordatt.py``, ``mbv2_ca.py``; the
repository was first published under the name github.com/Andrew-Qibin/CoordAttention).

Implements the coordinate information embedding, Eq. 4-5 (average over W gives ``z^h`` of shape
``C×H×1``; average over H gives ``z^w`` of shape ``C×1×W``), and the coordinate attention generation,
Eq. 6-9:

* Eq. 6: ``f = act(F1([z^h, z^w]))``: ``z^w`` is transposed to ``C×W×1``, concatenated with ``z^h``
  along the spatial axis into ``C×(H+W)×1`` and mixed by one shared 1x1 convolution to ``mid`` channels;
* Eq. 7-8: ``f`` is split back into ``f^h`` (``mid×H×1``) and ``f^w`` (``mid×1×W``), and two separate 1x1
  convolutions with a sigmoid give ``a_h`` (``C×H×1``) and ``a_w`` (``C×1×W``), the paper's ``g^h``, ``g^w``;
* Eq. 9: ``y_c(i, j) = x_c(i, j) * a_h_c(i) * a_w_c(j)``.

Shapes: ``(N, C, H, W)`` in, ``(N, C, H, W)`` out; H and W need not be equal.

Where the official code differs from the paper, this follows the code:

* a BatchNorm sits between the shared convolution and ``act`` (Eq. 6 has none); it normalises over the
  ``N × (H + W)`` positions of the concatenated descriptor, so in training mode the H and W descriptors
  share its batch statistics;
* the non-linearity ``act`` is h-swish, ``x * relu6(x + 3) / 6`` (``torch.nn.Hardswish``); the paper only
  says "non-linear activation function";
* the bottleneck width is ``mid = max(min_mid, C // r)`` with ``min_mid = 8`` and ``r = 32``, so narrow
  layers are not squeezed below 8 channels; the paper writes ``C / r``;
* all three 1x1 convolutions carry a bias, including the one before the BatchNorm (in training mode the
  batch mean cancels it, so it receives no gradient).

timm's ``CoordAttn`` (``timm.layers.coord_attn``) is the same computation but by default has no biases and
``make_divisible(C / 24, 8)`` hidden channels; with ``rd_channels=max(8, C // 32)`` and ``bias=True`` it agrees
with this module to rounding (``tests/parity``).
"""
from __future__ import annotations

import torch
from torch import nn


def _mid(channels: int, reduction: int, min_mid: int) -> int:
    return max(min_mid, channels // reduction)


def coord_attention_params(channels: int, reduction: int = 32, min_mid: int = 8) -> int:
    """Closed-form parameter count of ``CoordAttention(channels, reduction, min_mid)``, BN affine included."""
    mid = _mid(channels, reduction, min_mid)
    shared = channels * mid + mid + 2 * mid          # conv with bias, then BN weight and bias
    heads = 2 * (mid * channels + channels)          # one conv with bias per direction
    return shared + heads


class CoordAttention(nn.Module):
    """CA block: ``x * a_h * a_w`` with ``a_h`` constant along W and ``a_w`` constant along H."""

    def __init__(self, channels: int, reduction: int = 32, min_mid: int = 8):
        super().__init__()
        if channels < 1 or reduction < 1 or min_mid < 1:
            raise ValueError(f"channels, reduction and min_mid must be >= 1, got {channels}, {reduction}, {min_mid}")
        mid = _mid(channels, reduction, min_mid)
        self.shared = nn.Conv2d(channels, mid, kernel_size=1)
        self.bn = nn.BatchNorm2d(mid)
        self.act = nn.Hardswish()
        self.head_h = nn.Conv2d(mid, channels, kernel_size=1)
        self.head_w = nn.Conv2d(mid, channels, kernel_size=1)

    def attention_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a_h, a_w)`` of Eq. 7-8, shapes ``(N, C, H, 1)`` and ``(N, C, 1, W)``."""
        h, w = x.shape[-2:]
        z_h = x.mean(dim=3, keepdim=True)                        # (N, C, H, 1)
        z_w = x.mean(dim=2, keepdim=True).transpose(2, 3)        # (N, C, W, 1)
        f = self.act(self.bn(self.shared(torch.cat([z_h, z_w], dim=2))))
        f_h, f_w = torch.split(f, [h, w], dim=2)
        a_h = torch.sigmoid(self.head_h(f_h))
        a_w = torch.sigmoid(self.head_w(f_w.transpose(2, 3)))
        return a_h, a_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_h, a_w = self.attention_maps(x)
        return x * a_h * a_w
