"""Instance-batch normalisation (IBN-Net; Pan, Luo, Shi, Tang, "Two at Once: Enhancing Learning and
Generalization Capacities via IBN-Net", ECCV 2018, arXiv:1807.09441; official code XingangPan/IBN-Net,
``ibnnet/modules.py`` and ``ibnnet/resnet_ibn.py``).

Instance normalisation (IN) removes each image's per-channel mean and variance — appearance such as colour,
contrast and style — while batch normalisation (BN) keeps the content-related differences between images.
IBN-Net puts IN only in shallow layers, where appearance lives, and keeps BN everywhere (Sec. 3):

* **IBN-a**: in a residual block's first normalisation, half of the channels use IN (affine) and the other
  half BN; in every block of the shallow stages, none of the last. ``IBN(planes, ratio=0.5)``: IN on the first
  ``int(planes · ratio)`` channels, BN on the rest, concatenated in that order (the official ``IBN``).
* **IBN-b**: an IN (affine) on the stem's output instead of its BN, and an IN after the residual addition
  (before the ReLU) of the *last* block of the first stages; the official ResNet-IBN-b adds it to the first
  two of four stages, and to no other block.

``lib.models.ResNetCIFAR(ibn=("a", "a", None))`` builds the CIFAR ResNet with these layers per stage; both
variants have the plain network's convolutions, so their FLOPs are equal up to the normalisation, and IBN-a
has exactly the plain network's parameters (IN and BN have the same two affine vectors).
"""
from __future__ import annotations

import torch
from torch import nn

IBN_TYPES = (None, "a", "b")


class IBN(nn.Module):
    """IN (affine) on the first ``int(planes · ratio)`` channels, BN on the others (``0 < ratio < 1``)."""

    def __init__(self, planes: int, ratio: float = 0.5):
        super().__init__()
        half = int(planes * ratio)
        if not 0 < half < planes:
            raise ValueError(f"IBN needs 0 < int(planes * ratio) < planes; got planes={planes}, ratio={ratio}")
        self.half = half
        self.IN = nn.InstanceNorm2d(half, affine=True)
        self.BN = nn.BatchNorm2d(planes - half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.IN(x[:, :self.half].contiguous()), self.BN(x[:, self.half:].contiguous())], 1)


def check_ibn_config(ibn, stages: int) -> tuple:
    """Validate a per-stage IBN configuration: a sequence of ``stages`` entries from ``None | "a" | "b"``."""
    ibn = tuple(ibn)
    if len(ibn) != stages or any(v not in IBN_TYPES for v in ibn):
        raise ValueError(f"ibn must give one of None, 'a', 'b' for each of the {stages} stages, got {ibn!r}")
    return ibn
