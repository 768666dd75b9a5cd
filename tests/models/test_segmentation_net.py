"""lib.models.segmentation: SPMs inside the encoder's blocks (the official placement), stacked context modules
in the head, their parameter counts by hand, reductions to the plain network, shapes and argument errors."""
import pytest
import torch

from lib.models.segmentation import (BACKBONE_SPM, DilatedBlock, SegmentationNet, StripPooledBlock,
                                     spm_placement)
from lib.nn.strip_pooling import mpm_params, spm_params

SMALL = {"widths": (8, 8, 16, 16), "blocks": (1, 2, 2), "head_channels": 8, "mpm_bins": (3, 2)}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_official_placement_of_resnet50_and_101():
    # read from the official models/resnet.py (_make_layer): the last block of layer1-3, every block of layer4
    r50 = spm_placement((3, 4, 6, 3), "official")
    assert r50 == [[False, False, True], [False, False, False, True], [False] * 5 + [True], [True, True, True]]
    r101 = spm_placement((3, 4, 23, 3), "official")
    assert sum(map(sum, r101)) == sum(map(sum, r50)) == 6


@pytest.mark.parametrize("blocks, backbone_spm, expected", [
    ((1, 1, 2), "none", [[False], [False], [False, False]]),
    ((1, 1, 2), "last-stage", [[False], [False], [True, True]]),
    ((1, 1, 2), "official", [[True], [True], [True, True]]),
    ((2, 3, 2), "official", [[False, True], [False, False, True], [True, True]]),
    ((2, 3, 2), "last-stage", [[False, False], [False, False, False], [True, True]]),
])
def test_spm_placement(blocks, backbone_spm, expected):
    assert spm_placement(blocks, backbone_spm) == expected
    net = SegmentationNet(5, widths=(8, 8, 16, 16), blocks=blocks, head_channels=8, backbone_spm=backbone_spm)
    got = [isinstance(b, StripPooledBlock) for b in net.encoder]
    assert got == [flag for stage in expected for flag in stage]


def test_default_network_has_no_spm_and_one_plain_context():
    net = SegmentationNet(11, "mpm")
    assert not any(isinstance(b, StripPooledBlock) for b in net.encoder)
    assert not isinstance(net.context, torch.nn.Sequential)
    assert net.backbone_spm == "none" and net.num_contexts == 1


def test_parameter_counts_by_hand_at_the_book_widths():
    base = n_params(SegmentationNet(11))
    # SPM at width C: two strip convs 3·C·C + two BN 2·C each, the 1×1 output conv C·C + C  ->  7C² + 5C
    spm32, spm64 = 7 * 32 ** 2 + 5 * 32, 7 * 64 ** 2 + 5 * 64
    assert (spm32, spm64) == (spm_params(32), spm_params(64)) == (7328, 28992)
    assert n_params(SegmentationNet(11, backbone_spm="last-stage")) - base == 2 * spm64 == 57984
    # official with blocks (1, 1, 2): the stage-1 block (32 channels), the stage-2 block and both stage-3 ones (64)
    assert n_params(SegmentationNet(11, backbone_spm="official")) - base == spm32 + 3 * spm64 == 94304
    # MPM at C = 64, m = 16, bins (4, 2): reductions 2(64·16 + 32), five 3×3 convs 5(9·256 + 32),
    # two strip convs 2(3·256 + 32), fuse 2·16·64 + 2·64
    mpm = 2 * (64 * 16 + 32) + 5 * (9 * 256 + 32) + 2 * (3 * 256 + 32) + (2 * 16 * 64 + 2 * 64)
    assert mpm == mpm_params(64, (4, 2)) == 17568
    assert n_params(SegmentationNet(11, "mpm")) - base == mpm
    assert n_params(SegmentationNet(11, "mpm", num_contexts=2)) - base == 2 * mpm
    assert n_params(SegmentationNet(11, "mpm", num_contexts=2, backbone_spm="official")) - base == 2 * mpm + 94304


