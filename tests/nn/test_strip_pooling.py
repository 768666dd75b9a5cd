"""lib.nn.strip_pooling / pyramid_pooling and lib.models.segmentation: shapes, strip means, closed-form
parameter counts, gradients, the SPM's cross-shaped receptive field, and reductions to the Base FCN."""
import copy

import pytest
import torch

from lib.models.segmentation import CONTEXT_MODULES, SegmentationNet
from lib.nn.pyramid_pooling import PyramidPooling, ppm_params
from lib.nn.strip_pooling import MixedPoolingModule, StripPoolingModule, mpm_params, spm_params, strip_pool


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("shape", [(2, 8, 5, 7), (1, 16, 12, 16), (3, 4, 1, 9)])
def test_spm_and_mpm_keep_the_input_shape(shape):
    torch.manual_seed(0)
    x = torch.randn(shape)
    assert StripPoolingModule(shape[1]).eval()(x).shape == x.shape
    assert MixedPoolingModule(shape[1], bins=(3, 2)).eval()(x).shape == x.shape


def test_strip_pooling_of_a_map_constant_along_rows():
    f = torch.tensor([1.0, -2.0, 4.0, 0.5])                      # x[c, i, j] = (c + 1) * f(i) for every j
    x = (torch.arange(1, 4.0)[:, None, None] * f[None, :, None]).expand(3, 4, 6)[None]
    rows, cols = strip_pool(x)
    assert rows.shape == (1, 3, 4, 1) and cols.shape == (1, 3, 1, 6)
    assert torch.allclose(rows[0, :, :, 0], torch.arange(1, 4.0)[:, None] * f)           # Eq. (2): y^h_i = f(i)
    assert torch.allclose(cols[0, :, 0, :], (torch.arange(1, 4.0) * f.mean())[:, None].expand(3, 6))  # Eq. (3)


@pytest.mark.parametrize("c", [8, 16, 64])
def test_parameter_counts_in_closed_form(c):
    assert n_params(StripPoolingModule(c)) == spm_params(c) == 7 * c * c + 5 * c
    assert n_params(StripPoolingModule(c, hidden=c // 2)) == spm_params(c, c // 2)
    assert n_params(MixedPoolingModule(c, bins=(4, 2))) == mpm_params(c, (4, 2))
    assert n_params(PyramidPooling(c)) == ppm_params(c) == c * c + 2 * c


def test_official_mpm_width_has_the_expected_count():
    # the official SPHead runs the MPM on 1024 channels with 256-channel branches
    m = 256
    expected = 2 * (1024 * m + 2 * m) + 5 * (9 * m * m + 2 * m) + 2 * (3 * m * m + 2 * m) + 2 * m * 1024 + 2 * 1024
    assert mpm_params(1024) == expected == n_params(MixedPoolingModule(1024))


@pytest.mark.parametrize("module", [StripPoolingModule(8), MixedPoolingModule(8, bins=(3, 2)), PyramidPooling(8)])
def test_gradients_reach_every_parameter_and_the_input(module):
    torch.manual_seed(1)
    x = torch.randn(2, 8, 6, 9, requires_grad=True)
    module(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_spm_gate_sees_exactly_the_cross_of_neighbouring_rows_and_columns():
    torch.manual_seed(2)
    spm = StripPoolingModule(4).eval()
    x = torch.randn(1, 4, 9, 11)
    y = x.clone()
    y[0, :, 7, 9] += 5.0                                  # change one pixel far from (1, 1)
    d = (spm.gate(x) - spm.gate(y)).abs().sum(1)[0]       # (H, W)
    assert d[1, 1] == 0                                   # rows 6..8 and columns 8..10 only
    assert d[7, 0] > 0 and d[0, 9] > 0                    # long range: the whole row and the whole column move
    assert (d[:5, :7] == 0).all()


def test_spm_with_a_zero_output_conv_is_a_constant_scaling():
    torch.manual_seed(3)
    spm = StripPoolingModule(6).eval()
    torch.nn.init.zeros_(spm.out.weight)
    x = torch.randn(2, 6, 5, 7)
    assert torch.allclose(spm(x), x * torch.sigmoid(spm.out.bias)[None, :, None, None], atol=1e-6)


def test_mpm_with_a_zero_fusing_bn_is_the_identity_on_relu_features():
    torch.manual_seed(4)
    mpm = MixedPoolingModule(8, bins=(3, 2)).eval()
    torch.nn.init.zeros_(mpm.fuse[1].weight)
    x = torch.relu(torch.randn(2, 8, 6, 8))
    assert torch.equal(mpm(x), x)


def _pair(context):
    torch.manual_seed(5)
    base = SegmentationNet(5, "none", widths=(8, 8, 16, 16), blocks=(1, 1, 1), head_channels=8).eval()
    other = SegmentationNet(5, context, widths=(8, 8, 16, 16), blocks=(1, 1, 1), head_channels=8,
                            mpm_bins=(3, 2)).eval()
    state = {k: v for k, v in base.state_dict().items() if not k.startswith("head.0.")}
    other.load_state_dict(state, strict=False)
    return base, other


def test_ppm_model_with_zero_weights_on_the_pooled_channels_is_the_base_fcn():
    base, ppm = _pair("ppm")
    with torch.no_grad():
        ppm.head[0].weight.zero_()
        ppm.head[0].weight[:, :16] = base.head[0].weight
    x = torch.randn(2, 3, 24, 32)
    assert torch.allclose(ppm(x), base(x), atol=1e-5)


def test_mpm_model_with_a_zero_fusing_bn_is_the_base_fcn():
    base, mpm = _pair("mpm")
    with torch.no_grad():
        mpm.head[0].weight.copy_(base.head[0].weight)
        mpm.context.fuse[1].weight.zero_()
    x = torch.randn(2, 3, 24, 32)
    assert torch.allclose(mpm(x), base(x), atol=1e-5)


def test_spm_model_with_a_zero_output_conv_is_the_base_fcn_with_scaled_head():
    base, spm = _pair("spm")
    with torch.no_grad():
        spm.context.out.weight.zero_()
        scale = torch.sigmoid(spm.context.out.bias)
        spm.head[0].weight.copy_(base.head[0].weight / scale[None, :, None, None])
    x = torch.randn(2, 3, 24, 32)
    assert torch.allclose(spm(x), base(x), atol=1e-4)


@pytest.mark.parametrize("context", CONTEXT_MODULES)
def test_model_returns_logits_at_the_input_size(context):
    torch.manual_seed(6)
    net = SegmentationNet(11, context)
    out = net(torch.randn(2, 3, 48, 64))
    assert out.shape == (2, 11, 48, 64)
    assert net.features(torch.randn(1, 3, 48, 64)).shape[2:] == (6, 8)      # output stride 8
    out.logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_bad_arguments_name_the_value_and_the_accepted_ones():
    with pytest.raises(ValueError, match="accepted: none, ppm, spm, mpm"):
        SegmentationNet(11, "aspp")
    with pytest.raises(ValueError, match="divisible"):
        PyramidPooling(10)
    with pytest.raises(ValueError, match="bins"):
        MixedPoolingModule(8, bins=(0, 2))
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        StripPoolingModule(8)(torch.randn(1, 4, 3, 3))
