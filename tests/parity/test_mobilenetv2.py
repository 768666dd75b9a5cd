"""MobileNetV2 against ``torchvision.models.mobilenet_v2``, bare and with timm attention in the CA slot."""
from __future__ import annotations

import copy
import functools

import pytest
import torch
import torchvision
from torch import nn

from lib.models.mobilenetv2 import CIFAR_SETTING, IMAGENET_SETTING, MobileNetV2
from lib.nn.inverted_residual import InvertedResidual

from ._common import DTYPES, MODES, Pair, assert_match, calibrate, compare, count, flip_in_channels
from .test_attention import ARMS, rename

# (our strides, width, classes, input side): the paper's ImageNet network at a reduced input (the map is
# input / 32, here 2x2) and the CIFAR network of the chapters (width 0.5, 32x32 input, 4x4 map).
CONFIGS = {"imagenet": ("imagenet", 1.0, 1000, 64), "cifar": ("cifar", 0.5, 10, 32)}
TIMM_ARMS = ("none", "se", "cbam", "ca", "triplet")


def torchvision_mobilenet_v2(strides: str, width: float, classes: int, attention: str = "none") -> nn.Module:
    """torchvision's MobileNetV2 at our configuration: our (t, c, n, s) rows, no dropout; for CIFAR the stem
    stride set to 1 (torchvision hard-codes 2); the counterpart attention inserted after the depthwise
    convolution of every expanding block (``conv = [expand, depthwise, attention, project, BN]``)."""
    setting = IMAGENET_SETTING if strides == "imagenet" else CIFAR_SETTING
    net = torchvision.models.mobilenet_v2(weights=None, num_classes=classes, width_mult=width, dropout=0.0,
                                          inverted_residual_setting=[list(row) for row in setting])
    if strides == "cifar":
        net.features[0][0].stride = (1, 1)
    if attention != "none":
        factory = ARMS[attention][1]
        for block in net.features[1:-1]:
            layers = list(block.conv)
            if len(layers) == 4:    # an expansion layer, hence an attention slot
                layers.insert(2, factory(layers[1].out_channels))
                block.conv = nn.Sequential(*layers)
    return net


def mobilenet_v2_name_map(ours: MobileNetV2, prefixes: dict[str, str]) -> dict[str, str]:
    """Our keys -> torchvision's. Stem and last 1x1 convolution: the same names (conv, BN at 0, 1). Block k:
    ``expand.j`` -> ``conv.0.j``; ``depthwise.j`` -> ``conv.e.j``; ``attention.*`` -> ``conv.(e+1).*``
    (through the attention's own prefix map); ``project.0`` -> ``conv.(e+1+a)``, ``project.1`` ->
    ``conv.(e+2+a)``, with ``e`` = 1 if the block expands else 0, ``a`` = 1 if it has attention else 0.
    Classifier: ``classifier`` -> ``classifier.1`` (after torchvision's dropout)."""
    name_map = {}
    for key in ours.state_dict():
        head, _, rest = key.partition(".")
        if head == "classifier":
            name_map[key] = f"classifier.1.{rest}"
            continue
        index, _, rest = rest.partition(".")
        block = ours.features[int(index)]
        if not isinstance(block, InvertedResidual):
            name_map[key] = key
            continue
        part, _, rest = rest.partition(".")
        e = 0 if isinstance(block.expand, nn.Identity) else 1
        a = 0 if isinstance(block.attention, nn.Identity) else 1
        if part == "expand":
            new = f"conv.0.{rest}"
        elif part == "depthwise":
            new = f"conv.{e}.{rest}"
        elif part == "attention":
            new = f"conv.{e + 1}.{rename(rest, prefixes)}"
        else:
            sub, _, leaf = rest.partition(".")
            new = f"conv.{e + 1 + a + int(sub)}.{leaf}"
        name_map[key] = f"features.{index}.{new}"
    return name_map


