"""SE, CBAM, coordinate attention and triplet attention against timm / torchvision (name maps: ``__init__.py``)."""
from __future__ import annotations

import pytest
import torch
import torchvision
from timm.layers.cbam import CbamModule, SpatialAttn
from timm.layers.coord_attn import CoordAttn
from timm.layers.squeeze_excite import SqueezeExcite as TimmSE
from torch import nn

from lib.nn.cbam import CBAM, cbam_params
from lib.nn.coord_attention import CoordAttention, coord_attention_params
from lib.nn.squeeze_excite import SqueezeExcite, se_params
from lib.nn.triplet_attention import TripletAttention

from ._common import DTYPES, MODES, Pair, assert_match, compare, count, flip_in_channels

# The expanded widths (t * c_in) that carry an attention layer in MobileNetV2-1.0 (ImageNet configuration):
# the paper configuration at which the parameter counts are compared.
MBV2_HIDDEN = [96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960]
C = 96


def _x(c=C, h=7, w=5, seed=1):
    return torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _set_bn_momentum(module: nn.Module, momentum: float) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum
    return module


def rename(key: str, prefixes: dict[str, str]) -> str:
    """``key`` with its longest matching module prefix replaced (``a.b`` matches ``a.b`` and ``a.b.*``)."""
    for old in sorted(prefixes, key=len, reverse=True):
        if key == old or key.startswith(old + "."):
            return prefixes[old] + key[len(old):]
    raise KeyError(f"no name-map entry for {key!r}")


# --- name maps: our sub-module prefix -> theirs; keys whose weight stores the two pooled maps in the other order
SE_MAP = {"reduce": "fc1", "expand": "fc2"}
CBAM_MAP = {"mlp.0": "channel.fc1", "mlp.2": "channel.fc2", "spatial_conv": "spatial.conv.conv",
            "spatial_bn": "spatial.conv.bn"}
CBAM_FLIP = ("spatial_conv.weight",)
CA_MAP = {"shared": "conv1", "bn": "bn1", "head_h": "conv_h", "head_w": "conv_w"}
TRIPLET_MAP = {f"{g}.{part}": f"{g}.conv.{part}" for g in ("cw", "hc", "hw") for part in ("conv", "bn")}
TRIPLET_FLIP = ("cw.conv.weight", "hc.conv.weight", "hw.conv.weight")


