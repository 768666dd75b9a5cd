"""Gradient reversal, DANN's schedule and loss, the black-box source: identities and hand-computed values."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib.nn import BlackBoxPredictor, DomainDiscriminator, GradientReversal, dann_coefficient, domain_loss, grad_reverse


def test_gradient_reversal_is_identity_forward_and_negated_scaled_gradient_backward():
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * w)
    x.grad = None
    (GradientReversal(0.0)(x) * w).sum().backward()          # zero strength: no gradient reaches the features
    assert torch.equal(x.grad, torch.zeros_like(w))


def test_reversal_flips_the_features_gradient_but_not_the_discriminators():
    torch.manual_seed(0)
    features = torch.randn(8, 5, requires_grad=True)
    disc = DomainDiscriminator(5, hidden=16, dropout=0.0)
    params = list(disc.parameters())
    plain = torch.autograd.grad(domain_loss(disc(features[:4]), disc(features[4:])), [features] + params)
    reversed_ = torch.autograd.grad(domain_loss(disc(grad_reverse(features[:4], 0.5)),
                                                disc(grad_reverse(features[4:], 0.5))), [features] + params)
    torch.testing.assert_close(reversed_[0], -0.5 * plain[0])           # G_f ascends L_d, weighted by lambda
    for got, expected in zip(reversed_[1:], plain[1:]):                 # G_d descends it unchanged
        torch.testing.assert_close(got, expected)


def test_dann_coefficient_hand_values():
    assert dann_coefficient(0.0) == 0.0
    assert math.isclose(dann_coefficient(1.0), 2 / (1 + math.exp(-10)) - 1)
    assert math.isclose(dann_coefficient(0.1), 2 / (1 + math.exp(-1)) - 1)      # 0.4621
    with pytest.raises(ValueError, match="progress"):
        dann_coefficient(1.5)


def test_domain_loss_is_binary_cross_entropy_with_target_as_one():
    s, t = torch.tensor([0.0, 2.0]), torch.tensor([-1.0])
    expected = (math.log(2) + math.log(1 + math.exp(2)) + math.log(1 + math.exp(1))) / 3
    torch.testing.assert_close(domain_loss(s, t), torch.tensor(expected))


def test_black_box_exposes_only_detached_probabilities_in_eval_mode():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3)).train()
    box = BlackBoxPredictor(model)
    x = torch.randn(5, 4)
    p = box(x)
    torch.testing.assert_close(p.sum(1), torch.ones(5))
    assert not p.requires_grad and not model.training and box.queries == 5
    torch.testing.assert_close(p, F.softmax(model.eval()(x), 1))
    assert not isinstance(box, torch.nn.Module) and not hasattr(box, "parameters")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="reversal coefficient"):
        grad_reverse(torch.zeros(1), -1.0)
    with pytest.raises(ValueError, match="dropout"):
        DomainDiscriminator(4, dropout=1.0)
