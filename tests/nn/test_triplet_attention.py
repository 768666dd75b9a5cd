"""Triplet attention (arXiv:2010.03045): shapes, gradients, the closed-form parameter count, Eq. 1-3 by hand,
the paper's rotations vs the code's transpositions, branch symmetry under H <-> W, the factory."""
import pytest
import torch
from torch import nn

from lib.models import MobileNetV2
from lib.nn.attention import ATTENTION_LAYERS, attention_params, create_attention
from lib.nn.triplet_attention import TripletAttention, ZPoolGate, triplet_attention_params, z_pool

SHAPES = [(2, 16, 8, 8), (2, 32, 7, 5), (3, 24, 1, 9), (2, 64, 4, 4), (1, 3, 5, 3)]


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _randomize_bn(module: nn.Module, generator: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator))
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.num_features, generator=generator))
                m.bias.copy_(torch.randn(m.num_features, generator=generator))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("no_spatial", [False, True])
def test_output_shape_equals_input_shape(shape, train, no_spatial):
    torch.manual_seed(0)
    layer = TripletAttention(shape[1], no_spatial=no_spatial).train(train)
    x = torch.randn(shape)
    y = layer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    branches = layer.branches(x)
    assert len(branches) == (2 if no_spatial else 3)
    assert all(b.shape == x.shape for b in branches)


def test_gate_shapes_and_range():
    torch.manual_seed(0)
    layer = TripletAttention(6).eval()
    x = torch.randn(2, 6, 5, 7)
    g_cw = layer.cw.gate(x.permute(0, 2, 1, 3))   # pools H: map on (C, W)
    g_hc = layer.hc.gate(x.permute(0, 3, 2, 1))   # pools W: map on (H, C)
    g_hw = layer.hw.gate(x)                       # pools C: map on (H, W)
    assert g_cw.shape == (2, 1, 6, 7) and g_hc.shape == (2, 1, 5, 6) and g_hw.shape == (2, 1, 5, 7)
    for g in (g_cw, g_hc, g_hw):
        assert ((g > 0) & (g < 1)).all()


def test_z_pool_is_max_and_mean_of_first_axis():
    x = torch.randn(3, 5, 4, 6)
    z = z_pool(x)
    assert z.shape == (3, 2, 4, 6)
    torch.testing.assert_close(z[:, 0], x.max(dim=1).values)
    torch.testing.assert_close(z[:, 1], x.mean(dim=1))


# --- parameter counts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 8, 96, 960])
@pytest.mark.parametrize("kernel_size", [1, 3, 5, 7])
@pytest.mark.parametrize("no_spatial", [False, True])
def test_param_count_closed_form_independent_of_channels(channels, kernel_size, no_spatial):
    layer = TripletAttention(channels, kernel_size=kernel_size, no_spatial=no_spatial)
    assert _numel(layer) == triplet_attention_params(channels, kernel_size, no_spatial)
    assert _numel(layer) == triplet_attention_params(1, kernel_size, no_spatial)


def test_param_count_by_hand():
    # three gates: 2 -> 1 7x7 conv without bias (98) + one-channel BN (2)
    assert triplet_attention_params(96) == 3 * (2 * 49 + 2) == 300
    assert triplet_attention_params(96, kernel_size=3) == 3 * 20 == 60
    assert triplet_attention_params(96, no_spatial=True) == 200
    layer = TripletAttention(64)
    for gate in (layer.cw, layer.hc, layer.hw):
        assert gate.conv.weight.shape == (1, 2, 7, 7) and gate.conv.bias is None
        assert gate.bn.momentum == 0.01 and gate.bn.eps == 1e-5


def test_mobilenetv2_extra_params_are_blocks_times_closed_form():
    """In MobileNetV2 the module sits in every expanding block (16 of 17), whatever their widths."""
    for width in (0.5, 1.0):
        base = _numel(MobileNetV2(width_mult=width))
        for k in (3, 7):
            model = MobileNetV2(width_mult=width, attention="triplet", attention_kwargs={"kernel_size": k})
            assert _numel(model) - base == 16 * triplet_attention_params(kernel_size=k)


