"""ResNetCIFAR: depth rule, shapes, parameter count of ResNet-20 against the closed form, gradients."""
import pytest
import torch

from lib.models import ResNetCIFAR


def _closed_form(n: int, k: int = 1, classes: int = 10) -> int:
    w = [16 * k, 32 * k, 64 * k]
    conv = lambda i, o, s=3: i * o * s * s  # noqa: E731
    total = conv(3, w[0]) + 2 * w[0]
    cin = w[0]
    for out in w:
        for _ in range(n):
            total += conv(cin, out) + conv(out, out) + 4 * out
            if cin != out:
                total += conv(cin, out, 1) + 2 * out
            cin = out
    return total + cin * classes + classes


@pytest.mark.parametrize("depth,width", [(20, 1), (32, 1), (20, 2)])
def test_parameter_count_matches_closed_form(depth, width):
    model = ResNetCIFAR(depth, width=width)
    assert sum(p.numel() for p in model.parameters()) == _closed_form((depth - 2) // 6, width)


def test_resnet20_is_about_0_27m_parameters_as_in_the_paper():
    assert sum(p.numel() for p in ResNetCIFAR(20).parameters()) == pytest.approx(0.27e6, rel=0.03)


def test_shapes_features_and_gradients():
    model = ResNetCIFAR(20)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10) and model.forward_features(x).shape == (2, 64)
    model(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_depth_names_the_rule():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        ResNetCIFAR(21)
