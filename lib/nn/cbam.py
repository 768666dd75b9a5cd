"""Convolutional Block Attention Module (CBAM): channel attention followed by spatial attention.

Paper: S. Woo, J. Park, J.-Y. Lee, I. S. Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018,
arXiv:1807.06521.

Implements Eq. 1 (``F' = M_c(F) * F``, then ``F'' = M_s(F') * F'``), Eq. 2 (channel attention
``M_c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))`` with one MLP shared by both pooled vectors,
``C -> C / r -> C`` with ReLU in between) and Eq. 3 (spatial attention
``M_s(F) = sigmoid(f^{7x7}([AvgPool(F); MaxPool(F)]))``, the pooling now taken across channels).

Shapes: ``(N, C, H, W)`` in, ``(N, C, H, W)`` out.

Where the official code (github.com/Jongchan/attention-module, ``MODELS/cbam.py``) differs from the paper,
this follows the code:

* the 7x7 spatial convolution has no bias and is followed by a one-channel BatchNorm (eps 1e-5, momentum
  0.01), which the paper's Eq. 3 does not show;
* the two channel-pooled maps are stacked as ``[max; mean]`` rather than the paper's ``[avg; max]`` (only
  the order of the convolution's two input channels changes).

The MLP layers are 1x1 convolutions with bias (the official ``nn.Linear`` on a flattened ``C`` vector is
the same map). The default reduction ``r = 24`` matches the SE arm of the coordinate attention paper
(arXiv:2103.02907), whose comparison table lists SE and CBAM at the same 3.89M parameters on MobileNetV2;
the CBAM paper itself uses ``r = 16`` on ResNets. The bottleneck width is ``max(1, C // r)``.

Fewer channels than the reduction (``C < r``): the official ``ChannelGate`` builds its MLP with
``C // r = 0`` hidden units. Its output is then the second layer's bias alone (zero at PyTorch's
initialisation, since that layer has no inputs), so the channel gate is ``sigmoid(2 b)``: the same for every
input, 0.5 per channel at the start, and only ``b`` learns. Here the MLP keeps one hidden unit, so the gate
still depends on the pooled input (timm's ``CbamModule`` also keeps at least one unit;
``tests/parity/test_attention.py`` checks that the two agree at ``C = 8, r = 16``). The book's networks never
reach this case: the narrowest CBAM slot, 48 channels in MobileNetV2-0.5, gets 2 units at ``r = 24``.

Against timm's ``CbamModule`` (``tests/parity``): timm stacks ``[mean; max]`` for the spatial gate, updates
its BatchNorm with momentum 0.1 and by default has no MLP biases; with the two weight channels swapped, the
momentum set to 0.01 and ``mlp_bias=True`` the two agree to rounding.
"""
from __future__ import annotations

import torch
from torch import nn


def _mid(channels: int, reduction: int) -> int:
    return max(1, channels // reduction)


def cbam_params(channels: int, reduction: int = 24, spatial_kernel: int = 7) -> int:
    """Closed-form parameter count of ``CBAM(channels, reduction, spatial_kernel)``."""
    mid = _mid(channels, reduction)
    mlp = (channels * mid + mid) + (mid * channels + channels)
    spatial = 2 * spatial_kernel * spatial_kernel + 2   # conv without bias, BN weight and bias
    return mlp + spatial


class CBAM(nn.Module):
    """Channel gate (shared MLP on avg- and max-pooled vectors) then spatial gate (7x7 conv on channel pools)."""

    def __init__(self, channels: int, reduction: int = 24, spatial_kernel: int = 7):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels and reduction must be >= 1, got {channels} and {reduction}")
        if spatial_kernel < 1 or spatial_kernel % 2 == 0:
            raise ValueError(f"spatial_kernel must be a positive odd number, got {spatial_kernel}")
        mid = _mid(channels, reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, mid, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, kernel_size=1),
        )
        self.spatial_conv = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def channel_gate(self, x: torch.Tensor) -> torch.Tensor:
        """``M_c`` of Eq. 2, shape ``(N, C, 1, 1)``."""
        avg = x.mean(dim=(2, 3), keepdim=True)
        mx = x.amax(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))

    def spatial_gate(self, x: torch.Tensor) -> torch.Tensor:
        """``M_s`` of Eq. 3, shape ``(N, 1, H, W)``."""
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial_bn(self.spatial_conv(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel_gate(x)
        return x * self.spatial_gate(x)
