"""The four-block convolutional encoder of few-shot learning (Vinyals et al., NeurIPS 2016; Snell et al., 2017).

Each block is a 3×3 convolution with ``width`` filters (64 in both papers), BatchNorm, ReLU and 2×2 max
pooling. A 28×28 Omniglot image becomes ``width × 1 × 1`` (a 64-dimensional embedding); an 84×84
miniImageNet image ``width × 5 × 5`` (1,600 dimensions). ``Conv4(...)(x)`` returns the flattened embedding.
"""
from __future__ import annotations

import torch
from torch import nn


class Conv4(nn.Module):
    def __init__(self, in_channels: int = 1, width: int = 64, blocks: int = 4):
        super().__init__()
        if in_channels < 1 or width < 1 or blocks < 1:
            raise ValueError(f"in_channels, width and blocks must be positive, got {in_channels}, {width}, {blocks}")
        layers, channels = [], in_channels
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)
