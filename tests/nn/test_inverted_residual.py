"""Inverted residual block and its ablation variants: shapes, shortcuts, gradients, closed-form counts,
linear vs ReLU6 differing only by the last activation, the classic variant at exactly the same cost."""
import hashlib

import pytest
import torch
from torch import nn

from lib.measure import count_flops
from lib.models.mobilenetv2 import MobileNetV2
from lib.nn.inverted_residual import ClassicResidual, InvertedResidual, inverted_residual_params

# sha256 of "name:shape" lines of the default MobileNetV2() state_dict (width 0.5, CIFAR strides, 10 classes)
# and of MobileNetV2(num_classes=1000, width_mult=1.0, strides="imagenet"), computed before the blocks moved
# to lib/nn/inverted_residual.py; with the output digests they pin the default network bit for bit.
KEYS_DIGEST = {"default": "a9ba20d43a0aac59", "imagenet": "c5427565f5e67410"}
WEIGHTS_DIGEST = {"default": "c18693cd96ef9d23", "imagenet": "f791068566d4e439"}
OUTPUT_DIGEST_DEFAULT = "8d18333a2d682ed7"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _digest(model: nn.Module) -> tuple[str, str]:
    keys = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    weights = b"".join(v.detach().contiguous().numpy().tobytes() for v in model.state_dict().values())
    return hashlib.sha256(keys.encode()).hexdigest()[:16], hashlib.sha256(weights).hexdigest()[:16]


@pytest.mark.parametrize("config", ["default", "imagenet"])
def test_default_network_unchanged(config):
    kwargs = {} if config == "default" else {"num_classes": 1000, "width_mult": 1.0, "strides": "imagenet"}
    torch.manual_seed(0)
    model = MobileNetV2(**kwargs)
    assert _digest(model) == (KEYS_DIGEST[config], WEIGHTS_DIGEST[config])
    explicit = MobileNetV2(**kwargs, bottleneck="linear", residual="inverted")
    assert _digest(explicit)[0] == KEYS_DIGEST[config]


def test_default_network_output_unchanged():
    torch.manual_seed(0)
    model = MobileNetV2().eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    assert hashlib.sha256(y.numpy().tobytes()).hexdigest()[:16] == OUTPUT_DIGEST_DEFAULT


@pytest.mark.parametrize("stride,in_ch,out_ch,t", [(1, 16, 16, 6), (2, 16, 24, 6), (1, 16, 8, 1), (1, 24, 32, 4)])
@pytest.mark.parametrize("bottleneck", ["linear", "relu6"])
def test_shapes_counts_and_gradients(stride, in_ch, out_ch, t, bottleneck):
    torch.manual_seed(0)
    block = InvertedResidual(in_ch, out_ch, stride, t, bottleneck=bottleneck)
    x = torch.randn(2, in_ch, 8, 8, requires_grad=True)
    y = block(x)
    assert y.shape == (2, out_ch, 8 // stride, 8 // stride)
    assert block.use_shortcut == (stride == 1 and in_ch == out_ch)
    assert _numel(block) == inverted_residual_params(in_ch, out_ch, t)
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


@pytest.mark.parametrize("shortcut", [True, False])
def test_linear_and_relu6_differ_only_by_the_last_activation(shortcut):
    torch.manual_seed(0)
    linear = InvertedResidual(16, 16 if shortcut else 24, 1, 6, bottleneck="linear")
    relu6 = InvertedResidual(16, 16 if shortcut else 24, 1, 6, bottleneck="relu6")
    relu6.load_state_dict(linear.state_dict())      # same keys: the activation has no parameters
    linear.eval(), relu6.eval()
    x = torch.randn(2, 16, 6, 6) * 3
    residual = linear.project(linear.attention(linear.depthwise(linear.expand(x))))
    expected = torch.clamp(residual, 0, 6) + (x if shortcut else 0)
    torch.testing.assert_close(relu6(x), expected)
    assert not torch.allclose(relu6(x), linear(x))     # the ReLU6 does cut something
    assert isinstance(relu6.project[-1], nn.ReLU6) and not isinstance(linear.project[-1], nn.ReLU6)


@pytest.mark.parametrize("width", [0.35, 0.5, 1.0])
@pytest.mark.parametrize("strides", ["cifar", "imagenet"])
def test_classic_residual_has_exactly_the_same_cost(width, strides):
    size = 32 if strides == "cifar" else 224
    inverted = MobileNetV2(width_mult=width, strides=strides)
    for variant in (MobileNetV2(width_mult=width, strides=strides, residual="classic"),
                    MobileNetV2(width_mult=width, strides=strides, bottleneck="relu6")):
        assert _numel(variant) == _numel(inverted)
        if strides == "cifar":
            assert count_flops(variant, (1, 3, size, size)) == count_flops(inverted, (1, 3, size, size))
    shapes = sorted(tuple(p.shape) for p in inverted.parameters())
    assert sorted(tuple(p.shape) for p in MobileNetV2(width_mult=width, strides=strides, residual="classic").parameters()) == shapes


def test_classic_shortcuts_join_expanded_tensors():
    """Same number of shortcuts as the inverted network, each one on the t-times wider tensor."""
    inverted = MobileNetV2(width_mult=0.5)
    classic = MobileNetV2(width_mult=0.5, residual="classic")
    inv_blocks = [m for m in inverted.modules() if isinstance(m, InvertedResidual)]
    cls_blocks = [m for m in classic.modules() if isinstance(m, ClassicResidual)]
    assert len(inv_blocks) == len(cls_blocks) == 17
    assert [b.use_shortcut for b in inv_blocks] == [b.use_shortcut for b in cls_blocks]
    assert sum(b.use_shortcut for b in cls_blocks) == 10
    seen = []
    for block in cls_blocks:
        if block.use_shortcut:
            block.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    classic.eval()(torch.randn(1, 3, 32, 32))
    narrow = [b.project[0].out_channels for b in inv_blocks if b.use_shortcut]
    assert seen == [6 * c for c in narrow]


def test_classic_block_identity_when_silent():
    torch.manual_seed(0)
    block = ClassicResidual(96, 16, 96, 1).eval()
    nn.init.zeros_(block.expand[1].weight)
    nn.init.zeros_(block.expand[1].bias)
    x = torch.randn(2, 96, 5, 5)
    torch.testing.assert_close(block(x), x)
    assert not ClassicResidual(96, 16, 144, 1).use_shortcut and not ClassicResidual(96, 16, 96, 2).use_shortcut


def test_bad_values_raise():
    with pytest.raises(ValueError, match="relu"):
        InvertedResidual(16, 16, 1, 6, bottleneck="relu")
    with pytest.raises(ValueError, match="bogus"):
        MobileNetV2(residual="bogus")
    with pytest.raises(ValueError, match="bogus"):
        MobileNetV2(bottleneck="bogus")
    with pytest.raises(ValueError, match="stride"):
        ClassicResidual(16, 8, 16, 3)
