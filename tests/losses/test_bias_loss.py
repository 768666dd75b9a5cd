"""Bias loss: zero strength is cross-entropy (also through fit), the weights and both normalisations by hand, no
gradient through the diversity, resume, two processes, the diversity split, validation."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.data import ImageData
from lib.losses import BiasLoss, bias_loss, bias_weights, feature_diversity, normalised_diversity, split_accuracy
from lib.models import ResNetCIFAR
from lib.train import TrainConfig, fit, seed_everything
from tests.losses.two_processes import one_and_two_processes


class Stand(nn.Module):
    """A stand-in network: ``stages`` returns given feature maps (rows ``x``), the head pools them to logits."""

    def __init__(self, features, classes=3):
        super().__init__()
        self.stages = Rows(features)
        self.classifier = nn.Linear(features.shape[1], classes)

    def forward(self, x):
        return self.classifier(self.stages(x).mean(dim=(2, 3)))


class Rows(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.features = features

    def forward(self, x):
        return self.features[x]


def test_feature_diversity_is_the_unbiased_variance_of_all_values_of_each_image():
    f = torch.tensor([[[[0.0, 2.0]], [[4.0, 6.0]]],        # values 0, 2, 4, 6: mean 3, sum of squares 20, / 3
                      [[[1.0, 1.0]], [[1.0, 1.0]]]])        # constant: 0
    torch.testing.assert_close(feature_diversity(f), torch.tensor([20 / 3, 0.0]))
    torch.testing.assert_close(feature_diversity(f.to(memory_format=torch.channels_last)), torch.tensor([20 / 3, 0.0]))
    assert feature_diversity(f.bfloat16()).dtype == torch.float32


def test_weights_and_loss_equal_a_hand_computation_in_both_normalisations():
    v = torch.tensor([1.0, 3.0, 5.0])
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([0, 0, 1])
    ce = [math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(1.0)), math.log(2.0)]
    local = normalised_diversity(v)                          # (v - 1) / (5 - 1)
    torch.testing.assert_close(local, torch.tensor([0.0, 0.5, 1.0]))
    glob = normalised_diversity(v, floor=0.2)                # a smaller running minimum: (v - 0.2) / 4
    torch.testing.assert_close(glob, torch.tensor([0.2, 0.7, 1.2]))
    for vhat in (local, glob):
        w = [math.exp(0.3 * float(t)) - 0.3 for t in vhat]
        hand = sum(wi * ci for wi, ci in zip(w, ce)) / 3
        assert math.isclose(bias_loss(logits, y, vhat, 0.3, 0.3).item(), hand, rel_tol=1e-6)
        torch.testing.assert_close(bias_weights(vhat, 0.3, 0.3), torch.tensor(w))
    # the first official release weighted by exp(0.3 v) - 0.7: beta = 0.7 here
    torch.testing.assert_close(bias_weights(local, 0.3, 0.7), torch.exp(0.3 * local) - 0.7)


def test_zero_strength_is_cross_entropy_exactly():
    torch.manual_seed(0)
    model, x, y = ResNetCIFAR(8), torch.randn(6, 3, 32, 32), torch.arange(6) % 10
    loss, logits = BiasLoss(0.0, 0.0)(model, x, y, 0.3)
    assert torch.equal(loss, F.cross_entropy(logits, y))
    assert torch.equal(bias_loss(logits, y, torch.rand(6), 0.0, 0.0), F.cross_entropy(logits, y))
    # beyond the shortcut: weights of exactly 1 give the mean cross-entropy (to rounding)
    torch.testing.assert_close(bias_loss(logits, y, torch.rand(6), 1e-30, 0.0), F.cross_entropy(logits, y))


def _tiny(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 10,
                     [str(i) for i in range(10)], "synthetic", "train")


def test_zero_strength_trains_bit_identically_to_fits_cross_entropy():
    train, test = _tiny(), _tiny(32, seed=1)
    config = TrainConfig(epochs=2, batch_size=16, channels_last=True, precision="bf16")
    histories = []
    for criterion in (None, BiasLoss(0.0, 0.0)):
        seed_everything(0, 1)
        result = fit(ResNetCIFAR(8), train, test, config, seed=0, criterion=criterion, progress=False)
        histories.append([(h["train_loss"], h["test_acc"], h["test_loss"]) for h in result["history"]])
    assert histories[0] == histories[1]


def test_bias_loss_criterion_reads_the_last_stage_and_weights_by_its_variance():
    torch.manual_seed(0)
    model, x, y = ResNetCIFAR(8), torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    criterion = BiasLoss(0.3, 0.3, "local")
    loss, logits = criterion(model, x, y, 0.0)
    v = normalised_diversity(feature_diversity(model.stages(model.stem(x))))
    torch.testing.assert_close(loss, bias_loss(logits, y, v, 0.3, 0.3))
    assert not torch.allclose(loss, F.cross_entropy(logits, y))


def test_no_gradient_flows_through_the_diversity():
    torch.manual_seed(0)
    features = torch.randn(6, 4, 2, 2) * torch.arange(1, 7.0)[:, None, None, None]
    model, x, y = Stand(features.clone().requires_grad_()), torch.arange(6), torch.arange(6) % 3
    loss, logits = BiasLoss(0.3, 0.3, "local")(model, x, y, 0.0)
    loss.backward()
    weights = bias_weights(normalised_diversity(feature_diversity(features)), 0.3, 0.3)
    # d loss / d logits = w_i (softmax - onehot) / N: the weights act as constants
    probs = F.softmax(logits.detach(), 1)
    grad_logits = weights[:, None] * (probs - F.one_hot(y, 3)) / 6
    leaf = features.clone().requires_grad_()
    expected, = torch.autograd.grad(model.classifier(leaf.mean(dim=(2, 3))), leaf, grad_logits)
    torch.testing.assert_close(model.stages.features.grad, expected)
    # with the diversity left in the graph the gradient would differ: the check can fail
    live = features.clone().requires_grad_()
    v = normalised_diversity(feature_diversity(live))
    logits2 = model.classifier(live.mean(dim=(2, 3)))
    ((torch.exp(0.3 * v) - 0.3) * F.cross_entropy(logits2, y, reduction="none")).mean().backward()
    assert not torch.allclose(live.grad, expected)


def test_global_normalisation_keeps_the_smallest_variance_of_every_batch_and_resumes():
    first = torch.ones(3, 1, 1, 2) * torch.tensor([0.0, 1.0])          # variance 0.5 each
    scale = torch.tensor([1.0, 2.0, 4.0])[:, None, None, None]
    batches = [first * scale, first * scale * 2, first * scale / 2]   # variances (0.5, 2, 8), x4, x1/4
    y, x = torch.tensor([0, 1, 2]), torch.arange(3)
    torch.manual_seed(0)
    models = [Stand(f) for f in batches]
    straight = BiasLoss()
    losses = [straight(m, x, y, 0.0)[0] for m in models]
    # batch 2: variances (2, 8, 32), running minimum 0.5 from batch 1: v = (var - 0.5) / 30
    v = (torch.tensor([2.0, 8.0, 32.0]) - 0.5) / 30
    torch.testing.assert_close(losses[1], bias_loss(models[1](x), y, v, 0.3, 0.3))
    assert float(straight.running_min) == pytest.approx(0.125)       # batch 3's smallest, 0.5 / 4
    first_half = BiasLoss()
    first_half(models[0], x, y, 0.0)
    resumed = BiasLoss()
    resumed.load_state_dict(first_half.state_dict())
    again = [resumed(m, x, y, 0.0)[0] for m in models[1:]]
    torch.testing.assert_close(torch.stack(again), torch.stack(losses[1:]))


def test_a_batch_of_equal_variances_weighs_every_image_one_minus_beta():
    f = torch.randn(1, 4, 2, 2)
    y = torch.tensor([1])
    model = Stand(f)
    loss, logits = BiasLoss(0.3, 0.3)(model, torch.arange(1), y, 0.0)
    torch.testing.assert_close(loss, 0.7 * F.cross_entropy(logits, y))


def test_under_bf16_autocast_the_loss_is_fp32_and_finite():
    torch.manual_seed(0)
    model, x, y = ResNetCIFAR(8), torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = BiasLoss()(model.to(memory_format=torch.channels_last),
                             x.contiguous(memory_format=torch.channels_last), y, 0.0)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_split_accuracy_on_a_hand_example_with_ties_in_order():
    diversity = torch.tensor([5.0, 1.0, 3.0, 1.0, 9.0, 7.0, 3.0])
    correct = torch.tensor([True, False, True, True, True, False, False])
    # floor(7 / 3) = 2; sorted (stable): 1 (#1), 1 (#3), 3 (#2), 3 (#6), 5 (#0), 7 (#5), 9 (#4)
    low, high = split_accuracy(diversity, correct)
    assert (low, high) == (50.0, 50.0)                     # #1 wrong, #3 right | #5 wrong, #4 right
    low, high = split_accuracy(diversity, correct, fraction=0.43)   # 3 images: #1, #3, #2 | #0, #5, #4
    assert low == pytest.approx(200 / 3) and high == pytest.approx(200 / 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(alpha=-0.1), "alpha must be a finite number >= 0, got -0.1"),
    (dict(alpha=float("nan")), "alpha"),
    (dict(beta=1.0), "beta must be a finite number < 1"),
    (dict(normalisation="batch"), "unknown normalisation 'batch'; accepted: global, local"),
    (dict(feature_module=""), "feature_module")])
def test_bad_arguments_name_the_value_and_the_accepted_ones(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BiasLoss(**kwargs)


def test_a_model_without_the_feature_module_is_named_with_its_children():
    with pytest.raises(AttributeError, match="'layer4'.*ResNetCIFAR.*stem, stages, classifier"):
        BiasLoss(feature_module="layer4")(ResNetCIFAR(8), torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), 0.0)


def test_split_accuracy_rejects_a_fraction_that_selects_nothing():
    with pytest.raises(ValueError, match="fraction"):
        split_accuracy(torch.rand(2), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="fraction"):
        split_accuracy(torch.rand(9), torch.ones(9, dtype=torch.bool), fraction=0.6)


def test_bias_loss_under_two_processes_equals_one_process(tmp_path):
    one, two = one_and_two_processes("bias_loss_distributed_worker.py", tmp_path, 29543)
    torch.testing.assert_close(torch.tensor(two["losses"]), torch.tensor(one["losses"]))
    assert two["running_min"] == pytest.approx(one["running_min"])
