"""Knowledge distillation (Hinton et al., 2015) and Teacher-free KD with a virtual teacher (Yuan et al., 2020).

Paper: L. Yuan, F. E. H. Tay, G. Li, T. Wang, J. Feng, "Revisiting Knowledge Distillation via Label
Smoothing Regularization", CVPR 2020, arXiv:1909.11723; official code
github.com/yuanli2333/Teacher-free-Knowledge-Distillation (``my_loss_function.py``).

KD, with the ``T²`` factor of Hinton et al. that the official code applies::

    L_KD = (1 − α) · CE(z_s, y) + α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

Tf-KD_reg (Sec. 4 of the paper): the teacher is a hand-made *virtual teacher* ``p^d`` putting probability ``a`` on the
true class and ``(1 − a)/(K − 1)`` on every other one; with ``T = 1`` this is label smoothing with
``ε = 1 − a`` spread over the other classes (Sec. 3: LSR is KD with a virtual teacher; tested in
``tests/losses/test_kd.py``).

Where the official code differs from the equations, ``kd_loss`` and ``tfkd_reg_loss`` follow the code and the
difference is an explicit argument:

* ``nn.KLDivLoss()`` with its default ``reduction="mean"`` averages over the batch *and* the K classes, so the
  official KL term is the paper's divided by ``K``; ``kl_reduction="mean"`` (default) reproduces it,
  ``"batchmean"`` is the per-sample KL of the equations. Some official configurations scale the term back up
  with ``multiplier`` (e.g. 100 for ResNet-18's Tf-KD_reg on CIFAR-100, 50 for its Tf-KD_self), others set it
  to 1; ``loss_kd_self`` and ``loss_kd_regularization`` read ``params.multiplier`` without a default, so a
  configuration without the key cannot run them (normal KD, ``loss_kd``, has no multiplier).
* In Tf-KD_reg the code applies the temperature to the virtual teacher's *probabilities*,
  ``softmax(p^d / T)``, and not to the student (``log_softmax(z_s)``, no ``T²``); with the official
  ``T = 20`` the target is close to uniform. ``tfkd_reg_loss`` computes exactly that; ``T = None`` uses
  ``p^d`` itself (the equation at ``T = 1`` without the softmax of probabilities).
* The official ``correct_prob`` is 0.99. α ("reg_alpha"), T ("reg_temperature") and ``multiplier`` are set per
  student network in ``experiments/base_experiments/<model>/params.json`` (CIFAR-100); ``TFKD_REG_OFFICIAL``
  lists them, and ``tfkd_reg_loss`` has no defaults for them, so a chapter names the configuration it follows.

Criteria for ``lib.train.fit``: ``KDCriterion(teacher, alpha, temperature, multiplier=...)`` (the teacher is
frozen, kept in eval mode and called under ``no_grad``; normal, reversed, self and poorly-trained-teacher KD
differ only in which network is passed) and ``TfKDRegCriterion``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KL_REDUCTIONS = ("mean", "batchmean")
# (reg_alpha, reg_temperature, multiplier) of the official CIFAR-100 Tf-KD_reg runs, by student network
# (experiments/base_experiments/base_<model>/params.json). These are the configurations that set every key the
# official loss_kd_regularization reads: it reads params.multiplier unconditionally (utils.Params has no defaults),
# so the ones without the key (base_densenet121, base_resnext29, base_resnext101) raise AttributeError on that
# path and are not listed.
TFKD_REG_OFFICIAL = {"resnet18": (0.1, 20.0, 100.0), "googlenet": (0.1, 40.0, 50.0),
                     "mobilenetv2": (0.95, 40.0, 1.0), "shufflenetv2": (0.95, 10.0, 1.0)}


def _check(alpha, temperature, kl_reduction, allow_none: bool = False):
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
    if not ((temperature is None and allow_none) or (isinstance(temperature, (int, float)) and temperature > 0)):
        raise ValueError(f"temperature must be a positive number{' or None' if allow_none else ''}, got {temperature!r}")
    if kl_reduction not in KL_REDUCTIONS:
        raise ValueError(f"unknown kl_reduction {kl_reduction!r}; accepted: {', '.join(KL_REDUCTIONS)}")


def _kl(log_student: torch.Tensor, teacher_probs: torch.Tensor, kl_reduction: str) -> torch.Tensor:
    """``KL(teacher ‖ student)`` with ``0·log 0 = 0``, reduced like ``nn.KLDivLoss(reduction=kl_reduction)``."""
    pointwise = torch.xlogy(teacher_probs, teacher_probs) - teacher_probs * log_student
    return pointwise.sum() / (log_student.shape[0] if kl_reduction == "batchmean" else log_student.numel())


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float,
            temperature: float, *, kl_reduction: str = "mean", multiplier: float = 1.0) -> torch.Tensor:
    """``(1 − α)·CE + α·T²·multiplier·KL(softmax(z_t/T) ‖ softmax(z_s/T))`` (official ``loss_kd`` /
    ``loss_kd_self``), in fp32."""
    _check(alpha, temperature, kl_reduction)
    s, t = student_logits.float(), teacher_logits.detach().float()
    ce = F.cross_entropy(s, labels)
    if alpha == 0:
        return ce
    kl = _kl(F.log_softmax(s / temperature, dim=1), F.softmax(t / temperature, dim=1), kl_reduction)
    return (1 - alpha) * ce + alpha * kl * temperature ** 2 * multiplier


def virtual_teacher(labels: torch.Tensor, num_classes: int, correct_prob: float = 0.99) -> torch.Tensor:
    """``(N, K)`` distribution ``p^d``: ``correct_prob`` on the label, the rest spread over the other classes."""
    if not 0.0 <= correct_prob <= 1.0:
        raise ValueError(f"correct_prob must lie in [0, 1], got {correct_prob!r}")
    if num_classes < 2:
        raise ValueError(f"a virtual teacher needs at least 2 classes, got {num_classes}")
    probs = torch.full((len(labels), num_classes), (1 - correct_prob) / (num_classes - 1), device=labels.device)
    return probs.scatter_(1, labels[:, None], correct_prob)


def tfkd_reg_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float, temperature: float | None,
                  multiplier: float, *, correct_prob: float = 0.99, kl_reduction: str = "mean") -> torch.Tensor:
    """Tf-KD_reg as the official ``loss_kd_regularization`` computes it (see the module docstring)."""
    _check(alpha, temperature, kl_reduction, allow_none=True)
    s = logits.float()
    ce = F.cross_entropy(s, labels)
    if alpha == 0:
        return ce
    teacher = virtual_teacher(labels, s.shape[1], correct_prob)
    if temperature is not None:
        teacher = F.softmax(teacher / temperature, dim=1)
    return (1 - alpha) * ce + alpha * _kl(F.log_softmax(s, dim=1), teacher, kl_reduction) * multiplier


class FrozenTeacherCriterion(nn.Module):
    """Base of the ``fit`` criteria that hold a frozen ``teacher``: kept in eval mode (its BatchNorm statistics never
    move) with no gradients, a submodule (``fit`` moves it to the device) that is not checkpointed with the run
    (``state_dict`` is empty): the chapter rebuilds it, e.g. from the teacher's own run directory."""

    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def state_dict(self, *args, **kwargs):
        return {}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if state_dict:
            raise ValueError(f"{type(self).__name__} keeps no state; got keys {sorted(state_dict)[:5]}")
        return nn.modules.module._IncompatibleKeys([], [])


