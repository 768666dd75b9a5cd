"""The CIFAR ResNet's basic block against torchvision's and timm's ``BasicBlock``, and ResNet-20 built from them."""
from __future__ import annotations

import functools

import pytest
import timm.models.resnet
import torch
import torchvision.models.resnet
from torch import nn

from lib.models.resnet_cifar import BasicBlock, ResNetCIFAR

from ._common import DTYPES, MODES, Pair, assert_match, calibrate, compare, count


def block_name_map(prefix: str, block: BasicBlock) -> dict[str, str]:
    """``conv1, bn1, conv2, bn2`` keep their names; our projection shortcut ``shortcut.0`` (1x1 conv) and
    ``shortcut.1`` (BN) is torchvision's / timm's ``downsample.0`` and ``downsample.1``."""
    return {prefix + k: prefix + k.replace("shortcut.", "downsample.", 1) for k in block.state_dict()}


def downsample(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


# (in, out, stride, dilation) -> the counterpart block
BLOCKS = {
    "identity": (16, 16, 1, 1),
    "projection": (16, 32, 2, 1),
    "dilated": (32, 32, 1, 2),          # the dilated encoder of lib.models.segmentation (strip-pooling)
}


def their_block(in_ch: int, out_ch: int, stride: int, dilation: int) -> nn.Module:
    if dilation == 1:
        return torchvision.models.resnet.BasicBlock(in_ch, out_ch, stride, downsample(in_ch, out_ch, stride))
    return timm.models.resnet.BasicBlock(in_ch, out_ch, stride, downsample(in_ch, out_ch, stride),
                                         dilation=dilation)


@functools.cache
def block_pair(name: str) -> Pair:
    in_ch, out_ch, stride, dilation = BLOCKS[name]
    torch.manual_seed(0)
    ours = calibrate(BasicBlock(in_ch, out_ch, stride, dilation=dilation), (4, in_ch, 8, 8))
    return Pair(ours, their_block(in_ch, out_ch, stride, dilation), block_name_map("", ours)).transfer()


class TorchvisionResNetCIFAR(nn.Module):
    """ResNet-(6n+2) for CIFAR assembled from torchvision's BasicBlock, with the same attribute names as ours."""

    def __init__(self, depth: int = 20, num_classes: int = 10):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, channels = [], 16
        for stage, out in enumerate((16, 32, 64)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(torchvision.models.resnet.BasicBlock(channels, out, stride,
                                                                   downsample(channels, out, stride)))
                channels = out
        self.stages = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.stages(self.stem(x)).mean(dim=(2, 3)))


@functools.cache
def resnet_pair(depth: int = 20) -> Pair:
    torch.manual_seed(0)
    ours = calibrate(ResNetCIFAR(depth), (4, 3, 32, 32))
    name_map = {k: k for k in ours.state_dict() if not k.startswith("stages.")}
    for i, block in enumerate(ours.stages):
        name_map.update(block_name_map(f"stages.{i}.", block))
    return Pair(ours, TorchvisionResNetCIFAR(depth), name_map).transfer()


def _x(c: int, side: int = 8) -> torch.Tensor:
    return torch.randn(2, c, side, side, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(BLOCKS))
def test_basic_block_matches_torchvision_or_timm(name, dtype, mode):
    assert_match(compare(block_pair(name), _x(BLOCKS[name][0]), dtype=dtype, mode=mode), dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_resnet20_matches_one_built_from_torchvision_blocks(dtype, mode):
    assert_match(compare(resnet_pair(), _x(3, 32), dtype=dtype, mode=mode), dtype)


def test_torchvision_basic_block_has_no_dilation():
    """torchvision refuses a dilated BasicBlock, hence timm's for the segmentation encoder."""
    with pytest.raises(NotImplementedError, match="Dilation > 1"):
        torchvision.models.resnet.BasicBlock(32, 32, dilation=2)


def test_parameter_counts_at_the_paper_configuration():
    """ResNet-20 (n = 3): 272,474 parameters in both. The paper's 0.27M is option A (zero-padding shortcuts,
    269,722 here as the count without the two 1x1 projections and their BN); option B adds
    16·32 + 32·64 = 2,560 weights and 2·(32 + 64) = 192 BN parameters."""
    ours, theirs = resnet_pair().ours, resnet_pair().theirs
    assert count(ours) == count(theirs) == 272_474
    shortcuts = sum(count(b.shortcut) for b in ours.stages)
    assert shortcuts == 2_560 + 192
    assert count(ours) - shortcuts == 269_722
    for name, (in_ch, out_ch, stride, dilation) in BLOCKS.items():
        assert count(BasicBlock(in_ch, out_ch, stride, dilation)) == count(their_block(in_ch, out_ch, stride, dilation))
