"""Long-tailed subsets, shot groups and the samplers of Eq. (1)/(2) (lib/data/longtail.py)."""
import math

import pytest
import torch

from lib.data.images import ImageData
from lib.data.longtail import (
    ClassBalancedSampler,
    InstanceBalancedSampler,
    PowerSampler,
    ProgressivelyBalancedSampler,
    SquareRootSampler,
    create_sampler,
    group_accuracy,
    longtail_counts,
    longtail_indices,
    longtail_subset,
    shot_groups,
    unused_balanced_indices,
)


def balanced_labels(per_class=600, classes=10):
    return torch.arange(classes).repeat_interleave(per_class)


@pytest.mark.parametrize("n_max,imbalance", [(500, 100), (500, 10), (5000, 100), (250, 50), (100, 1)])
def test_counts_follow_the_exponential_profile(n_max, imbalance):
    counts = longtail_counts(10, n_max, imbalance)
    assert counts[0] == n_max
    assert counts[-1] == round(n_max / imbalance)
    for c, n in enumerate(counts):
        assert n == math.floor(n_max * imbalance ** (-c / 9) + 0.5)
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_cifar10_lt_published_size():
    # CIFAR-10-LT of Cao et al. / Cui et al.: 12,406 images at imbalance 100 (they truncate; we round, +0..C)
    assert abs(sum(longtail_counts(10, 5000, 100)) - 12406) <= 10


def test_subset_has_the_profile_is_deterministic_and_nested():
    labels = balanced_labels()
    idx = longtail_indices(labels, 500, 100, seed=3)
    assert torch.bincount(labels[idx]).tolist() == longtail_counts(10, 500, 100)
    assert torch.equal(idx, longtail_indices(labels, 500, 100, seed=3))
    assert not torch.equal(idx, longtail_indices(labels, 500, 100, seed=4))
    smaller = longtail_indices(labels, 250, 100, seed=3)
    steeper = longtail_indices(labels, 500, 200, seed=3)
    assert set(smaller.tolist()) <= set(idx.tolist())
    assert set(steeper.tolist()) <= set(idx.tolist())


def test_order_puts_the_head_where_asked():
    labels = balanced_labels(per_class=50, classes=3)
    idx = longtail_indices(labels, 40, 4, order=[2, 0, 1])
    assert torch.bincount(labels[idx]).tolist() == [20, 10, 40]


def test_image_data_subset_and_unused_validation_rows():
    labels = balanced_labels(per_class=30, classes=4)
    data = ImageData(torch.zeros(len(labels), 3, 4, 4, dtype=torch.uint8), labels, list("abcd"), "toy", "train")
    lt = longtail_subset(data, 20, 10)
    assert torch.bincount(lt.labels).tolist() == longtail_counts(4, 20, 10)
    used = longtail_indices(labels, 20, 10)
    val = unused_balanced_indices(labels, used, 5)
    assert torch.bincount(labels[val]).tolist() == [5] * 4
    assert not set(val.tolist()) & set(used.tolist())
    with pytest.raises(ValueError, match="fewer than per_class=11"):
        unused_balanced_indices(labels, used, 11)


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_max=0, imbalance=10), "n_max must be a positive integer, got 0"),
    (dict(n_max=100, imbalance=0.5), "imbalance must be a number >= 1"),
    (dict(n_max=700, imbalance=10), "class 0 has 600 examples, fewer than the 700"),
])
def test_bad_profiles_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        longtail_indices(balanced_labels(), **kwargs)


def test_shot_groups():
    counts = longtail_counts(10, 500, 100)
    assert shot_groups(counts) == {"many": [0, 1, 2], "medium": [3, 4, 5, 6], "few": [7, 8, 9]}
    g = shot_groups(torch.tensor([500, 150, 100, 60, 20, 19, 5]), rule="thresholds")
    assert g == {"many": [0, 1], "medium": [2, 3, 4], "few": [5, 6]}
    with pytest.raises(ValueError, match="unknown shot-group rule 'halves'; accepted: thirds, thresholds"):
        shot_groups(counts, rule="halves")


def test_group_accuracy_is_mean_per_class():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 1, 0, 0, 0, 2])
    acc = group_accuracy(preds, labels, {"many": [0], "medium": [1], "few": [2]}, 3)
    assert acc == pytest.approx({"acc": (50 + 100 + 25) / 3, "many_acc": 50, "medium_acc": 100, "few_acc": 25})


def empirical(sampler, labels, draws=200):
    counts = torch.zeros(int(labels.max()) + 1, dtype=torch.float64)
    for epoch in range(draws):
        counts += torch.bincount(labels[sampler(torch.Generator().manual_seed(epoch), 0)], minlength=len(counts))
    return counts


@pytest.mark.parametrize("q", [0.0, 0.5, 1.0, 0.25])
def test_sampler_class_frequencies_converge_to_eq1(q):
    labels = balanced_labels()[longtail_indices(balanced_labels(), 500, 100)]
    sampler = PowerSampler(labels, q)
    n = torch.bincount(labels).double()
    expected_p = n ** q / (n ** q).sum()
    observed = empirical(sampler, labels)
    total = observed.sum()
    chi2 = ((observed - total * expected_p) ** 2 / (total * expected_p)).sum().item()
    assert chi2 < 27.9   # chi-square, 9 degrees of freedom, p = 0.001
    assert torch.allclose(sampler.class_probabilities(), expected_p)


def test_named_samplers_and_instance_balanced_is_q1():
    labels = balanced_labels()[longtail_indices(balanced_labels(), 500, 100)]
    n = torch.bincount(labels).double()
    assert torch.allclose(ClassBalancedSampler(labels).class_probabilities(), torch.full((10,), 0.1, dtype=torch.float64))
    assert torch.allclose(SquareRootSampler(labels).class_probabilities(), n.sqrt() / n.sqrt().sum())
    ib = InstanceBalancedSampler(labels)
    assert torch.allclose(ib.class_probabilities(), n / n.sum())
    order = ib(torch.Generator().manual_seed(0), 0)
    assert sorted(order.tolist()) == list(range(len(labels)))   # a permutation: exactly n_j / N per class
    assert torch.equal(order, ib(torch.Generator().manual_seed(0), 0))
    assert torch.bincount(labels[PowerSampler(labels, 1.0)(torch.Generator().manual_seed(0), 0)]).double() \
        .div(len(labels)).sub(n / n.sum()).abs().max() < 0.05


def test_sampler_protocol_length_and_determinism():
    labels = balanced_labels(per_class=20, classes=3)
    s = create_sampler("cb", labels, num_samples=77)
    assert len(s) == 77
    a, b = s(torch.Generator().manual_seed(5), 1), s(torch.Generator().manual_seed(5), 1)
    assert a.dtype == torch.long and a.shape == (77,) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() < len(labels)
    with pytest.raises(ValueError, match="unknown sampler 'uniform'; accepted: ib, cb, sr, pb"):
        create_sampler("uniform", labels)
    with pytest.raises(ValueError, match=r"q must be a number in \[0, 1\]"):
        PowerSampler(labels, 2)


def test_progressively_balanced_interpolates_eq2():
    labels = balanced_labels()[longtail_indices(balanced_labels(), 500, 100)]
    pb = ProgressivelyBalancedSampler(labels, epochs=4)
    n = torch.bincount(labels).double()
    assert torch.allclose(pb.class_probabilities(0), n / n.sum())
    assert torch.allclose(pb.class_probabilities(2), 0.5 * n / n.sum() + 0.05)
    with pytest.raises(ValueError, match="epoch must be in"):
        pb.class_probabilities(4)
