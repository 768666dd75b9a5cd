"""Attention layers (SE, CBAM, CA) and their factory: shapes, gradients, parameter counts, the CA equations."""
import pytest
import torch
from torch import nn

from lib.nn import (
    ATTENTION_LAYERS,
    CBAM,
    CoordAttention,
    SqueezeExcite,
    attention_names,
    attention_params,
    cbam_params,
    coord_attention_params,
    create_attention,
    se_params,
)

NAMES = ["none", "se", "cbam", "ca", "triplet"]
SHAPES = [(2, 16, 8, 8), (2, 32, 7, 5), (3, 24, 1, 9), (2, 64, 4, 4), (2, 8, 5, 3)]


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _randomize_bn_stats(module: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial running statistics, so that eval-mode BN is not the identity."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator))
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.num_features, generator=generator))
                m.bias.copy_(torch.randn(m.num_features, generator=generator))


# --- shapes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train", [True, False])
def test_output_shape_equals_input_shape(name, shape, train):
    torch.manual_seed(0)
    layer = create_attention(name, shape[1]).train(train)
    x = torch.randn(shape)
    y = layer(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_ca_attention_map_shapes(shape):
    n, c, h, w = shape
    a_h, a_w = CoordAttention(c).attention_maps(torch.randn(shape))
    assert a_h.shape == (n, c, h, 1)
    assert a_w.shape == (n, c, 1, w)
    assert ((a_h > 0) & (a_h < 1)).all() and ((a_w > 0) & (a_w < 1)).all()


def test_gates_are_not_trivial():
    """Each layer actually rescales its input (a layer returning x unchanged would pass the shape tests)."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 7)
    for name in ["se", "cbam", "ca"]:
        y = create_attention(name, 16)(x)
        assert not torch.allclose(y, x), name
        assert (y.abs() <= x.abs() + 1e-6).all(), name   # sigmoid gates lie in (0, 1)


# --- gradients ------------------------------------------------------------------------------------------

def _backward(layer: nn.Module, shape=(4, 32, 6, 5)) -> None:
    torch.manual_seed(1)
    x = torch.randn(shape, requires_grad=True)
    (layer(x) * torch.randn(shape)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["se", "cbam", "ca"])
def test_gradients_reach_every_parameter_eval(name):
    torch.manual_seed(0)
    layer = create_attention(name, 32)
    _randomize_bn_stats(layer, torch.Generator().manual_seed(2))
    layer.eval()
    _backward(layer)
    for pname, p in layer.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ["se", "cbam", "ca"])
def test_gradients_reach_every_parameter_train(name):
    """In training mode a bias right before a BatchNorm (CA's shared conv, as in the official code) is
    cancelled by the batch mean, so its gradient is zero up to rounding; every other parameter learns."""
    torch.manual_seed(0)
    layer = create_attention(name, 32).train()
    _backward(layer)
    for pname, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        if name == "ca" and pname == "shared.bias":
            assert p.grad.abs().max() < 1e-5
        else:
            assert p.grad.abs().sum() > 0, pname


# --- parameter counts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [8, 16, 48, 96, 160, 960])
@pytest.mark.parametrize("reduction", [1, 4, 16, 24, 32])
def test_se_and_cbam_param_counts(channels, reduction):
    assert _numel(SqueezeExcite(channels, reduction=reduction)) == se_params(channels, reduction)
    for k in (3, 7):
        cbam = CBAM(channels, reduction=reduction, spatial_kernel=k)
        assert _numel(cbam) == cbam_params(channels, reduction, k)


@pytest.mark.parametrize("channels", [4, 16, 96, 384, 960])
@pytest.mark.parametrize("reduction", [8, 16, 32])
@pytest.mark.parametrize("min_mid", [1, 8])
def test_ca_param_counts(channels, reduction, min_mid):
    layer = CoordAttention(channels, reduction=reduction, min_mid=min_mid)
    assert _numel(layer) == coord_attention_params(channels, reduction, min_mid)


def test_param_counts_by_hand():
    # SE(96, r=24): mid 4; 96*4 + 4 + 4*96 + 96.
    assert se_params(96, 24) == 868
    # CBAM adds a 2->1 7x7 conv without bias and a one-channel BN.
    assert cbam_params(96, 24) == 868 + 98 + 2
    # CA(96, r=32): mid = max(8, 3) = 8; conv 96*8 + 8, BN 16, two heads 2 * (8*96 + 96).
    assert coord_attention_params(96) == 776 + 16 + 1728
    # CA(960, r=32): mid 30.
    assert coord_attention_params(960) == (960 * 30 + 30) + 60 + 2 * (30 * 960 + 960)


# --- coordinate attention, equation by equation ---------------------------------------------------------

def _ca_by_hand(layer: CoordAttention, x: torch.Tensor):
    """Eq. 4-9 written out with the module's own weights (eval-mode BN)."""
    n, c, h, w = x.shape
    z_h = x.mean(dim=3)                     # Eq. 4: (N, C, H), average over the width
    z_w = x.mean(dim=2)                     # Eq. 5: (N, C, W), average over the height
    z = torch.cat([z_h, z_w], dim=2)        # (N, C, H + W)
    w1, b1 = layer.shared.weight[:, :, 0, 0], layer.shared.bias
    f = torch.einsum("mc,ncp->nmp", w1, z) + b1[None, :, None]   # Eq. 6, with the official BN and h-swish
    bn = layer.bn
    f = (f - bn.running_mean[None, :, None]) / torch.sqrt(bn.running_var[None, :, None] + bn.eps)
    f = f * bn.weight[None, :, None] + bn.bias[None, :, None]
    f = f * torch.clamp(f + 3, 0, 6) / 6    # h-swish
    f_h, f_w = f[:, :, :h], f[:, :, h:]

    def head(conv, v):
        return torch.einsum("cm,nmp->ncp", conv.weight[:, :, 0, 0], v) + conv.bias[None, :, None]

    a_h = torch.sigmoid(head(layer.head_h, f_h))   # Eq. 7
    a_w = torch.sigmoid(head(layer.head_w, f_w))   # Eq. 8
    y = torch.empty_like(x)
    for b in range(n):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    y[b, ch, i, j] = x[b, ch, i, j] * a_h[b, ch, i] * a_w[b, ch, j]   # Eq. 9
    return a_h, a_w, y


def test_ca_matches_equations_by_hand():
    torch.manual_seed(0)
    layer = CoordAttention(4, reduction=32, min_mid=8)
    _randomize_bn_stats(layer, torch.Generator().manual_seed(3))
    layer.eval()
    x = torch.randn(1, 4, 3, 5)
    with torch.no_grad():
        a_h, a_w, y_hand = _ca_by_hand(layer, x)
        got_h, got_w = layer.attention_maps(x)
        y = layer(x)
    torch.testing.assert_close(got_h[..., 0], a_h)
    torch.testing.assert_close(got_w[:, :, 0, :], a_w)
    torch.testing.assert_close(y, y_hand)
    torch.testing.assert_close(y, x * got_h * got_w)


def test_ca_multiplier_is_rank_one_per_channel():
    """y / x = a_h a_w^T: one factor constant along W, the other along H."""
    torch.manual_seed(0)
    layer = CoordAttention(8).eval()
    x = torch.rand(2, 8, 6, 4) + 0.5
    with torch.no_grad():
        ratio = layer(x) / x
    a_h, a_w = layer.attention_maps(x)
    torch.testing.assert_close(ratio, a_h.expand(-1, -1, -1, 4) * a_w.expand(-1, -1, 6, -1))
    for b in range(2):
        for c in range(8):
            singular = torch.linalg.svdvals(ratio[b, c].double())
            assert singular[1] < 1e-5 * singular[0]


def test_ca_directions_are_separate():
    """In eval mode a_h depends on x only through the row means (z^h) and a_w only through the column means:
    adding a pattern whose every row averages to zero moves a_w but leaves a_h unchanged, and vice versa."""
    torch.manual_seed(0)
    layer = CoordAttention(8)
    _randomize_bn_stats(layer, torch.Generator().manual_seed(4))
    layer.eval()
    x = torch.randn(1, 8, 5, 7)
    rows_zero = torch.randn(1, 8, 5, 7)
    rows_zero = rows_zero - rows_zero.mean(dim=3, keepdim=True)
    cols_zero = torch.randn(1, 8, 5, 7)
    cols_zero = cols_zero - cols_zero.mean(dim=2, keepdim=True)
    with torch.no_grad():
        a_h, a_w = layer.attention_maps(x)
        h1, w1 = layer.attention_maps(x + rows_zero)
        h2, w2 = layer.attention_maps(x + cols_zero)
    torch.testing.assert_close(h1, a_h)
    assert not torch.allclose(w1, a_w)
    torch.testing.assert_close(w2, a_w)
    assert not torch.allclose(h2, a_h)


def test_ca_follows_official_choices():
    layer = CoordAttention(64)
    assert isinstance(layer.act, nn.Hardswish)
    assert layer.shared.out_channels == 8            # max(8, 64 // 32)
    assert CoordAttention(512).shared.out_channels == 16
    assert layer.shared.bias is not None


# --- SE and CBAM against their equations ----------------------------------------------------------------

def test_se_matches_equations_by_hand():
    torch.manual_seed(0)
    layer = SqueezeExcite(16, reduction=4)
    x = torch.randn(2, 16, 5, 3)
    z = x.mean(dim=(2, 3))                                                         # Eq. 2
    s = torch.relu(z @ layer.reduce.weight[:, :, 0, 0].T + layer.reduce.bias)
    s = torch.sigmoid(s @ layer.expand.weight[:, :, 0, 0].T + layer.expand.bias)  # Eq. 3
    torch.testing.assert_close(layer(x), x * s[:, :, None, None])                 # Eq. 4


def test_cbam_matches_equations_by_hand():
    torch.manual_seed(0)
    layer = CBAM(16, reduction=4)
    _randomize_bn_stats(layer, torch.Generator().manual_seed(5))
    layer.eval()
    x = torch.randn(2, 16, 6, 5)
    w1, b1 = layer.mlp[0].weight[:, :, 0, 0], layer.mlp[0].bias
    w2, b2 = layer.mlp[2].weight[:, :, 0, 0], layer.mlp[2].bias

    def mlp(v):
        return torch.relu(v @ w1.T + b1) @ w2.T + b2

    m_c = torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.amax(dim=(2, 3))))          # Eq. 2
    f1 = x * m_c[:, :, None, None]
    pooled = torch.stack([f1.amax(dim=1), f1.mean(dim=1)], dim=1)                  # [max; mean], official order
    s = nn.functional.conv2d(pooled, layer.spatial_conv.weight, padding=3)
    bn = layer.spatial_bn
    s = (s - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    with torch.no_grad():
        torch.testing.assert_close(layer(x), f1 * torch.sigmoid(s))               # Eq. 3


# --- factory --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_factory_round_trip(name):
    layer = create_attention(name, 16)
    assert type(layer) is ATTENTION_LAYERS[name]
    by_class = {cls: key for key, cls in ATTENTION_LAYERS.items()}
    assert by_class[type(layer)] == name
    assert attention_params(name, 16) == _numel(layer)


def test_factory_names():
    assert attention_names() == ["ca", "cbam", "none", "se", "triplet"]
    assert set(ATTENTION_LAYERS) == set(NAMES)
    assert ATTENTION_LAYERS["none"] is nn.Identity


def test_factory_passes_keyword_options():
    assert create_attention("se", 64, reduction=8).reduce.out_channels == 8
    assert create_attention("cbam", 64, reduction=16, spatial_kernel=3).spatial_conv.kernel_size == (3, 3)
    assert create_attention("ca", 64, reduction=4).shared.out_channels == 16
    assert attention_params("ca", 64, reduction=4) == coord_attention_params(64, reduction=4)


def test_factory_unknown_name():
    with pytest.raises(ValueError) as info:
        create_attention("eca", 16)
    message = str(info.value)
    assert "eca" in message
    for name in NAMES:
        assert repr(name) in message
    with pytest.raises(ValueError, match="eca"):
        attention_params("eca", 16)


def test_invalid_options_raise():
    with pytest.raises(ValueError):
        SqueezeExcite(16, reduction=0)
    with pytest.raises(ValueError):
        CBAM(16, spatial_kernel=4)
    with pytest.raises(ValueError):
        CoordAttention(0)