@functools.cache
def mobilenet_pair(config: str, attention: str = "none") -> Pair:
    strides, width, classes, _ = CONFIGS[config]
    torch.manual_seed(0)
    ours = MobileNetV2(num_classes=classes, width_mult=width, attention=attention, strides=strides)
    nn.init.normal_(ours.classifier.weight, 0.0, 0.1)
    calibrate(ours, (4, 3, CONFIGS[config][3], CONFIGS[config][3]))
    prefixes, flipped = ({}, ()) if attention == "none" else ARMS[attention][2:]
    name_map = mobilenet_v2_name_map(ours, prefixes)
    transforms = {k: flip_in_channels for k in name_map if any(k.endswith(".attention." + f) for f in flipped)}
    theirs = torchvision_mobilenet_v2(strides, width, classes, attention)
    return Pair(ours, theirs, name_map, transforms).transfer()


def _x(config: str) -> torch.Tensor:
    side = CONFIGS[config][3]
    return torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_mobilenet_v2_matches_torchvision(config, dtype, mode):
    assert_match(compare(mobilenet_pair(config), _x(config), dtype=dtype, mode=mode), dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("attention", TIMM_ARMS[1:])
def test_mobilenet_v2_with_attention_matches_torchvision_with_timm_attention(attention, mode):
    """The chapters' CIFAR networks: every expanding block's slot filled by the timm counterpart (float64)."""
    assert_match(compare(mobilenet_pair("cifar", attention), _x("cifar"), dtype=torch.float64, mode=mode),
                 torch.float64)


def test_mobilenet_v2_parameter_counts_at_the_paper_configuration():
    """MobileNetV2-1.0, 1000 classes: 3,504,872 parameters in both (the paper's table rounds to 3.4M); with an
    attention arm, torchvision + the timm layers count exactly as ours (CA paper: SE / CBAM 3.89M, CA 3.95M)."""
    counts = {}
    for attention in TIMM_ARMS:
        ours = MobileNetV2(num_classes=1000, width_mult=1.0, attention=attention, strides="imagenet")
        theirs = torchvision_mobilenet_v2("imagenet", 1.0, 1000, attention)
        assert count(ours) == count(theirs), attention
        counts[attention] = count(ours)
    assert counts == {"none": 3_504_872, "se": 3_888_208, "cbam": 3_889_808, "ca": 3_950_648,
                      "triplet": 3_509_672}
    assert count(torchvision.models.mobilenet_v2()) == counts["none"]


def _forward_backward(net: nn.Module, x: torch.Tensor, dtype: torch.dtype, mode: str):
    net = copy.deepcopy(net).to(dtype).train(mode == "train")
    x = x.detach().to(dtype).requires_grad_(True)
    y = net(x)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype)
    (y * g).sum().backward()
    return y.detach().double(), x.grad.double()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("attention", ("cbam", "ca", "triplet"))
def test_float32_network_differences_are_the_networks_own_rounding(attention, mode):
    """In float32 the whole networks with CBAM, CA or triplet attention differ from the counterpart by up to
    ~5e-5 in the logits (not 1e-5): the attention layers round differently by an ulp (pooling and product
    order), and 17 blocks of train-mode BatchNorm on 2x4x4 maps, ReLU6 clipping and max-pooling ties amplify
    it. It is the size of our own float32 error: ours in float32 vs ours in float64 differs as much. Gradients
    are left to the float64 test (a flipped max or clip moves a whole gradient entry)."""
    pair, x = mobilenet_pair("cifar", attention), _x("cifar")
    y64, _ = _forward_backward(pair.ours, x, torch.float64, mode)
    y32, _ = _forward_backward(pair.ours, x, torch.float32, mode)
    t32, _ = _forward_backward(pair.theirs, x, torch.float32, mode)
    implementation, own = (t32 - y32).abs().max().item(), (y32 - y64).abs().max().item()
    assert implementation <= 1e-4 and implementation <= 4 * own, (implementation, own)
