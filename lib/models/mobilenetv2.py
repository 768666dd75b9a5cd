"""MobileNetV2 for 32×32 images, with an attention slot (none / SE / CBAM / CA) in its inverted residual blocks.

Paper: M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018, arXiv:1801.04381. Implements the bottleneck of Table 1 (1x1 expansion by ``t`` +
BN + ReLU6, 3x3 depthwise with stride ``s`` + BN + ReLU6, linear 1x1 projection + BN, identity shortcut when
the stride is 1 and the channel count is unchanged) and the body of Table 2 (the ``t, c, n, s`` rows, a
1x1 convolution to 1280 channels, global average pooling, a linear classifier).

Shapes: ``(N, in_channels, 32, 32)`` in, ``(N, num_classes)`` logits out; the feature map before pooling
is ``(N, feature_dim, 4, 4)``. Other sizes work; the map is the input size divided by 8.

Attention slot, as in ``mbv2_ca.py`` of the official coordinate attention code (Hou, Zhou, Feng, CVPR 2021,
arXiv:2103.02907, github.com/houqb/CoordAttention) and the figure of its README on where to plug CA:
after the depthwise convolution's ReLU6, on the ``t``-times expanded hidden channels, before the linear
projection. The same slot is used for SE and CBAM so that only the attention differs between arms. Blocks
with ``t = 1`` (only the first) have no expansion and, as in ``mbv2_ca.py``, no attention.

``attention_position="projection"`` moves the slot to where the official triplet attention code (Misra et al.,
WACV 2021, arXiv:2010.03045, github.com/landskape-ai/triplet-attention, ``MODELS/mobilenet.py``) puts its
module: the last layer of every block's residual branch, after the linear projection's BN, on the ``c``
output channels, before the identity shortcut is added; all 17 blocks, the ``t = 1`` block included. The
network is otherwise unchanged (that file's channel rounding, ``int(c * width_mult)``, equals ours at width
1.0; its classifier dropout is 0.25; it builds every triplet module with ``k = 7``). Triplet attention's
convolutions run on the ``(C, W)``, ``(H, C)`` and ``(H, W)`` planes, so their cost grows with ``C``: the
projection slot has 3x to 6x fewer channels than the depthwise one, and at width 0.5, CIFAR strides, ``k = 7``
triplet attention adds 6.7 % multiply-adds to the plain network there against 24.8 % in the depthwise slot
(parameters: 17 against 16 modules of 300; counts in ``tests/models/test_mobilenetv2.py``).

The variants of the paper's ablation (Sec. 6.4, Fig. 6) are options: ``bottleneck="relu6"`` (a ReLU6 after
every projection) and ``residual="classic"`` (the shortcuts moved between the expansions, same layers and
costs); see ``lib/nn/inverted_residual.py``, where the blocks live.

Deviations from the paper:

* CIFAR adaptation: the stem convolution has stride 1 (2 in the paper) and the first ``c = 160`` block has
  stride 1 (2 in the paper), so a 32×32 input is downsampled 8× in all (32 -> 16 -> 8 -> 4 at the
  ``c = 24, 32, 64`` stages) and the last feature map is 4×4 (the paper goes 224 -> 112 -> 56 -> 28 -> 14
  -> 7). Keeping the early stages at 16×16 rather than 32×32 makes training about 3× faster on a CPU
  while every attention layer still sees a map of at least 4×4;
* channel counts are ``c * width_mult`` rounded by ``make_divisible`` (nearest multiple of
  ``round_nearest``, at least ``round_nearest``, never more than 10% below), as in the official TensorFlow
  and CA code; the last convolution keeps 1280 channels for ``width_mult <= 1``, as the paper states;
* initialisation follows the official CA code: He normal on fan-out for every convolution (attention
  layers included) with zero biases, BN weight 1 and bias 0, linear weight N(0, 0.01) and zero bias;
* ``strides="imagenet"`` restores the paper's strides (stem 2, ``c = 160`` stage 2) for 224×224 inputs;
* dropout before the classifier defaults to 0 (the official CA code uses 0.1 on ImageNet).
"""
from __future__ import annotations

