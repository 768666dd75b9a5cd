"""Task sequences: split and permuted tasks by construction; metrics on a hand-made accuracy matrix."""
import math

import pytest
import torch

from lib.continual import average_accuracy, backward_transfer, forgetting, permuted_tasks, split_tasks
from lib.continual.benchmarks import pixel_permutation
from lib.data import ImageData


def _data(n=40, split="train"):
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % 10, [str(i) for i in range(10)], "toy", split)


def test_split_tasks_hold_consecutive_class_pairs_and_map_local_labels():
    tasks = split_tasks(_data(), _data(20, "test"))
    assert [t.classes for t in tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    for t in tasks:
        assert set(t.train.labels.tolist()) == set(t.classes) == set(t.test.labels.tolist())
        assert len(t.train) == 8 and len(t.test) == 4
    assert torch.equal(tasks[2].local_labels(torch.tensor([4, 5, 5])), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"labels \[0, 9\] are outside task 2"):
        tasks[2].local_labels(torch.tensor([0, 4, 9]))
    with pytest.raises(ValueError, match=r"labels \[-1\] are outside task 0"):
        tasks[0].local_labels(torch.tensor([-1]))
    with pytest.raises(ValueError, match="divide"):
        split_tasks(_data(), _data(20, "test"), classes_per_task=3)


def test_permuted_tasks_apply_one_fixed_permutation_to_train_and_test():
    train, test = _data(), _data(20, "test")
    tasks = permuted_tasks(train, test, 3, seed=5)
    assert torch.equal(tasks[0].train.images, train.images)                 # identity first
    flat_train, flat_test = train.images.flatten(2), test.images.flatten(2)
    for t in tasks[1:]:
        # the permutation of task t is a function of (seed, t) and maps train and test alike
        perm = pixel_permutation(16, 5, t.index)
        assert torch.equal(t.train.images.flatten(2), flat_train[:, :, perm])
        assert torch.equal(t.test.images.flatten(2), flat_test[:, :, perm])
        assert torch.equal(t.train.labels, train.labels)
    assert not torch.equal(tasks[1].train.images, tasks[2].train.images)
    assert torch.equal(permuted_tasks(train, test, 3, seed=5)[2].test.images, tasks[2].test.images)


def test_metrics_on_a_hand_made_accuracy_matrix():
    nan = math.nan
    R = [[90.0, nan, nan],
         [70.0, 95.0, nan],
         [60.0, 85.0, 80.0]]
    assert average_accuracy(R) == pytest.approx((60 + 85 + 80) / 3)
    assert backward_transfer(R) == pytest.approx(((60 - 90) + (85 - 95)) / 2)
    assert forgetting(R) == pytest.approx(((90 - 60) + (95 - 85)) / 2)
    # a task whose best accuracy comes after it was trained: forgetting counts from the best, BWT from the diagonal
    peak = [[90.0, nan, nan],
            [95.0, 80.0, nan],
            [85.0, 70.0, 75.0]]
    assert forgetting(peak) == pytest.approx(((95 - 85) + (80 - 70)) / 2)
    assert backward_transfer(peak) == pytest.approx(((85 - 90) + (70 - 80)) / 2)
    improved = [[50.0, nan], [70.0, 90.0]]                 # later training helped task 0
    assert backward_transfer(improved) == pytest.approx(20.0) and forgetting(improved) == pytest.approx(-20.0)
    with pytest.raises(ValueError, match="NaN on or below"):
        average_accuracy([[nan, nan], [1.0, 2.0]])
    with pytest.raises(ValueError, match="square"):
        forgetting([[1.0, 2.0]])
