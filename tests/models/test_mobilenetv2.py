"""MobileNetV2 at CIFAR strides: shapes, resolution schedule, attention slot, parameter counts, gradients."""
import pytest
import torch
from torch import nn

from lib.models import InvertedResidual, MobileNetV2, make_divisible
from lib.nn import ATTENTION_LAYERS, attention_params

NAMES = ["none", "se", "cbam", "ca"]
ATTENTION_CLASSES = tuple(cls for name, cls in ATTENTION_LAYERS.items() if name != "none")

# width 0.5: (in, out, t) of the 17 blocks, worked out by hand from Table 2 and the rounding rule.
BLOCKS_HALF = (
    [(16, 8, 1), (8, 16, 6), (16, 16, 6)]
    + [(16, 16, 6)] * 3
    + [(16, 32, 6)] + [(32, 32, 6)] * 3
    + [(32, 48, 6)] + [(48, 48, 6)] * 2
    + [(48, 80, 6)] + [(80, 80, 6)] * 2
    + [(80, 160, 6)]
)
HIDDEN_HALF = [i * t for i, _, t in BLOCKS_HALF if t != 1]
# Spatial size after each block for a 32×32 input: the stem and the c = 160 stage keep stride 1.
SIZES = [32, 16, 16, 8, 8, 8, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small convolutions run faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _blocks(model: MobileNetV2) -> list[InvertedResidual]:
    return [m for m in model.modules() if isinstance(m, InvertedResidual)]


def test_make_divisible():
    assert [make_divisible(v) for v in (8, 12, 16, 20, 24, 48, 80, 160, 3.2)] == [8, 16, 16, 24, 24, 48, 80, 160, 8]
    assert make_divisible(27) == 32 and make_divisible(36) == 40   # nearest multiple of 8
    assert make_divisible(90, 32) == 96 and make_divisible(40, 32) == 64  # 32 would lose 20%


@pytest.mark.parametrize("name", NAMES)
def test_logits_shape(name):
    torch.manual_seed(0)
    model = MobileNetV2(num_classes=10, attention=name)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert MobileNetV2(num_classes=100, in_channels=1, attention=name)(torch.randn(3, 1, 32, 32)).shape == (3, 100)


def test_resolution_schedule_and_final_map():
    torch.manual_seed(0)
    model = MobileNetV2().eval()
    sizes, final = [], []
    for block in _blocks(model):
        block.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    model.features.register_forward_hook(lambda m, i, o: final.append(o.shape))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert sizes == [(s, s) for s in SIZES]
    assert final == [(2, 1280, 4, 4)]
    assert model.feature_dim == 1280


def test_block_channels_width_half():
    model = MobileNetV2(width_mult=0.5)
    blocks = _blocks(model)
    first = [b.depthwise[0] if isinstance(b.expand, nn.Identity) else b.expand[0] for b in blocks]
    got = [(conv.in_channels, b.project[0].out_channels) for conv, b in zip(first, blocks)]
    assert [(i, o) for i, o, _ in BLOCKS_HALF] == got
    assert [b.hidden_channels for b in blocks if not isinstance(b.expand, nn.Identity)] == HIDDEN_HALF
    assert model.features[0][0].stride == (1, 1)


@pytest.mark.parametrize("name", ["se", "cbam", "ca"])
def test_one_attention_per_expanding_block(name):
    model = MobileNetV2(attention=name)
    blocks = _blocks(model)
    layers = [m for m in model.modules() if isinstance(m, ATTENTION_CLASSES)]
    assert len(blocks) == 17
    assert len(layers) == sum(1 for b in blocks if not isinstance(b.expand, nn.Identity)) == 16
    assert all(isinstance(m, ATTENTION_LAYERS[name]) for m in layers)
    assert isinstance(blocks[0].attention, nn.Identity)   # t = 1 block, as in the official CA code


@pytest.mark.parametrize("name", NAMES)
def test_shortcut_only_when_shapes_match(name):
    """With the projection's BN scale at zero the residual branch is silent: a block with a shortcut is the
    identity, one without (stride 2, or a channel change) outputs zeros."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)
    for (out_ch, stride), shortcut in {(16, 1): True, (16, 2): False, (24, 1): False}.items():
        block = InvertedResidual(16, out_ch, stride, 6, attention=name)
        nn.init.zeros_(block.project[1].weight)
        y = block.eval()(x)
        assert block.use_shortcut == shortcut
        if shortcut:
            torch.testing.assert_close(y, x)
        else:
            assert y.shape == (2, out_ch, 8 // stride, 8 // stride) and not y.any()


def test_no_attention_layers_for_none():
    assert not any(isinstance(m, ATTENTION_CLASSES) for m in MobileNetV2(attention="none").modules())


@pytest.mark.parametrize("name", ["se", "cbam", "ca"])
def test_attention_sits_after_depthwise_on_hidden_channels(name):
    """The attention input is the depthwise output: hidden channels, already at the block's output size."""
    torch.manual_seed(0)
    model = MobileNetV2(attention=name).eval()
    seen = []
    for block in _blocks(model)[1:]:
        block.attention.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[1:])))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert seen == [(h, s, s) for h, s in zip(HIDDEN_HALF, SIZES[1:])]
    block = _blocks(model)[3]
    assert [name for name, _ in block.named_children()] == ["expand", "depthwise", "attention", "project"]
    assert block.depthwise[0].groups == block.hidden_channels