import torch
from torch import nn

from ..nn.attention import check_attention_name
from ..nn.inverted_residual import (ClassicResidual, InvertedResidual, check_attention_position, check_bottleneck,
                                   conv_bn, make_divisible)

RESIDUALS = ("inverted", "classic")

# (t, c, n, s) rows of Table 2 of the paper, with its strides for 224×224 ImageNet inputs (stem stride 2 as well);
# used by the full-scale recipe and to check parameter and FLOP counts against the paper's tables.
IMAGENET_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# The CIFAR strides: the same rows with s = 1 for the c = 160 row (and stem stride 1, see MobileNetV2).
CIFAR_SETTING = tuple((t, c, n, 1 if c == 160 else s) for t, c, n, s in IMAGENET_SETTING)


class MobileNetV2(nn.Module):
    """MobileNetV2 body of Table 2 at CIFAR strides; ``attention`` names the layer put in every expanding block.

    ``bottleneck`` (``"linear"`` or ``"relu6"``) and ``residual`` (``"inverted"`` or ``"classic"``) select the
    variants of the paper's ablation (Sec. 6.4, Fig. 6; ``lib/nn/inverted_residual.py``); the defaults build
    the paper's network, and the variants keep its parameter and FLOP counts exactly.
    ``attention_position`` is ``"depthwise"`` (default: after the depthwise convolution of every expanding
    block, as in the coordinate attention code) or ``"projection"`` (after the projection's BN of all 17
    blocks, before the shortcut, as in the official triplet attention code); ``"projection"`` needs
    ``residual="inverted"``, the only construction whose blocks end at a projection.
    """

    def __init__(self, num_classes: int = 10, width_mult: float = 0.5, attention: str = "none",
                 attention_kwargs: dict | None = None, in_channels: int = 3, dropout: float = 0.0,
                 round_nearest: int = 8, strides: str = "cifar", bottleneck: str = "linear",
                 residual: str = "inverted", attention_position: str = "depthwise"):
        super().__init__()
        check_attention_name(attention)
        check_bottleneck(bottleneck)
        check_attention_position(attention_position)
        if residual not in RESIDUALS:
            raise ValueError(f"unknown residual {residual!r}; accepted: {', '.join(RESIDUALS)}")
        if residual == "classic" and attention_position != "depthwise":
            raise ValueError(f"attention_position {attention_position!r} needs residual 'inverted'; "
                             "accepted with residual 'classic': depthwise")
        settings = {"cifar": (1, CIFAR_SETTING), "imagenet": (2, IMAGENET_SETTING)}
        if strides not in settings:
            raise ValueError(f"unknown strides {strides!r}; accepted: {', '.join(settings)}")
        stem_stride, setting = settings[strides]
        channels = make_divisible(32 * width_mult, round_nearest)
        layers: list[nn.Module] = [conv_bn(in_channels, channels, 3, stride=stem_stride)]
        blocks = []   # (in, out, stride, t) of every bottleneck, in order
        for t, c, n, s in setting:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                blocks.append((channels, out, s if i == 0 else 1, t))
                channels = out
        self.feature_dim = make_divisible(1280 * width_mult, round_nearest) if width_mult > 1.0 else 1280
        if residual == "inverted":
            for cin, cout, s, t in blocks:
                layers.append(InvertedResidual(cin, cout, s, t, attention, attention_kwargs, bottleneck,
                                               attention_position))
            layers.append(conv_bn(channels, self.feature_dim, 1))
        else:
            # The same layers regrouped: block k = depthwise_k, attention_k, project_k, expansion_{k+1}
            # (the final 1x1 convolution after the last block), so the shortcuts join expanded tensors.
            wide = [int(round(cin * t)) for cin, _, _, t in blocks] + [self.feature_dim]
            if blocks[0][3] != 1:
                layers.append(conv_bn(blocks[0][0], wide[0], 1))
            for k, (_, cout, s, t) in enumerate(blocks):
                layers.append(ClassicResidual(wide[k], cout, wide[k + 1], s, attention, attention_kwargs,
                                              bottleneck, use_attention=t != 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))
