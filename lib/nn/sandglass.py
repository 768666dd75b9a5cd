"""The sandglass block of MobileNeXt: shortcut and depthwise convolutions on the wide tensors.

Paper: D. Zhou, Q. Hou, Y. Chen, J. Feng, S. Yan, "Rethinking Bottleneck Structure for Efficient Mobile Network
Design", ECCV 2020, arXiv:2007.02269; official code github.com/zhoudaquan/rethinking_bottleneck_design
(``mnext.py`` of the MobileNeXt release). Sec. 3.3 and Fig. 3(b) of the paper: for an input ``F`` with ``M``
channels, a 3x3 depthwise convolution (BN, ReLU6), a linear 1x1 reduction to ``M / t`` channels (BN), a 1x1
expansion to ``N`` channels (BN, ReLU6) and a linear 3x3 depthwise convolution with stride ``s`` (BN):

    G_hat = phi_e(phi_r(phi_d1(F)))          phi_d1: depthwise + ReLU6, phi_r: linear 1x1 reduction,
    G     = phi_d2(G_hat) + F                 phi_e: 1x1 expansion + ReLU6, phi_d2: linear depthwise,

with the identity shortcut only when ``s = 1`` and ``M = N``. Both depthwise convolutions and the shortcut
see the wide tensors; the bottleneck (``M / t``) sits in the middle, like the classic ResNet bottleneck.
Shapes: ``(N, in_ch, H, W)`` in, ``(N, out_ch, H / s, W / s)`` out.

Where the official code differs from the text, this module follows the code:

* the bottleneck width is ``in_ch // t`` but never below ``out_ch / 6``: when it would be, it is set to
  ``ceil(out_ch / 6)`` rounded to a multiple of 16 (``make_divisible``), which keeps the 1x1 layers of wide
  outputs from becoming too narrow;
* four layouts, by the block's role (``layout``): ``"full"`` (the four layers; used when shapes are kept,
  with the shortcut, and for a stage with a single stride-1 block, without it); ``"reduce"`` (a stride-2
  block that changes the width: no first depthwise convolution); ``"pointwise"`` (a stride-1 block that
  changes the width: only the two 1x1 convolutions, no depthwise convolution at all); ``"auto"`` picks among
  these from the shapes as the official code does;
* the identity covers all channels (the code's ``identity_div = 1``; the paper's "identity tensor
  multiplier" of its ablation is not implemented).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .inverted_residual import make_divisible

LAYOUTS = ("auto", "full", "reduce", "pointwise")


def bottleneck_width(in_ch: int, out_ch: int, reduction: int) -> int:
    """The official code's middle width: ``in_ch // reduction``, raised to ``make_divisible(ceil(out_ch / 6), 16)``
    when it is below ``out_ch / 6``."""
    hidden = in_ch // reduction
    if hidden < out_ch / 6.0:
        hidden = make_divisible(math.ceil(out_ch / 6.0), 16)
    return hidden


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(out_ch)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


def resolve_layout(in_ch: int, out_ch: int, stride: int, layout: str = "auto") -> str:
    """The layout ``"auto"`` stands for: ``full`` when shapes are kept, else ``reduce`` (stride 2) or ``pointwise``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown sandglass layout {layout!r}; accepted: {', '.join(LAYOUTS)}")
    if layout != "auto":
        return layout
    if in_ch == out_ch and stride == 1:
        return "full"
    return "reduce" if stride == 2 else "pointwise"


class SandglassBlock(nn.Module):
    """Depthwise 3x3 -> linear 1x1 reduction -> 1x1 expansion -> linear depthwise 3x3, shortcut on the wide ends.

    Arguments: ``in_ch``, ``out_ch``, ``stride`` (1 or 2), ``reduction`` ``t`` (the middle width is
    ``bottleneck_width(in_ch, out_ch, t)``), ``layout`` (see the module docstring; ``"auto"`` by default).
    The layers are ``self.conv`` (one ``nn.Sequential``, as in the official code); ``self.use_shortcut``
    tells whether the identity is added.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, reduction: int, layout: str = "auto"):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if reduction < 1:
            raise ValueError(f"reduction must be a positive integer, got {reduction}")
        layout = resolve_layout(in_ch, out_ch, stride, layout)
        if layout == "pointwise" and stride != 1:
            raise ValueError(f"layout 'pointwise' has no depthwise convolution to carry stride {stride}; use 'reduce'")
        hidden = bottleneck_width(in_ch, out_ch, reduction)
        self.layout, self.hidden_channels = layout, hidden
        self.use_shortcut = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if layout == "full":
            layers += _conv_bn(in_ch, in_ch, 3, 1, groups=in_ch)            # phi_d1, ReLU6
        layers += _conv_bn(in_ch, hidden, 1, act=False)                     # phi_r, linear reduction
        layers += _conv_bn(hidden, out_ch, 1)                               # phi_e, ReLU6
        if layout != "pointwise":
            layers += _conv_bn(out_ch, out_ch, 3, stride, groups=out_ch, act=False)   # phi_d2, linear
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_shortcut else y


def sandglass_params(in_ch: int, out_ch: int, stride: int, reduction: int, layout: str = "auto") -> int:
    """Closed-form parameter count of ``SandglassBlock(in_ch, out_ch, stride, reduction, layout)`` (BN: 2 per channel)."""
    layout = resolve_layout(in_ch, out_ch, stride, layout)
    hidden = bottleneck_width(in_ch, out_ch, reduction)
    total = in_ch * hidden + 2 * hidden + hidden * out_ch + 2 * out_ch
    if layout == "full":
        total += 9 * in_ch + 2 * in_ch
    if layout != "pointwise":
        total += 9 * out_ch + 2 * out_ch
    return total


__all__ = ["LAYOUTS", "SandglassBlock", "bottleneck_width", "make_divisible", "resolve_layout", "sandglass_params"]