def _closed_form_none(blocks, stem=16, last=1280, num_classes=10, in_channels=3) -> int:
    total = in_channels * 9 * stem + 2 * stem
    for i, o, t in blocks:
        h = i * t
        if t != 1:
            total += i * h + 2 * h
        total += 9 * h + 2 * h + h * o + 2 * o
    total += blocks[-1][1] * last + 2 * last
    return total + last * num_classes + num_classes


def test_param_count_none_closed_form():
    assert _numel(MobileNetV2(attention="none")) == _closed_form_none(BLOCKS_HALF) == 700_490


@pytest.mark.parametrize("name", ["se", "cbam", "ca"])
@pytest.mark.parametrize("kwargs", [None, {"reduction": 8}])
def test_attention_adds_its_closed_form(name, kwargs):
    base = _numel(MobileNetV2(attention="none"))
    model = MobileNetV2(attention=name, attention_kwargs=kwargs)
    added = sum(attention_params(name, h, **(kwargs or {})) for h in HIDDEN_HALF)
    assert _numel(model) - base == added > 0


def test_imagenet_configuration_matches_ca_paper_param_counts():
    """Width 1.0 with 1000 classes: 3.50M (torchvision's 3,504,872) and the CA paper's 3.89M (SE, CBAM at
    r = 24) and 3.95M (CA at r = 32), rounded as the paper rounds them. Strides do not change the count."""
    counts = {name: _numel(MobileNetV2(num_classes=1000, width_mult=1.0, attention=name)) for name in NAMES}
    assert counts["none"] == 3_504_872
    rounded = {name: round(c / 1e6, 2) for name, c in counts.items()}
    assert rounded == {"none": 3.5, "se": 3.89, "cbam": 3.89, "ca": 3.95}


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = MobileNetV2(attention=name).train()
    x = torch.randn(4, 3, 32, 32)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        if pname.endswith("attention.shared.bias"):
            continue   # CA's conv bias feeds a BatchNorm: zero gradient in training mode by construction
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_construction(name):
    x = torch.randn(2, 3, 32, 32)
    outputs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MobileNetV2(attention=name).eval()
        with torch.no_grad():
            outputs.append(model(x))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_width_and_last_conv():
    assert MobileNetV2(width_mult=1.0).feature_dim == 1280
    assert MobileNetV2(width_mult=0.35).feature_dim == 1280
    assert MobileNetV2(width_mult=1.4).feature_dim == 1792


def test_unknown_attention_raises():
    with pytest.raises(ValueError, match="bogus"):
        MobileNetV2(attention="bogus")
    with pytest.raises(ValueError, match="bogus"):
        InvertedResidual(16, 16, 1, 1, attention="bogus")
    with pytest.raises(ValueError):
        InvertedResidual(16, 16, 3, 6)
