"""Focal loss: gamma 0 is cross-entropy exactly, a hand-computed value, the gradient of the paper's formula."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib.losses import FocalLoss, focal_loss
from tests.losses.fixed_logits import Fixed


def test_gamma_zero_is_cross_entropy_exactly():
    torch.manual_seed(0)
    logits, y = torch.randn(7, 5), torch.arange(7) % 5
    assert torch.equal(focal_loss(logits, y, 0.0), F.cross_entropy(logits, y))
    loss, out = FocalLoss(0.0)(Fixed(logits), torch.arange(7), y, 0.2)
    assert torch.equal(loss, F.cross_entropy(out, y))
    # beyond the shortcut, a vanishing gamma gives the cross-entropy to rounding
    torch.testing.assert_close(focal_loss(logits, y, 1e-12), F.cross_entropy(logits, y))


def test_two_classes_by_hand():
    logits, y = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]]), torch.tensor([0, 1])
    # p_y = 3/4 and 1/2: -(1/4)^2 log(3/4) and -(1/2)^2 log(1/2), averaged
    hand = (-(0.25 ** 2) * math.log(0.75) - (0.5 ** 2) * math.log(0.5)) / 2
    assert math.isclose(focal_loss(logits, y, 2.0).item(), hand, rel_tol=1e-6)
    assert focal_loss(logits, y, 2.0) < F.cross_entropy(logits, y)        # easy images weigh less


def test_gradient_is_that_of_the_formula_with_the_modulating_factor_in_the_graph():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 4, requires_grad=True), torch.arange(6) % 4
    loss, _ = FocalLoss(2.0)(Fixed(logits), torch.arange(6), y, 0.0)
    grad, = torch.autograd.grad(loss, logits)
    p = F.softmax(logits.detach(), 1)
    pt = p[torch.arange(6), y]
    # d/dz_j of -(1 - pt)^g log pt = [g (1 - pt)^(g-1) pt log pt - (1 - pt)^g] (onehot_j - p_j)
    factor = 2.0 * (1 - pt) * pt * pt.log() - (1 - pt) ** 2
    expected = factor[:, None] * (F.one_hot(y, 4) - p) / 6
    torch.testing.assert_close(grad, expected)
    detached = -((1 - pt) ** 2)[:, None] * (F.one_hot(y, 4) - p) / 6   # a detached factor: another gradient
    assert not torch.allclose(grad, detached)


def test_under_bf16_autocast_the_loss_is_fp32():
    logits = torch.randn(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = FocalLoss()(Fixed(logits.bfloat16()), torch.arange(4), torch.arange(4) % 3, 0.0)
    assert loss.dtype == torch.float32


@pytest.mark.parametrize("gamma", [-1.0, float("inf"), "2"])
def test_bad_gamma_is_named(gamma):
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0"):
        FocalLoss(gamma)