def test_strip_pooled_block_with_a_zero_output_conv_is_the_plain_block_with_rescaled_second_conv():
    torch.manual_seed(0)
    spm_block = StripPooledBlock(8, 16, stride=2).eval()
    plain = DilatedBlock(8, 16, stride=2).eval()
    state = {k: v for k, v in spm_block.state_dict().items() if not k.startswith("spm.")}
    plain.load_state_dict(state)
    with torch.no_grad():
        spm_block.spm.out.weight.zero_()            # the gate becomes the constant sigmoid(bias) per channel
        scale = torch.sigmoid(spm_block.spm.out.bias)
        plain.conv2.weight.mul_(scale[None, :, None, None])
    x = torch.randn(2, 8, 10, 12)
    assert torch.allclose(spm_block(x), plain(x), atol=1e-5)


def test_spm_gates_the_residual_branch_only():
    torch.manual_seed(1)
    block = StripPooledBlock(8, 8).eval()           # identity shortcut
    with torch.no_grad():
        block.spm.out.weight.zero_()
        block.spm.out.bias.fill_(-1e4)              # gate = 0: the residual branch is switched off
    x = torch.randn(2, 8, 6, 7)
    expected = torch.relu(block.bn2(block.conv2(torch.zeros_like(x))) + x)
    assert torch.allclose(block(x), expected, atol=1e-6)


@pytest.mark.parametrize("backbone_spm", ["last-stage", "official"])
def test_network_with_zeroed_spm_output_convs_is_the_plain_network(backbone_spm):
    torch.manual_seed(2)
    net = SegmentationNet(5, "mpm", num_contexts=2, backbone_spm=backbone_spm, **SMALL).eval()
    plain = SegmentationNet(5, "mpm", num_contexts=2, **SMALL).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if ".spm." not in k})
    with torch.no_grad():
        for block, twin in zip(net.encoder, plain.encoder):
            if isinstance(block, StripPooledBlock):
                block.spm.out.weight.zero_()
                twin.conv2.weight.mul_(torch.sigmoid(block.spm.out.bias)[None, :, None, None])
    x = torch.randn(2, 3, 24, 32)
    assert torch.allclose(net(x), plain(x), atol=1e-5)


def test_two_mpms_with_zero_fusing_bn_are_the_base_fcn():
    torch.manual_seed(3)
    base = SegmentationNet(5, "none", **SMALL).eval()
    two = SegmentationNet(5, "mpm", num_contexts=2, **SMALL).eval()
    two.load_state_dict({k: v for k, v in base.state_dict().items()}, strict=False)
    with torch.no_grad():
        for mpm in two.context:
            mpm.fuse[1].weight.zero_()
    x = torch.randn(2, 3, 24, 32)
    assert torch.allclose(two(x), base(x), atol=1e-5)


@pytest.mark.parametrize("context, num_contexts, backbone_spm", [
    ("none", 1, "official"), ("ppm", 1, "last-stage"), ("spm", 2, "official"), ("mpm", 3, "official"),
])
def test_output_shape_and_gradients(context, num_contexts, backbone_spm):
    torch.manual_seed(4)
    net = SegmentationNet(7, context, num_contexts=num_contexts, backbone_spm=backbone_spm, **SMALL)
    out = net(torch.randn(2, 3, 24, 32))
    assert out.shape == (2, 7, 24, 32)
    assert net.features(torch.randn(1, 3, 24, 32)).shape == (1, 16, 3, 4)
    out.logsumexp(1).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_bad_arguments_name_the_value_and_the_accepted_ones():
    with pytest.raises(ValueError, match=r"'all'.*accepted: none, last-stage, official"):
        SegmentationNet(11, backbone_spm="all")
    with pytest.raises(ValueError, match=r"accepted: none, last-stage, official"):
        spm_placement((1, 1, 2), "every")
    assert BACKBONE_SPM == ("none", "last-stage", "official")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=rf"num_contexts must be a positive integer, got {bad!r}"):
            SegmentationNet(11, "mpm", num_contexts=bad)
    for context in ("none", "ppm"):
        with pytest.raises(ValueError, match=rf"context '{context}' accepts only 1; stackable: spm, mpm"):
            SegmentationNet(11, context, num_contexts=2)
