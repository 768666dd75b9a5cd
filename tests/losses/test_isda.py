"""ISDA: λ = 0 is cross-entropy, the streaming covariance is torch.cov, the bound's algebra, gradients, schedule."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib.losses import ClassCovariance, ISDALoss, isda_logits
from lib.models import ResNetCIFAR


def _batch(n=24, classes=3, dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64), torch.arange(n) % classes


def test_streaming_covariance_equals_torch_cov_of_everything_seen():
    est = ClassCovariance(3, 5).double()
    seen_x, seen_y = [], []
    for seed, n in enumerate([7, 1, 13, 24, 2]):       # uneven batches, some classes absent from a batch
        x, y = _batch(n, seed=seed)
        x = x * (1 + seed) + seed                        # drifting features
        est.update(x, y)
        seen_x.append(x), seen_y.append(y)
    x, y = torch.cat(seen_x), torch.cat(seen_y)
    for c in range(3):
        xc = x[y == c]
        assert est.count[c] == len(xc)
        torch.testing.assert_close(est.mean[c], xc.mean(0))
        torch.testing.assert_close(est.cov[c], torch.cov(xc.t(), correction=0))


def test_lambda_zero_is_cross_entropy_exactly():
    torch.manual_seed(0)
    model = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, 0, 1])
    loss, logits = ISDALoss(model.feature_dim, 4, lambda0=0.0, epochs=3)(model, x, y, 0.9)
    assert torch.equal(loss, F.cross_entropy(logits, y))
    # the first epoch of the official schedule has λ = 0 too, whatever λ0
    loss, logits = ISDALoss(model.feature_dim, 4, lambda0=0.5, epochs=3)(model, x, y, 0.2)
    assert torch.equal(loss, F.cross_entropy(logits, y))


def test_positive_lambda_raises_the_loss_and_only_the_non_target_logits():
    torch.manual_seed(0)
    model = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    criterion = ISDALoss(model.feature_dim, 4, lambda0=0.5, schedule="step")
    criterion(model, x, y, 0.5)                          # fill the covariance estimate
    loss, logits = criterion(model, x, y, 0.5)
    assert loss > F.cross_entropy(logits, y)             # ISDA with λ > 0 must not equal CE
    aug = isda_logits(logits, model.classifier.weight, y, criterion.covariance.cov, 0.25)
    rows = torch.arange(len(y))
    torch.testing.assert_close(aug[rows, y], logits[rows, y])
    assert (aug - logits >= -1e-6).all() and (aug - logits).sum() > 0


def test_augmented_logits_match_the_quadratic_form_for_one_sample():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    cov = torch.stack([a @ a.t() + k * torch.eye(4, dtype=torch.float64) for k in range(3)])
    logits = torch.randn(1, 3, generator=g, dtype=torch.float64)
    out = isda_logits(logits, w, torch.tensor([2]), cov, 0.8)
    for j in range(3):
        d = w[j] - w[2]
        assert math.isclose(out[0, j].item(), logits[0, j].item() + 0.4 * (d @ cov[2] @ d).item(), rel_tol=1e-12)


def test_expected_ce_under_feature_noise_is_below_the_isda_bound():
    """Monte Carlo: E_noise CE(W(a + ε) + b) ≤ CE(z̃) for ε ~ N(0, λ Σ_y) (Jensen, Sec. 3.3)."""
    g = torch.Generator().manual_seed(2)
    w, b = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    cov = (a @ a.t()).expand(3, 4, 4).clone()
    feature, y, lam = torch.randn(1, 4, generator=g, dtype=torch.float64), torch.tensor([1]), 0.6
    noise = torch.distributions.MultivariateNormal(torch.zeros(4, dtype=torch.float64), lam * cov[1])
    eps = noise.sample((200_000,))
    mc = F.cross_entropy((feature + eps) @ w.t() + b, y.expand(len(eps)))
    bound = F.cross_entropy(isda_logits(feature @ w.t() + b, w, y, cov, lam), y)
    assert mc < bound


def test_gradients_reach_classifier_and_backbone_and_not_the_covariance():
    torch.manual_seed(0)
    model = ResNetCIFAR(8, num_classes=4)
    criterion = ISDALoss(model.feature_dim, 4, lambda0=1.0, schedule="step")
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    criterion(model, x, y, 0.5)
    loss, _ = criterion(model, x, y, 0.5)
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0 and model.stem[0].weight.grad.abs().sum() > 0
    assert not criterion.covariance.cov.requires_grad
    # the quadratic term alone sends a gradient to the classifier weights
    w = model.classifier.weight.detach().clone().requires_grad_()
    isda_logits(torch.zeros(8, 4), w, y, criterion.covariance.cov, 1.0).sum().backward()
    assert w.grad.abs().sum() > 0


def test_schedule_follows_the_official_code_per_epoch_or_the_paper_per_step():
    per_epoch = ISDALoss(8, 2, lambda0=0.5, epochs=4)
    assert [per_epoch.strength(p) for p in (0.0, 0.24, 0.25, 0.6, 0.99)] == [0.0, 0.0, 0.125, 0.25, 0.375]
    per_step = ISDALoss(8, 2, lambda0=0.5, schedule="step")
    assert per_step.strength(0.6) == pytest.approx(0.3)


@pytest.mark.parametrize("kwargs,message", [
    ({"schedule": "cosine", "epochs": 3}, "unknown ISDA schedule 'cosine'; accepted: epoch, step"),
    ({"epochs": None}, "needs the number of epochs"),
    ({"lambda0": -1.0, "epochs": 3}, "lambda0 must be a finite number >= 0, got -1.0"),
])
def test_bad_settings_are_refused_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ISDALoss(8, 2, **kwargs)


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        ClassCovariance(3, 5).update(torch.zeros(2, 5), torch.tensor([0, 3]))


def test_margins_are_computed_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    net = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    isda = ISDALoss(net.feature_dim, 4, lambda0=0.5, schedule="step")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        isda(net, x, y, 0.5)                       # a first update of the covariance
        loss, logits = isda(net, x, y, 0.5)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    expected = F.cross_entropy(isda_logits(logits.float(), net.classifier.weight, y, isda.covariance.cov, 0.25), y)
    assert torch.allclose(loss, expected, rtol=1e-6, atol=0)
