"""KD and Tf-KD: hand-computed values, zero strength, LS = KD with a virtual teacher, the official reductions."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib.losses import KDCriterion, TfKDRegCriterion, kd_loss, smoothed_targets, soft_cross_entropy, tfkd_reg_loss, virtual_teacher
from lib.losses.kd import TFKD_REG_OFFICIAL


def test_kd_equals_a_hand_computed_value():
    s, t, y = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 4.0, 1.0]]), torch.tensor([0])
    T, alpha = 2.0, 0.25
    ps, pt = F.softmax(s / T, 1)[0], F.softmax(t / T, 1)[0]
    kl = sum(pt[k] * math.log(pt[k] / ps[k]) for k in range(3))          # KL(teacher || student)
    reverse = sum(ps[k] * math.log(ps[k] / pt[k]) for k in range(3))
    assert abs(kl - reverse) > 0.05                                      # the direction matters here
    ce = -math.log(F.softmax(s, 1)[0, 0])
    expected = (1 - alpha) * ce + alpha * T * T * kl
    torch.testing.assert_close(kd_loss(s, t, y, alpha, T, kl_reduction="batchmean"), torch.tensor(float(expected)))
    # the official nn.KLDivLoss() default averages over the K = 3 classes as well
    torch.testing.assert_close(kd_loss(s, t, y, alpha, T), torch.tensor(float((1 - alpha) * ce + alpha * T * T * kl / 3)))
    # the multiplier of the official loss_kd_self scales the KL term only
    torch.testing.assert_close(kd_loss(s, t, y, alpha, T, multiplier=5.0),
                               torch.tensor(float((1 - alpha) * ce + alpha * T * T * 5.0 * kl / 3)))


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
    assert torch.equal(tfkd_reg_loss(s, y, 0.0, 20.0, 100.0), F.cross_entropy(s, y))


def test_label_smoothing_is_kd_with_a_virtual_teacher():
    """Sec. 3: at T = 1 the virtual teacher p^d with a = 1 − ε is label smoothing spread over the other classes;
    the KD loss with it differs from the LS loss only by the teacher's entropy, a constant."""
    torch.manual_seed(0)
    s, y = torch.randn(9, 6, requires_grad=True), torch.arange(9) % 6
    eps = 0.1
    teacher = virtual_teacher(y, 6, 1 - eps)
    torch.testing.assert_close(teacher, smoothed_targets(y, 6, eps, "others"))
    ls = soft_cross_entropy(s, teacher)
    kd = tfkd_reg_loss(s, y, 1.0, None, 1.0, correct_prob=1 - eps, kl_reduction="batchmean")
    entropy = -(teacher * teacher.log()).sum(1).mean()
    torch.testing.assert_close(ls - kd, entropy)
    g_ls, = torch.autograd.grad(ls, s)
    g_kd, = torch.autograd.grad(kd, s)
    torch.testing.assert_close(g_ls, g_kd)


def test_official_tfkd_reg_softens_the_virtual_teacher_probabilities_not_the_student():
    torch.manual_seed(0)
    s, y = torch.randn(4, 3, dtype=torch.float64) * 2, torch.tensor([2, 0, 1, 2])
    T, alpha, multiplier = 20.0, 0.1, 100.0
    p = torch.full((4, 3), 0.005, dtype=torch.float64)
    p[torch.arange(4), y] = 0.99
    target = torch.softmax(p / T, 1)                                     # softmax of probabilities / T
    log_student = torch.log_softmax(s, 1)                                # no temperature on the student
    kl = (target * (target.log() - log_student)).sum() / s.numel()       # 'mean' over N·K elements
    expected = (1 - alpha) * F.cross_entropy(s, y) + alpha * kl * multiplier
    torch.testing.assert_close(tfkd_reg_loss(s, y, alpha, T, multiplier).double(), expected, rtol=1e-6, atol=1e-6)


def test_official_tfkd_reg_configurations_are_listed_and_required():
    assert TFKD_REG_OFFICIAL["resnet18"] == (0.1, 20.0, 100.0)
    with pytest.raises(TypeError):
        TfKDRegCriterion()                                               # no silent default configuration
    with pytest.raises(ValueError, match="temperature must be a positive number, got None"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), 0.5, None)


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


def test_kd_criterion_passes_the_multiplier_through():
    torch.manual_seed(0)
    teacher = Const(torch.randn(5, 3) * 3)
    student = torch.nn.Embedding(5, 3)
    x, y = torch.arange(5), torch.tensor([0, 1, 2, 0, 1])
    loss, logits = KDCriterion(teacher, alpha=0.95, temperature=6.0, multiplier=5.0).train()(student, x, y, 0.0)
    torch.testing.assert_close(loss, kd_loss(logits, teacher.logits[x], y, 0.95, 6.0, multiplier=5.0))
    assert not torch.allclose(loss, kd_loss(logits, teacher.logits[x], y, 0.95, 6.0))   # the multiplier matters here


@pytest.mark.parametrize("kwargs, match", [(dict(alpha=-0.1), "alpha"), (dict(temperature=0.0), "temperature"),
                                           (dict(kl_reduction="sum"), "kl_reduction"), (dict(correct_prob=1.5), "correct_prob")])
def test_tfkd_reg_rejects_bad_arguments(kwargs, match):
    arguments = {"alpha": 0.1, "temperature": 20.0, "multiplier": 100.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        TfKDRegCriterion(**arguments)
