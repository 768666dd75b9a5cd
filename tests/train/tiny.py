"""The tiny synthetic dataset and network the training-loop tests share (imported by the test modules here)."""
import hashlib

import torch
from torch import nn

from lib.data import ImageData


def tiny_data(n: int = 64, seed: int = 0) -> ImageData:
    """``n`` random 8×8 RGB images, 4 balanced classes."""
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 4,
                     list("abcd"), "synthetic", "train")


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


def weights_digest(model: nn.Module) -> str:
    """sha256 of every tensor of ``model``'s state dict, in order: equal digests mean bit-identical weights."""
    return hashlib.sha256(b"".join(v.detach().contiguous().numpy().tobytes()
                                   for v in model.state_dict().values())).hexdigest()