def se_mid(c: int) -> int:
    return max(1, c // 24)


def ca_mid(c: int) -> int:
    return max(8, c // 32)


def cbam_mid(c: int) -> int:
    return max(1, c // 24)


class TimmTriplet(nn.Module):
    """Triplet attention built the official way from three timm CBAM spatial gates: each branch permutes the
    input so that the pooled axis comes first (H, W, then C), gates it and permutes it back; the mean of the
    three is the output."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.cw, self.hc, self.hw = (SpatialAttn(kernel_size) for _ in range(3))

    def forward(self, x):
        y1 = self.cw(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)     # pools H: a (C, W) map
        y2 = self.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)     # pools W: an (H, C) map
        y3 = self.hw(x)                                             # pools C: an (H, W) map
        return (y1 + y2 + y3) / 3


# Factories of the counterparts at our configuration; every one gets the same channel count as ours.
def timm_se(c):
    return TimmSE(c, rd_channels=se_mid(c))


def torchvision_se(c):
    return torchvision.ops.SqueezeExcitation(c, se_mid(c))


def timm_cbam(c):
    return _set_bn_momentum(CbamModule(c, rd_channels=cbam_mid(c), mlp_bias=True), 0.01)


def timm_ca(c):
    return CoordAttn(c, rd_channels=ca_mid(c), bias=True)


def timm_triplet(c):
    return _set_bn_momentum(TimmTriplet(7), 0.01)


# arm -> (our class, their factory, prefix map, flipped keys)
ARMS = {
    "se": (SqueezeExcite, timm_se, SE_MAP, ()),
    "se_torchvision": (SqueezeExcite, torchvision_se, SE_MAP, ()),
    "cbam": (CBAM, timm_cbam, CBAM_MAP, CBAM_FLIP),
    "ca": (CoordAttention, timm_ca, CA_MAP, ()),
    "triplet": (TripletAttention, timm_triplet, TRIPLET_MAP, TRIPLET_FLIP),
}


def attention_pair(arm: str, c: int = C, seed: int = 0) -> Pair:
    ours_cls, factory, prefixes, flipped = ARMS[arm]
    torch.manual_seed(seed)
    ours = ours_cls(c)
    for p in ours.parameters():   # random, not default, values: biases and BN affine included
        nn.init.normal_(p, 0.0, 0.5)
    name_map = {k: rename(k, prefixes) for k in ours.state_dict()}
    return Pair(ours, factory(c), name_map, {k: flip_in_channels for k in flipped}).transfer()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("arm", list(ARMS))
def test_attention_matches_its_counterpart(arm, dtype, mode):
    assert_match(compare(attention_pair(arm), _x(), dtype=dtype, mode=mode), dtype)


@pytest.mark.parametrize("arm", list(ARMS))
def test_attention_parameter_counts_at_the_paper_configuration(arm):
    """Counts on every attention slot of MobileNetV2-1.0: ours (closed form and module) = the counterpart's."""
    ours_cls, factory, _, _ = ARMS[arm]
    closed = {"se": se_params, "se_torchvision": se_params, "cbam": cbam_params, "ca": coord_attention_params,
              "triplet": lambda c: 300}[arm]
    for c in sorted(set(MBV2_HIDDEN)):
        assert count(ours_cls(c)) == closed(c) == count(factory(c)), (arm, c)
    total = sum(count(ours_cls(c)) for c in MBV2_HIDDEN)
    expected = {"se": 383_336, "se_torchvision": 383_336, "cbam": 384_936, "ca": 445_776, "triplet": 4_800}[arm]
    assert total == expected


# --- documented differences -------------------------------------------------------------------------------------

def test_timm_defaults_differ_from_the_paper_configuration():
    """timm's default widths and biases are not ours: SE picks ``make_divisible(C / 16, 8)`` units (ours
    ``C // 24``, the CA paper's SE arm), CBAM ``C / 16`` units without MLP biases, CoordAttn
    ``make_divisible(C / 24, 8)`` without any bias (ours ``max(8, C // 32)``, all three convolutions biased)."""
    se = sum(count(TimmSE(c)) for c in MBV2_HIDDEN)
    cbam = sum(count(CbamModule(c)) for c in MBV2_HIDDEN)
    ca = sum(count(CoordAttn(c)) for c in MBV2_HIDDEN)
    assert (se, cbam, ca) == (612_768, 565_504, 567_392)
    assert (se, cbam, ca) != (383_336, 384_936, 445_776)


def test_cbam_spatial_pooling_order_differs_from_timm():
    """timm's spatial gate stacks ``[mean; max]``, ours (the official code) ``[max; mean]``: copied without
    swapping the two input channels of the 7x7 weight, the outputs differ by more than 0.1."""
    pair = attention_pair("cbam")
    unflipped = Pair(pair.ours, pair.theirs, pair.name_map).transfer()
    diffs = compare(unflipped, _x(), dtype=torch.float64, mode="eval")
    assert diffs["out"] > 0.1, diffs
    assert diffs["scale"] > 1.0


def test_cbam_batchnorm_momentum_differs_from_timm():
    """Ours (the official code) updates the spatial BatchNorm with momentum 0.01, timm with 0.1: with timm's
    default the outputs agree in training mode but the running statistics do not."""
    pair = attention_pair("cbam")
    _set_bn_momentum(pair.theirs, 0.1)
    diffs = compare(pair, _x(), dtype=torch.float64, mode="train")
    assert diffs["out"] <= 1e-10 and diffs["grad"] <= 1e-10
    assert diffs["buffers"] > 1e-3, diffs


def test_cbam_with_fewer_channels_than_the_reduction_keeps_one_unit_like_timm():
    """C < r: ours keeps ``max(1, C // r) = 1`` hidden unit, as timm's default ``CbamModule(C)`` does (the
    official code would build a zero-width layer); both match at C = 8, r = 16."""
    torch.manual_seed(0)
    ours = CBAM(8, reduction=16)
    assert ours.mlp[0].out_channels == 1
    theirs = _set_bn_momentum(CbamModule(8, rd_ratio=1 / 16, mlp_bias=True), 0.01)
    assert theirs.channel.fc1.out_channels == 1
    pair = Pair(ours, theirs, {k: rename(k, CBAM_MAP) for k in ours.state_dict()},
                {k: flip_in_channels for k in CBAM_FLIP}).transfer()
    for mode in MODES:
        assert_match(compare(pair, _x(8), dtype=torch.float64, mode=mode), torch.float64)


def test_triplet_spatial_branch_is_timm_cbam_spatial_gate():
    """The third branch of triplet attention (pool over C) alone is timm's CBAM ``SpatialAttn``."""
    pair = attention_pair("triplet")
    branch = Pair(pair.ours.hw, pair.theirs.hw,
                  {k: rename(k, {"conv": "conv.conv", "bn": "conv.bn"}) for k in pair.ours.hw.state_dict()},
                  {"conv.weight": flip_in_channels}).transfer()
    for mode in MODES:
        assert_match(compare(branch, _x(), dtype=torch.float64, mode=mode), torch.float64)
