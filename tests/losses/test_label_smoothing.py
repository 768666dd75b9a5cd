"""Label smoothing and OLS: zero strength is cross-entropy, the spreads, the OLS matrix by hand, resume, validation."""

import pytest
import torch
import torch.nn.functional as F

from lib.losses import LabelSmoothingCE, OnlineLabelSmoothing, smoothed_targets, soft_cross_entropy
from tests.losses.fixed_logits import Fixed
from tests.losses.two_processes import one_and_two_processes


def test_spread_all_is_torch_label_smoothing_and_others_puts_one_minus_eps_on_the_label():
    torch.manual_seed(0)
    logits, y = torch.randn(7, 5), torch.tensor([0, 1, 2, 3, 4, 0, 1])
    all_ = smoothed_targets(y, 5, 0.1, "all")
    torch.testing.assert_close(soft_cross_entropy(logits, all_), F.cross_entropy(logits, y, label_smoothing=0.1))
    others = smoothed_targets(y, 5, 0.1, "others")
    torch.testing.assert_close(others.sum(1), torch.ones(7))
    assert torch.allclose(others[torch.arange(7), y], torch.full((7,), 0.9))
    assert torch.allclose(others[0, 1:], torch.full((4,), 0.025))
    assert torch.allclose(all_[0], torch.tensor([0.92, 0.02, 0.02, 0.02, 0.02]))


def test_label_smoothing_criterion_trains_on_the_spread_it_names():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    for spread in ("all", "others"):
        loss, _ = LabelSmoothingCE(0.2, spread)(Fixed(logits), torch.arange(6), y, 0.5)
        torch.testing.assert_close(loss, soft_cross_entropy(logits, smoothed_targets(y, 4, 0.2, spread)))
    a, _ = LabelSmoothingCE(0.2, "all")(Fixed(logits), torch.arange(6), y, 0.5)
    b, _ = LabelSmoothingCE(0.2, "others")(Fixed(logits), torch.arange(6), y, 0.5)
    assert not torch.isclose(a, b)


def test_zero_strength_is_cross_entropy_exactly():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    model, x = Fixed(logits), torch.arange(6)
    for spread in ("all", "others"):
        loss, _ = LabelSmoothingCE(0.0, spread)(model, x, y, 0.3)
        assert torch.equal(loss, F.cross_entropy(logits, y))
    loss, _ = OnlineLabelSmoothing(4, alpha=1.0, epochs=3)(model, x, y, 0.1)
    assert torch.equal(loss, F.cross_entropy(logits, y))


