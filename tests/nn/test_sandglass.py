"""Sandglass block: layouts, shapes, shortcut positions, closed-form parameter counts, gradients, the
official code's middle-width rule."""
import pytest
import torch
from torch import nn

from lib.nn.sandglass import SandglassBlock, bottleneck_width, resolve_layout, sandglass_params


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bottleneck_width_rule():
    assert bottleneck_width(96, 96, 6) == 16            # 96 // 6, not below 96 / 6
    assert bottleneck_width(192, 192, 6) == 32
    assert bottleneck_width(96, 144, 6) == 32           # 16 < 144 / 6 = 24 -> make_divisible(24, 16) = 32
    assert bottleneck_width(960, 1280, 6) == 208        # 160 < 213.3 -> ceil = 214 -> nearest 16: 208
    assert bottleneck_width(32, 96, 2) == 16


@pytest.mark.parametrize("in_ch,out_ch,stride,layout,convs", [
    (48, 48, 1, "full", [(3, 48), (1, 1), (1, 1), (3, 48)]),
    (48, 96, 2, "reduce", [(1, 1), (1, 1), (3, 96)]),
    (48, 96, 1, "pointwise", [(1, 1), (1, 1)]),
])
def test_auto_layouts_follow_the_official_code(in_ch, out_ch, stride, layout, convs):
    block = SandglassBlock(in_ch, out_ch, stride, 6)
    assert block.layout == resolve_layout(in_ch, out_ch, stride) == layout
    got = [(m.kernel_size[0], m.groups) for m in block.conv if isinstance(m, nn.Conv2d)]
    assert got == convs
    acts = [i for i, m in enumerate(block.conv) if isinstance(m, nn.ReLU6)]
    kinds = [type(m).__name__ for m in block.conv]
    # ReLU6 after the first depthwise (full layout) and after the expansion; reduction and last depthwise linear
    assert all(kinds[i - 1] == "BatchNorm2d" for i in acts)
    assert len(acts) == (2 if layout == "full" else 1)
    assert not isinstance(block.conv[-1], nn.ReLU6) or layout == "pointwise"


@pytest.mark.parametrize("in_ch,out_ch,stride,t,layout", [
    (48, 48, 1, 6, "auto"), (48, 96, 2, 6, "auto"), (48, 96, 1, 6, "auto"), (16, 48, 2, 2, "full"),
    (96, 144, 1, 6, "full"), (24, 24, 1, 2, "auto"),
])
def test_shapes_counts_gradients(in_ch, out_ch, stride, t, layout):
    torch.manual_seed(0)
    block = SandglassBlock(in_ch, out_ch, stride, t, layout)
    x = torch.randn(2, in_ch, 8, 8, requires_grad=True)
    y = block(x)
    assert y.shape == (2, out_ch, 8 // stride, 8 // stride)
    assert _numel(block) == sandglass_params(in_ch, out_ch, stride, t, layout)
    y.square().mean().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


def test_shortcut_only_when_shapes_match():
    """With the last BN scale and shift at zero the residual branch is silent: identity with a shortcut, zeros without."""
    torch.manual_seed(0)
    x = torch.randn(2, 48, 6, 6)
    for (out_ch, stride, layout), shortcut in {(48, 1, "auto"): True, (48, 2, "auto"): False,
                                               (96, 1, "full"): False}.items():
        block = SandglassBlock(48, out_ch, stride, 6, layout)
        bn = block.conv[-1]
        nn.init.zeros_(bn.weight), nn.init.zeros_(bn.bias)
        y = block.eval()(x)
        assert block.use_shortcut == shortcut
        if shortcut:
            torch.testing.assert_close(y, x)
        else:
            assert not y.any()


def test_shortcut_sums_on_the_wide_tensor():
    """The shortcut joins tensors of in_ch = out_ch channels; the middle is in_ch / t."""
    block = SandglassBlock(96, 96, 1, 6)
    assert block.use_shortcut and block.hidden_channels == 16
    assert block.conv[3].out_channels == 16 and block.conv[-2].out_channels == 96


def test_bad_values_raise():
    with pytest.raises(ValueError, match="layout"):
        SandglassBlock(16, 16, 1, 6, layout="hourglass")
    with pytest.raises(ValueError, match="stride"):
        SandglassBlock(16, 16, 3, 6)
    with pytest.raises(ValueError, match="stride"):
        SandglassBlock(16, 32, 2, 6, layout="pointwise")
    with pytest.raises(ValueError, match="reduction"):
        SandglassBlock(16, 16, 1, 0)
