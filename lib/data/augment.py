"""Batched tensor augmentation: the standard CIFAR random crop with zero padding and horizontal flip.

Works on a whole batch at once on whatever device the batch is on, driven by an explicit
``torch.Generator`` so that two arms trained with the same seed see identical augmented images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """Random ``H×W`` crop of the zero-padded batch and a random horizontal flip per image.

    images: ``(N, C, H, W)`` of any dtype. The random draws come from ``generator`` (on the CPU) and are
    moved to the batch's device, so the result does not depend on the device.
    """
    n, _, h, w = images.shape
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    if padding:
        padded = F.pad(images, (padding, padding, padding, padding))
        rows = (offsets[0][:, None] + torch.arange(h)).to(images.device)   # (N, H)
        cols = (offsets[1][:, None] + torch.arange(w)).to(images.device)   # (N, W)
        batch = torch.arange(n, device=images.device)[:, None, None]
        images = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        flips = flips.to(images.device)[:, None, None, None]
        images = torch.where(flips, images.flip(3), images)
    return images.contiguous()


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` → float32 standardised per channel (mean/std on the 0..1 scale)."""
    x = images.to(torch.float32).div_(255.0)
    return x.sub_(mean.to(x.device)[None, :, None, None]).div_(std.to(x.device)[None, :, None, None])