def test_ols_matrix_equals_a_hand_accumulated_one_and_rows_sum_to_one():
    logits = torch.tensor([[3.0, 0.0, 0.0],    # class 0, correct
                           [0.0, 2.0, 1.0],    # class 0, wrong (predicts 1): not counted
                           [1.0, 0.0, 0.0],    # class 0, correct
                           [0.0, 1.0, 0.0],    # class 1, correct
                           [0.0, 0.0, 5.0]])   # class 1, wrong: class 1 keeps one sample; class 2 has none
    y = torch.tensor([0, 0, 0, 1, 1])
    model, x = Fixed(logits), torch.arange(5)
    ols = OnlineLabelSmoothing(3, alpha=0.5, epochs=2)
    loss0, _ = ols(model, x, y, 0.0)
    # the official code starts from a zero matrix: the first epoch's loss is alpha * CE
    torch.testing.assert_close(loss0, 0.5 * F.cross_entropy(logits, y))
    ols(model, x[:1], y[:1], 0.49)                       # still epoch 0: row 0 gets a third sample
    p = F.softmax(logits, 1)
    expected = torch.stack([(p[0] + p[2] + p[0]) / 3, p[3], torch.full((3,), 1 / 3)])
    loss1, _ = ols(model, x, y, 0.5)                     # epoch 1 starts: S^0 is fixed from epoch 0's sums
    torch.testing.assert_close(ols.soft, expected)
    torch.testing.assert_close(ols.soft.sum(1), torch.ones(3))
    hand = 0.5 * F.cross_entropy(logits, y) - 0.5 * (expected[y] * F.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(loss1, hand)
    assert int(ols.epoch) == 1 and ols.count.sum() == 3   # epoch 1's own sums have started


def test_ols_resumes_from_its_state_dict_like_an_uninterrupted_run():
    torch.manual_seed(0)
    logits = [torch.randn(20, 4) * (1 + e) for e in range(3)]           # the network changes between epochs
    y, x = torch.arange(20) % 4, torch.arange(20)
    calls = [(e, p) for e, p in ((0, 0.0), (0, 0.2), (1, 0.4), (1, 0.6), (2, 0.7), (2, 0.9))]
    straight = OnlineLabelSmoothing(4, epochs=3)
    losses = [straight(Fixed(logits[e]), x, y, p)[0] for e, p in calls]
    first = OnlineLabelSmoothing(4, epochs=3)
    for e, p in calls[:3]:                                               # interrupted inside epoch 1
        first(Fixed(logits[e]), x, y, p)
    resumed = OnlineLabelSmoothing(4, epochs=3)
    resumed.load_state_dict(first.state_dict())
    resumed_losses = [resumed(Fixed(logits[e]), x, y, p)[0] for e, p in calls[3:]]
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value)
    torch.testing.assert_close(torch.stack(resumed_losses), torch.stack(losses[3:]))
    assert int(resumed.epoch) == 2


def test_ols_epoch_boundaries_follow_fits_progress_formula_exactly():
    """fit passes progress = (e·S + s) / (E·S); floor(progress · E) alone falls one epoch short for some (E, S)."""
    epochs, steps = 22, 7
    ols = OnlineLabelSmoothing(3, epochs=epochs)
    logits, y = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    for e in range(epochs):
        for s in range(steps):
            ols(Fixed(logits), torch.tensor([0]), y, (e * steps + s) / (epochs * steps))
            assert int(ols.epoch) == e, f"epoch {e}, step {s}"


def test_ols_refuses_to_skip_epochs_without_its_state():
    ols = OnlineLabelSmoothing(3, epochs=4)
    with pytest.raises(RuntimeError, match="holds the statistics of epoch 0 but is called in epoch 2"):
        ols(Fixed(torch.zeros(1, 3)), torch.tensor([0]), torch.tensor([0]), 0.5)


def test_ols_gradient_matches_the_soft_target_formula():
    torch.manual_seed(0)
    logits = torch.randn(8, 3, requires_grad=True)
    y = torch.arange(8) % 3
    ols = OnlineLabelSmoothing(3, alpha=0.3, epochs=2)
    ols.soft.copy_(torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]))
    loss, _ = ols(Fixed(logits), torch.arange(8), y, 0.1)
    loss.backward()
    target = 0.3 * F.one_hot(y, 3) + 0.7 * ols.soft[y]
    torch.testing.assert_close(logits.grad, (F.softmax(logits.detach(), 1) - target) / 8)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_classes=1, epochs=2), "num_classes"), (dict(num_classes=3, alpha=1.5, epochs=2), "alpha"),
    (dict(num_classes=3, epochs=0), "epochs")])
def test_ols_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OnlineLabelSmoothing(**kwargs)


def test_label_smoothing_rejects_bad_arguments():
    with pytest.raises(ValueError, match="spread"):
        LabelSmoothingCE(0.1, "uniform")
    with pytest.raises(ValueError, match="epsilon"):
        LabelSmoothingCE(1.2)


def test_ols_under_two_processes_equals_one_process_and_resumes_from_rank_zeros_checkpoint(tmp_path):
    one, two = one_and_two_processes("ols_distributed_worker.py", tmp_path, 29541)
    torch.testing.assert_close(torch.tensor(two["straight"]), torch.tensor(one["straight"]))
    torch.testing.assert_close(torch.tensor(two["resumed"]), torch.tensor(one["straight"]))
