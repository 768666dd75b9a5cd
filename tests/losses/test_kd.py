"""KD and Tf-KD: hand-computed values, zero strength, LS = KD with a virtual teacher, the official reductions."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib.losses import KDCriterion, TfKDRegCriterion, kd_loss, smoothed_targets, soft_cross_entropy, tfkd_reg_loss, virtual_teacher


def test_kd_equals_a_hand_computed_value():
    s, t, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0])
    T, alpha = 2.0, 0.25
    ps, pt = F.softmax(s / T, 1)[0], F.softmax(t / T, 1)[0]
    kl = sum(pt[k] * math.log(pt[k] / ps[k]) for k in range(2))
    ce = -math.log(F.softmax(s, 1)[0, 0])
    expected = (1 - alpha) * ce + alpha * T * T * kl
    torch.testing.assert_close(kd_loss(s, t, y, alpha, T, kl_reduction="batchmean"), torch.tensor(float(expected)))
    # the official nn.KLDivLoss() default averages over the K = 2 classes as well
    torch.testing.assert_close(kd_loss(s, t, y, alpha, T), torch.tensor(float((1 - alpha) * ce + alpha * T * T * kl / 2)))


@pytest.mark.filterwarnings("ignore:reduction. .mean. divides")
def test_official_reduction_is_torch_kldivloss_mean():
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 5), torch.randn(6, 5), torch.arange(6) % 5
    T = 4.0
    reference = torch.nn.KLDivLoss(reduction="mean")(F.log_softmax(s / T, 1), F.softmax(t / T, 1)) * T * T
    torch.testing.assert_close(kd_loss(s, t, y, 1.0, T), reference)
    reference = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
    torch.testing.assert_close(kd_loss(s, t, y, 1.0, T, kl_reduction="batchmean"), reference)


def test_zero_strength_is_cross_entropy_exactly():
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 5), torch.randn(6, 5), torch.arange(6) % 5
    assert torch.equal(kd_loss(s, t, y, 0.0, 4.0), F.cross_entropy(s, y))
    assert torch.equal(tfkd_reg_loss(s, y, alpha=0.0), F.cross_entropy(s, y))


def test_label_smoothing_is_kd_with_a_virtual_teacher():
    """Sec. 3: at T = 1 the virtual teacher p^d with a = 1 − ε is label smoothing spread over the other classes;
    the KD loss with it differs from the LS loss only by the teacher's entropy, a constant."""
    torch.manual_seed(0)
    s, y = torch.randn(9, 6, requires_grad=True), torch.arange(9) % 6
    eps = 0.1
    teacher = virtual_teacher(y, 6, 1 - eps)
    torch.testing.assert_close(teacher, smoothed_targets(y, 6, eps, "others"))
    ls = soft_cross_entropy(s, teacher)
    kd = tfkd_reg_loss(s, y, alpha=1.0, temperature=None, correct_prob=1 - eps, kl_reduction="batchmean")
    entropy = -(teacher * teacher.log()).sum(1).mean()
    torch.testing.assert_close(ls - kd, entropy)
    g_ls, = torch.autograd.grad(ls, s)
    g_kd, = torch.autograd.grad(kd, s)
    torch.testing.assert_close(g_ls, g_kd)


def test_official_tfkd_reg_softens_the_virtual_teacher_probabilities():
    s, y = torch.zeros(1, 3), torch.tensor([2])
    T = 20.0
    p = torch.tensor([[0.005, 0.005, 0.99]])
    target = torch.softmax(p / T, 1)
    kl = (target * (target.log() - F.log_softmax(s, 1))).sum() / 3         # 'mean' over N·K = 3 elements
    expected = 0.9 * math.log(3) + 0.1 * kl * 100
    torch.testing.assert_close(tfkd_reg_loss(s, y, 0.1, T, multiplier=100.0), expected)


class Const(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(1)
        self.register_buffer("logits", logits)

    def forward(self, x):
        self.bn(torch.randn(4, 1))                      # would move running stats in train mode
        return self.logits[x]


def test_kd_criterion_keeps_the_teacher_frozen_in_eval_mode_and_has_no_state():
    torch.manual_seed(0)
    teacher = Const(torch.randn(5, 3))
    student = torch.nn.Embedding(5, 3)
    criterion = KDCriterion(teacher, alpha=0.5, temperature=2.0).train()
    x, y = torch.arange(5), torch.tensor([0, 1, 2, 0, 1])
    loss, logits = criterion(student, x, y, 0.0)
    loss.backward()
    assert not teacher.training and teacher.bn.running_mean.abs().max() == 0
    assert all(p.grad is None for p in teacher.parameters())
    torch.testing.assert_close(loss, kd_loss(logits, teacher.logits[x], y, 0.5, 2.0))
    assert criterion.state_dict() == {}
    criterion.load_state_dict({})


@pytest.mark.parametrize("kwargs, match", [(dict(alpha=-0.1), "alpha"), (dict(temperature=0.0), "temperature"),
                                           (dict(kl_reduction="sum"), "kl_reduction"), (dict(correct_prob=1.5), "correct_prob")])
def test_tfkd_reg_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TfKDRegCriterion(**kwargs)