class KDCriterion(FrozenTeacherCriterion):
    """``fit`` criterion distilling from a frozen ``teacher`` (eval mode, ``no_grad``) with ``kd_loss``."""

    def __init__(self, teacher: nn.Module, alpha: float, temperature: float, *, kl_reduction: str = "mean",
                 multiplier: float = 1.0):
        _check(alpha, temperature, kl_reduction)
        super().__init__(teacher)
        self.alpha, self.temperature, self.kl_reduction, self.multiplier = alpha, temperature, kl_reduction, multiplier

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        logits = model(x)
        return kd_loss(logits, teacher_logits, labels, self.alpha, self.temperature,
                       kl_reduction=self.kl_reduction, multiplier=self.multiplier), logits


class TfKDRegCriterion(nn.Module):
    """``fit`` criterion for Tf-KD_reg (``tfkd_reg_loss``); ``alpha = 0`` is cross-entropy exactly."""

    def __init__(self, alpha: float, temperature: float | None, multiplier: float, *, correct_prob: float = 0.99,
                 kl_reduction: str = "mean"):
        super().__init__()
        _check(alpha, temperature, kl_reduction, allow_none=True)
        virtual_teacher(torch.zeros(1, dtype=torch.long), 2, correct_prob)
        self.kwargs = dict(alpha=alpha, temperature=temperature, correct_prob=correct_prob,
                           kl_reduction=kl_reduction, multiplier=multiplier)

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        logits = model(x)
        return tfkd_reg_loss(logits, labels, **self.kwargs), logits