# --- equations ----------------------------------------------------------------------------------------------

def _gate_by_hand(gate: ZPoolGate, t: torch.Tensor) -> torch.Tensor:
    """sigmoid(BN(conv([max; mean]))) with eval-mode BN, written out."""
    pooled = torch.stack([t.max(dim=1).values, t.mean(dim=1)], dim=1)
    s = nn.functional.conv2d(pooled, gate.conv.weight, padding=gate.conv.kernel_size[0] // 2)
    bn = gate.bn
    s = (s - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    return torch.sigmoid(s)


def test_matches_equations_by_hand():
    torch.manual_seed(0)
    layer = TripletAttention(5, kernel_size=3)
    _randomize_bn(layer, torch.Generator().manual_seed(1))
    layer.eval()
    x = torch.randn(2, 5, 4, 6)
    with torch.no_grad():
        a = x.transpose(1, 2)                                   # (N, H, C, W)
        y1 = (a * _gate_by_hand(layer.cw, a)).transpose(1, 2)
        b = x.permute(0, 3, 2, 1)                               # (N, W, H, C)
        y2 = (b * _gate_by_hand(layer.hc, b)).permute(0, 3, 2, 1)
        y3 = x * _gate_by_hand(layer.hw, x)
        torch.testing.assert_close(layer(x), (y1 + y2 + y3) / 3)   # Eq. 2
        got = layer.branches(x)
    for mine, hand in zip(got, (y1, y2, y3)):
        torch.testing.assert_close(mine, hand)


def _official_structure(layer: TripletAttention, x: torch.Tensor) -> torch.Tensor:
    """The official code's order of operations: permute the tensor, gate it, permute back, average copies."""
    y1 = layer.cw(x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3)
    y2 = layer.hc(x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1)
    if layer.hw is None:
        return (y1 + y2) / 2
    return (y1 + y2 + layer.hw(x)) / 3


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("no_spatial", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_same_function_as_the_official_permutations(shape, no_spatial, channels_last):
    torch.manual_seed(0)
    layer = TripletAttention(shape[1], kernel_size=3 if shape[2] < 3 else 7, no_spatial=no_spatial)
    _randomize_bn(layer, torch.Generator().manual_seed(5))
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for train in (False, True):
        layer.train(train)
        torch.testing.assert_close(layer(x), _official_structure(layer, x))


@pytest.mark.parametrize("no_spatial", [False, True])
def test_output_is_mean_of_branches(no_spatial):
    torch.manual_seed(0)
    layer = TripletAttention(8, no_spatial=no_spatial).train()
    x = torch.randn(4, 8, 6, 5)
    branches = layer.branches(x)
    torch.testing.assert_close(layer(x), torch.stack(branches).mean(dim=0))


def test_paper_rotation_equals_code_transposition():
    """A 90-degree rotation is a transposition plus a flip of one axis; the flipped axis is the pooled one,
    which max and mean ignore, so the paper's rotations and the code's permutations give the same branches."""
    torch.manual_seed(0)
    layer = TripletAttention(6)
    _randomize_bn(layer, torch.Generator().manual_seed(2))
    layer.eval()
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        y1, y2, _ = layer.branches(x)
        r1 = torch.rot90(x, 1, dims=(1, 2))      # anticlockwise: H to the front, its order reversed
        torch.testing.assert_close(torch.rot90(r1 * layer.cw.gate(r1), -1, dims=(1, 2)), y1)
        r2 = torch.rot90(x, 1, dims=(1, 3))
        torch.testing.assert_close(torch.rot90(r2 * layer.hc.gate(r2), -1, dims=(1, 3)), y2)
        # clockwise, the flip lands on C instead, which the gate's convolution does see: the same branch
        # then needs the kernel mirrored along C, and the unmirrored one gives another function
        r1 = torch.rot90(x, -1, dims=(1, 2))
        assert not torch.allclose(torch.rot90(r1 * layer.cw.gate(r1), 1, dims=(1, 2)), y1)
        layer.cw.conv.weight.copy_(layer.cw.conv.weight.flip(2))
        torch.testing.assert_close(torch.rot90(r1 * layer.cw.gate(r1), 1, dims=(1, 2)), y1)


def test_branches_swap_under_transposition_of_h_and_w():
    """With transposed kernels, branch 1 on x^T (H <-> W) is branch 2 on x, transposed back, and vice versa;
    the spatial branch on x^T is the spatial branch on x, transposed."""
    torch.manual_seed(0)
    a = TripletAttention(4)
    _randomize_bn(a, torch.Generator().manual_seed(3))
    b = TripletAttention(4)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.cw.conv.weight.copy_(a.hc.conv.weight.transpose(-1, -2))
        b.hc.conv.weight.copy_(a.cw.conv.weight.transpose(-1, -2))
        b.hw.conv.weight.copy_(a.hw.conv.weight.transpose(-1, -2))
        for src, dst in ((a.hc, b.cw), (a.cw, b.hc)):
            dst.bn.load_state_dict(src.bn.state_dict())
    a.eval()
    b.eval()
    x = torch.randn(2, 4, 5, 7)
    xt = x.transpose(2, 3)
    with torch.no_grad():
        a1, a2, a3 = a.branches(x)
        b1, b2, b3 = b.branches(xt)
        torch.testing.assert_close(b1.transpose(2, 3), a2)
        torch.testing.assert_close(b2.transpose(2, 3), a1)
        torch.testing.assert_close(b3.transpose(2, 3), a3)
        torch.testing.assert_close(b(xt).transpose(2, 3), a(x))
    # a generic module is not symmetric: the check above is not vacuous
    assert not torch.allclose(a(xt).transpose(2, 3), a(x))


def test_is_not_the_identity_and_gates_shrink():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 6, 7)
    y = TripletAttention(16)(x)
    assert not torch.allclose(y, x)
    assert (y.abs() <= x.abs() + 1e-6).all()   # a mean of sigmoid-gated copies


# --- gradients ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("train", [True, False])
def test_gradients_reach_input_and_every_parameter(train):
    torch.manual_seed(0)
    layer = TripletAttention(32)
    _randomize_bn(layer, torch.Generator().manual_seed(4))
    layer.train(train)
    x = torch.randn(4, 32, 6, 5, requires_grad=True)
    (layer(x) * torch.randn(4, 32, 6, 5)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic():
    x = torch.randn(2, 8, 5, 5)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append(TripletAttention(8)(x))
    assert torch.equal(outs[0], outs[1])


# --- factory and errors -------------------------------------------------------------------------------------

def test_factory_builds_it():
    layer = create_attention("triplet", 48)
    assert type(layer) is TripletAttention and ATTENTION_LAYERS["triplet"] is TripletAttention
    assert attention_params("triplet", 48) == _numel(layer) == 300
    small = create_attention("triplet", 48, kernel_size=3, no_spatial=True)
    assert _numel(small) == attention_params("triplet", 48, kernel_size=3, no_spatial=True) == 40
    assert small.hw is None


@pytest.mark.parametrize("kwargs", [{"channels": 0}, {"channels": 8, "kernel_size": 4},
                                    {"channels": 8, "kernel_size": 0}, {"channels": 2.5}])
def test_invalid_arguments_name_the_value(kwargs):
    with pytest.raises(ValueError) as info:
        TripletAttention(**kwargs)
    bad = [v for v in kwargs.values() if v in (0, 4, 2.5)][0]
    assert repr(bad) in str(info.value)
