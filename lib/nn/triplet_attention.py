"""Triplet attention: three Z-pool + k x k convolution gates on the (C, W), (H, C) and (H, W) planes, averaged.

Paper: D. Misra, T. Nalamada, A. U. Arasanipalai, Q. Hou, "Rotate to Attend: Convolutional Triplet Attention
Module", WACV 2021, arXiv:2010.03045 (official code: github.com/landskape-ai/triplet-attention).

For an input ``x`` of shape ``(N, C, H, W)`` (Sec. 3):

* Z-pool (Eq. 1) reduces the first axis of a 3-d tensor to two channels, its maximum and its mean:
  ``Z(x) = [max_0 x ; mean_0 x]``, shape ``(2, ., .)``;
* each branch turns the tensor so that one axis comes first, Z-pools it, applies a ``k x k`` convolution
  (2 -> 1 channels) and a sigmoid, multiplies the turned tensor by the resulting map and turns it back:

  - branch 1, channel-width interaction: H first, the gate is a ``(C, W)`` map shared over H;
  - branch 2, height-channel interaction: W first, the gate is a ``(H, C)`` map shared over W;
  - branch 3, spatial attention (as CBAM's spatial gate): C first, the gate is a ``(H, W)`` map;

* the output is the plain mean of the three branch outputs (Eq. 2 and 3):
  ``y = (y_1 + y_2 + y_3) / 3``.

Shapes: ``(N, C, H, W)`` in, ``(N, C, H, W)`` out. The parameters do not depend on ``C``: three gates,
each a 2 -> 1 ``k x k`` convolution without bias (``2 k^2`` weights) and a one-channel BatchNorm (2), so
``6 k^2 + 6`` in all (300 for ``k = 7``; ``4 k^2 + 4`` without the spatial branch), see
``triplet_attention_params``.

Where the official code (``triplet_attention.py``) is more specific than, or differs from, the paper, this
follows the code:

* the paper "rotates" the tensor by 90 degrees; the code permutes axes (a transposition). The two are the same
  here: a 90-degree rotation is a transposition plus a flip of one axis, and that axis is the one Z-pool
  reduces, which max and mean do not see (``tests/nn/test_triplet_attention.py`` checks it with ``rot90``);
* the convolution has no bias and is followed by a BatchNorm (eps 1e-5, momentum 0.01) before the sigmoid,
  which Eq. 2 does not show; Z-pool stacks ``[max; mean]`` in that order;
* the constructor's channel count is accepted (for the uniform ``Layer(channels, **options)`` signature of
  ``lib.nn.attention``) and checked, but nothing depends on it;
* ``no_spatial=True`` drops branch 3 and averages the other two, as the code's option of that name does.

Computation: the official code permutes the whole tensor for branches 1 and 2, gates it, permutes it back
and averages three gated copies. Here each gate is computed from max and mean taken along the axis of ``x``
directly, its small map is transposed into place and broadcast, and ``y = x * (g_1 + g_2 + g_3) / 3``: the
same function (equal up to rounding; ``branches`` gives the three gated copies) without copying the
feature map four times, which makes training on a CPU several times faster.

The official code fixes ``k = 7`` (the default here); the paper's MobileNetV2 ImageNet entry uses ``k = 3``
according to the official README, which lists both kernel sizes.
"""
from __future__ import annotations

import torch
from torch import nn


def z_pool(x: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``[max; mean]`` over dim 1 of ``(N, D, A, B)``, shape ``(N, 2, A, B)``."""
    return torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)


def triplet_attention_params(channels: int = 0, kernel_size: int = 7, no_spatial: bool = False) -> int:
    """Closed-form parameter count of ``TripletAttention(channels, kernel_size, no_spatial)``: independent of
    ``channels``; per gate ``2 k^2`` convolution weights + 2 BatchNorm parameters."""
    gates = 2 if no_spatial else 3
    return gates * (2 * kernel_size * kernel_size + 2)


class ZPoolGate(nn.Module):
    """One branch's gate on a tensor whose dim 1 is the axis to pool: ``x * sigmoid(BN(conv(Z(x))))``."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def gate_of_pooled(self, z: torch.Tensor) -> torch.Tensor:
        """``sigmoid(BN(conv(z)))`` for a Z-pooled ``z`` of shape ``(N, 2, A, B)``: the map ``(N, 1, A, B)``."""
        return torch.sigmoid(self.bn(self.conv(z)))

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The attention map ``sigmoid(BN(conv(Z-pool(x))))`` of a tensor whose dim 1 is pooled, ``(N, 1, A, B)``."""
        return self.gate_of_pooled(z_pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class TripletAttention(nn.Module):
    """Triplet attention (Sec. 3, Eq. 1-3): the mean of three Z-pool gates on turned copies of the input.

    Arguments: ``channels`` (checked, unused: the cost does not depend on it), ``kernel_size`` (odd, the
    official 7 by default), ``no_spatial`` (drop the spatial branch, as in the official code's option).
    Gates: ``cw`` (branch 1, pools H), ``hc`` (branch 2, pools W), ``hw`` (branch 3, pools C), named as in
    the official code.
    """

    def __init__(self, channels: int, kernel_size: int = 7, no_spatial: bool = False):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        self.no_spatial = bool(no_spatial)
        self.cw = ZPoolGate(kernel_size)
        self.hc = ZPoolGate(kernel_size)
        self.hw = None if self.no_spatial else ZPoolGate(kernel_size)

    def gates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The branch gates, each broadcastable to ``x``: ``(N, C, 1, W)``, ``(N, C, H, 1)`` (and ``(N, 1, H, W)``)."""
        # branch 1: Z-pool over H -> a map on the (C, W) plane, shared along H
        g1 = self.cw.gate_of_pooled(torch.stack([x.amax(dim=2), x.mean(dim=2)], dim=1)).permute(0, 2, 1, 3)
        # branch 2: Z-pool over W -> a map on the (H, C) plane (the code's axis order), shared along W
        z2 = torch.stack([x.amax(dim=3), x.mean(dim=3)], dim=1).transpose(2, 3)
        g2 = self.hc.gate_of_pooled(z2).permute(0, 3, 2, 1)
        if self.hw is None:
            return [g1, g2]
        return [g1, g2, self.hw.gate(x)]   # branch 3: Z-pool over C -> a map on the (H, W) plane

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The gated copies ``[y_1, y_2(, y_3)]`` of Eq. 2, each ``(N, C, H, W)``, before averaging."""
        return [x * g for g in self.gates(x)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.gates(x)
        return x * (sum(gates) / len(gates))
