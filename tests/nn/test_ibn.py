"""IBN-Net: the IBN layer by hand, appearance invariance of its IN half, placement per stage as the official
_make_layer, parameter counts, the default network unchanged."""
import pytest
import torch
from torch import nn

from lib.models import ResNetCIFAR
from lib.nn import IBN


def test_ibn_is_instance_norm_on_the_first_half_and_batch_norm_on_the_rest():
    torch.manual_seed(0)
    layer = IBN(6).train()
    x = torch.randn(4, 6, 5, 5, dtype=torch.float64)
    layer = layer.double()
    out = layer(x)
    first, rest = x[:, :3], x[:, 3:]
    inst = (first - first.mean((2, 3), keepdim=True)) / torch.sqrt(first.var((2, 3), unbiased=False, keepdim=True) + 1e-5)
    batch = (rest - rest.mean((0, 2, 3), keepdim=True)) / torch.sqrt(rest.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(out, torch.cat([inst, batch], 1))


def test_the_instance_half_ignores_per_image_contrast_and_brightness_the_batch_half_does_not():
    torch.manual_seed(0)
    layer = IBN(8).double().train()
    x = torch.randn(4, 8, 6, 6, dtype=torch.float64)
    scale = torch.rand(4, 8, 1, 1, dtype=torch.float64) + 0.5
    shifted = x * scale + torch.randn(4, 8, 1, 1, dtype=torch.float64)
    a, b = layer(x), layer(shifted)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=1e-4, rtol=1e-4)   # IN: invariant (up to eps)
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 0.1                         # BN: not


def _norms(model):
    return [(name, type(m).__name__) for name, m in model.named_modules() if isinstance(m, (IBN, nn.InstanceNorm2d))]


def test_placement_follows_the_official_make_layer():
    # ResNet-20: 3 blocks per stage. "a": the first norm of every block of the stage; "b": an IN after the addition of
    # the stage's last block only, and the stem's norm becomes an IN when the first stage is "b".
    a = ResNetCIFAR(20, ibn=("a", "a", None))
    assert {n for n, t in _norms(a) if t == "IBN"} == {f"stages.{i}.bn1" for i in range(6)}
    b = ResNetCIFAR(20, ibn=("b", "b", None))
    assert [n for n, t in _norms(b) if t == "InstanceNorm2d"] == ["stem.1", "stages.2.IN", "stages.5.IN"]
    # ResNet-8 (one block per stage): the official rule never puts "b" in a stage's first block
    assert [n for n, _ in _norms(ResNetCIFAR(8, ibn=("b", "b", None)))] == ["stem.1"]


def test_parameter_counts_ibn_a_equals_plain_and_ibn_b_adds_two_affine_vectors_per_block_in():
    plain = sum(p.numel() for p in ResNetCIFAR(20).parameters())
    assert sum(p.numel() for p in ResNetCIFAR(20, ibn=("a", "a", None)).parameters()) == plain
    # stem BN -> IN: same count; one IN of 16 and one of 32 channels: 2 * (16 + 32)
    assert sum(p.numel() for p in ResNetCIFAR(20, ibn=("b", "b", None)).parameters()) == plain + 2 * (16 + 32)


def test_default_is_the_plain_network_and_bad_configs_are_named():
    torch.manual_seed(0)
    plain = ResNetCIFAR(8)
    torch.manual_seed(0)
    explicit = ResNetCIFAR(8, ibn=(None, None, None))
    assert plain.state_dict().keys() == explicit.state_dict().keys()
    assert all(torch.equal(plain.state_dict()[k], v) for k, v in explicit.state_dict().items())
    with pytest.raises(ValueError, match="one of None, 'a', 'b' for each of the 3 stages"):
        ResNetCIFAR(8, ibn=("a", "c", None))
    with pytest.raises(ValueError, match="IBN needs"):
        IBN(1)


def test_ibn_b_normalises_the_sum_before_the_relu():
    """The IN of an IBN-b block sees the residual sum (negative values included) and the block's output is the ReLU
    of its output: moving the IN after the ReLU would fail both checks."""
    torch.manual_seed(0)
    net = ResNetCIFAR(20, ibn=("b", "b", None)).eval()
    block = net.stages[2]
    seen = {}
    block.IN.register_forward_hook(lambda m, inputs, out: seen.update(inp=inputs[0], out=out))
    x = torch.randn(2, 16, 32, 32)
    y = block(x)
    assert (seen["inp"] < 0).any()
    torch.testing.assert_close(y, torch.relu(seen["out"]))
