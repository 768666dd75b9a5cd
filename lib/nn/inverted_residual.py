"""The inverted residual block of MobileNetV2, and the two variants of its ablation study.

Paper: M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018, arXiv:1801.04381.

``InvertedResidual`` is the bottleneck of Table 1 (Sec. 3.3): a 1x1 expansion by ``t`` + BN + ReLU6, a 3x3
depthwise convolution with stride ``s`` + BN + ReLU6, a 1x1 projection + BN, and an identity shortcut between
the narrow ends (Sec. 3.3, Fig. 3b) when the stride is 1 and the channel count is unchanged:

    y = x + P(A(D(E(x))))        (shortcut between bottlenecks, "inverted")

``A`` is an attention slot (``lib.nn.attention.create_attention``, identity by default). Its place is
``attention_position``:

* ``"depthwise"`` (default): on the expanded channels after the depthwise convolution, where the coordinate
  attention code puts it (``mbv2_ca.py``); blocks without expansion (``t = 1``) get no attention;
* ``"projection"``: on the ``out_ch`` channels after the projection's BN, before the shortcut is added,

      y = x + A(P(D(E(x))))

  in every block, the ``t = 1`` block included. This is where the official triplet attention code
  (github.com/landskape-ai/triplet-attention, ``MODELS/mobilenet.py``) puts its module: its inverted residual
  appends the triplet module as the last layer of the residual branch, after the linear 1x1 convolution and
  its BN, unconditionally (all 17 blocks of MobileNetV2), and adds the identity shortcut to that branch's
  output when the stride is 1 and the widths match. (That file also computes a kernel size per stage, 1 up
  to ``c = 96`` and 3 beyond, but never passes it on: every module there has the fixed ``k = 7``.)

Shapes: ``(N, in_ch, H, W)`` in, ``(N, out_ch, H / s, W / s)`` out.

The two ablations of Sec. 6.4 (Fig. 6):

* ``bottleneck="relu6"`` puts a ReLU6 after the projection's BN (the "ReLU6 in bottleneck" curve of
  Fig. 6a); ``"linear"`` (default) is the paper's linear bottleneck. Nothing else changes: same parameters,
  same FLOPs, the output before the shortcut is ``clamp(P(...), 0, 6)`` instead of ``P(...)``.
* ``ClassicResidual`` places the shortcut between the *expansions* instead (the "shortcut between
  expansions" curve of Fig. 6b): it groups the same layers differently, ``depthwise -> attention -> project
  -> next expansion``, so that input and output are wide (expanded) tensors,

      w' = w + E'(P(A(D(w))))    (wide - narrow - wide, like the classic ResNet bottleneck)

  where ``E'`` is the expansion of the *next* inverted block (or the network's final 1x1 convolution). A
  network built from these blocks has exactly the layers of the inverted one, hence the same parameter and
  FLOP counts; only the tensors that the shortcuts join differ. The paper does not spell out its
  construction; this one is the literal reading of "shortcuts between expansion layers" at matched cost.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import check_attention_name, create_attention

BOTTLENECKS = ("linear", "relu6")
ATTENTION_POSITIONS = ("depthwise", "projection")


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, at least ``divisor``, at most 10% lower."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_bottleneck(bottleneck: str) -> None:
    """Raise ``ValueError`` naming ``bottleneck`` and the accepted names unless it is one of them."""
    if bottleneck not in BOTTLENECKS:
        raise ValueError(f"unknown bottleneck {bottleneck!r}; accepted: {', '.join(BOTTLENECKS)}")


def check_attention_position(position: str) -> None:
    """Raise ``ValueError`` naming ``position`` and the accepted places unless it is one of them."""
    if position not in ATTENTION_POSITIONS:
        raise ValueError(f"unknown attention_position {position!r}; accepted: {', '.join(ATTENTION_POSITIONS)}")


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Convolution without bias (the BN shift replaces it), BN, and ReLU6 unless ``act`` is False."""
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(out_ch)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1), an attention slot, and a shortcut when shapes allow.

    Arguments: ``in_ch``, ``out_ch`` (narrow widths), ``stride`` (1 or 2), ``expand_ratio`` ``t`` (no expansion
    layer when 1), ``attention`` (a name of ``lib.nn.attention``) with ``attention_kwargs``, ``bottleneck``
    (``"linear"`` or ``"relu6"``), ``attention_position``: ``"depthwise"`` (after the depthwise convolution on
    the hidden channels, none when ``t = 1``, as in the coordinate attention code) or ``"projection"`` (after
    the projection on ``out_ch`` channels, before the shortcut, in every block, as in the official triplet
    attention code).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int,
                 attention: str = "none", attention_kwargs: dict | None = None, bottleneck: str = "linear",
                 attention_position: str = "depthwise"):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        check_attention_name(attention)
        check_bottleneck(bottleneck)
        check_attention_position(attention_position)
        hidden = int(round(in_ch * expand_ratio))
        self.hidden_channels = hidden
        self.attention_position = attention_position
        self.use_shortcut = stride == 1 and in_ch == out_ch
        self.expand = conv_bn(in_ch, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, 3, stride, groups=hidden)
        if attention_position == "depthwise":
            slot = attention if expand_ratio != 1 else "none"
            self.attention = create_attention(slot, hidden, **(attention_kwargs or {}))
            self.project = conv_bn(hidden, out_ch, 1, act=bottleneck == "relu6")
        else:
            self.project = conv_bn(hidden, out_ch, 1, act=bottleneck == "relu6")
            self.attention = create_attention(attention, out_ch, **(attention_kwargs or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(self.expand(x))
        if self.attention_position == "depthwise":
            y = self.project(self.attention(h))
        else:
            y = self.attention(self.project(h))
        return x + y if self.use_shortcut else y


class ClassicResidual(nn.Module):
    """Depthwise 3x3 -> attention -> project (1x1) -> expand (1x1), shortcut between the wide ends.

    Arguments: ``wide_in`` (channels of the input, an expansion output), ``narrow`` (the bottleneck width),
    ``wide_out`` (channels of the next expansion), ``stride``, ``attention`` / ``attention_kwargs`` as in
    ``InvertedResidual`` (``use_attention=False`` for the stage that has no expansion), ``bottleneck``. The
    shortcut is used when the stride is 1 and ``wide_in == wide_out``.
    """

    def __init__(self, wide_in: int, narrow: int, wide_out: int, stride: int, attention: str = "none",
                 attention_kwargs: dict | None = None, bottleneck: str = "linear", use_attention: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        check_attention_name(attention)
        check_bottleneck(bottleneck)
        self.hidden_channels = wide_in
        self.use_shortcut = stride == 1 and wide_in == wide_out
        self.depthwise = conv_bn(wide_in, wide_in, 3, stride, groups=wide_in)
        self.attention = create_attention(attention if use_attention else "none", wide_in, **(attention_kwargs or {}))
        self.project = conv_bn(wide_in, narrow, 1, act=bottleneck == "relu6")
        self.expand = conv_bn(narrow, wide_out, 1)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.project(self.attention(self.depthwise(w))))
        return w + y if self.use_shortcut else y


def inverted_residual_params(in_ch: int, out_ch: int, expand_ratio: int) -> int:
    """Closed-form parameter count of ``InvertedResidual(in_ch, out_ch, s, t)`` without attention (BN: 2 per channel)."""
    hidden = int(round(in_ch * expand_ratio))
    expand = in_ch * hidden + 2 * hidden if expand_ratio != 1 else 0
    return expand + 9 * hidden + 2 * hidden + hidden * out_ch + 2 * out_ch


__all__ = ["ATTENTION_POSITIONS", "BOTTLENECKS", "ClassicResidual", "InvertedResidual", "check_attention_position",
           "check_bottleneck", "conv_bn", "inverted_residual_params", "make_divisible"]
