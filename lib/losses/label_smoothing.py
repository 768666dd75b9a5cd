"""Label smoothing with a fixed (uniform) or an online (model-estimated) soft target.

Uniform label smoothing (Szegedy et al., CVPR 2016) trains on ``(1 − ε)·onehot + ε·u``. Two spreads of the
mass ``ε`` are in use and differ by a factor ``K/(K−1)``:

* ``spread="all"``: ``u`` uniform over all ``K`` classes (the true class gets ``1 − ε + ε/K``); this is
  ``torch.nn.functional.cross_entropy(label_smoothing=ε)`` and timm's ``LabelSmoothingCrossEntropy``;
  the label-smoothing baseline of Online Label Smoothing's official code (``label_smooth`` in
  ``cifar/scripts/loss_all_methods.py``) is this one too;
* ``spread="others"``: ``ε/(K−1)`` on every other class (the true class gets ``1 − ε``); the official code of
  Teacher-free KD (``loss_label_smoothing``) uses this one.

Online label smoothing (OLS): Zhang, Chen, Cheng, Lu, Huang, Ye, Cheng, Fan, "Delving Deep into Label
Smoothing", IEEE TIP 2021, arXiv:2011.12562; official code github.com/zhangchbin/OnlineLabelSmoothing
(``cifar/scripts/train_cifar_all_methods.py``, method ``ols``). During epoch ``t`` the soft label of class
``k`` is the mean softmax output over the training samples of class ``k`` that epoch ``t − 1`` classified
correctly (Sec. 3, the matrix ``S^{t−1}``); the loss is

    L = α · CE(z, y) + (1 − α) · H(S^{t−1}_y, softmax(z)),         α = 0.5 in the official CIFAR runs.

What the official code does, and ``OnlineLabelSmoothing`` follows:

* the statistics come from the training forward pass itself (augmented images, train-mode BatchNorm), under
  ``no_grad``; a sample counts when its top-1 prediction is its label;
* ``S`` starts as zeros, so the first epoch's loss is ``α · CE`` (the soft term vanishes);
* at the end of an epoch a class with no correctly classified sample gets the uniform row ``1/K``.

Use as a criterion of ``lib.train.fit``: ``fit(model, ..., criterion=OnlineLabelSmoothing(K, epochs=E))``.
The epoch boundary is read from ``fit``'s ``progress`` (``floor(progress · epochs)``), so the criterion is
told the number of epochs, and a jump of more than one epoch (a criterion whose state was not restored with
its run) is an error. Its matrices are buffers: ``fit`` checkpoints them with the model, and a resumed run
continues with the statistics of the interrupted epoch. Under several processes every step's sums are
all-reduced as they are accumulated, so every process holds the same global sums at every moment (the
checkpoint that rank 0 writes included) and uses the same ``S``.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

SPREADS = ("all", "others")


def smoothed_targets(labels: torch.Tensor, num_classes: int, epsilon: float, spread: str = "all") -> torch.Tensor:
    """``(N, K)`` soft targets of uniform label smoothing with mass ``epsilon`` (see the module docstring)."""
    if spread not in SPREADS:
        raise ValueError(f"unknown label-smoothing spread {spread!r}; accepted: {', '.join(SPREADS)}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
    if num_classes < 2:
        raise ValueError(f"label smoothing needs at least 2 classes, got {num_classes}")
    off = epsilon / num_classes if spread == "all" else epsilon / (num_classes - 1)
    on = 1.0 - epsilon + (off if spread == "all" else 0.0)
    targets = torch.full((len(labels), num_classes), off, dtype=torch.float32, device=labels.device)
    return targets.scatter_(1, labels[:, None], on)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``H(targets, softmax(logits)) = −Σ_k t_k log p_k``, computed in fp32."""
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must have the same shape")
    return -(targets.float() * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


class LabelSmoothingCE(nn.Module):
    """``fit`` criterion: cross-entropy on uniformly smoothed targets; ``epsilon = 0`` is cross-entropy exactly."""

    def __init__(self, epsilon: float = 0.1, spread: str = "all"):
        super().__init__()
        smoothed_targets(torch.zeros(1, dtype=torch.long), 2, epsilon, spread)   # validate before any work
        self.epsilon, self.spread = float(epsilon), spread

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        logits = model(x)
        if self.epsilon == 0:
            return F.cross_entropy(logits.float(), labels), logits
        targets = smoothed_targets(labels, logits.shape[1], self.epsilon, self.spread)
        return soft_cross_entropy(logits, targets), logits


class OnlineLabelSmoothing(nn.Module):
    """``fit`` criterion: Online Label Smoothing (Zhang et al., TIP 2021), as the official code trains it.

    ``num_classes``: K; ``alpha``: weight of the hard-label cross-entropy (``alpha = 1`` is cross-entropy
    exactly); ``epochs``: the run's length, to find epoch boundaries in ``progress``.
    Buffers: ``soft`` (K, K), the soft labels used this epoch (row k: class k's target distribution);
    ``accum`` (K, K) and ``count`` (K,), this epoch's sums; ``epoch``, the epoch ``soft`` belongs to.
    """

    def __init__(self, num_classes: int, alpha: float = 0.5, *, epochs: int):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
            raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        self.alpha, self.epochs = float(alpha), epochs
        self.register_buffer("soft", torch.zeros(num_classes, num_classes))
        self.register_buffer("accum", torch.zeros(num_classes, num_classes, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def accumulate(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add the softmax outputs of the correctly classified samples to their class's row (summed over all
        processes when several train together)."""
        probs = F.softmax(logits.float(), dim=1).double()
        correct = logits.argmax(1) == labels
        sums = torch.zeros_like(self.accum).index_add_(0, labels[correct], probs[correct])
        counts = torch.zeros_like(self.count).index_add_(0, labels[correct], torch.ones_like(labels[correct], dtype=torch.float64))
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        self.accum += sums
        self.count += counts

    @torch.no_grad()
    def next_epoch(self) -> None:
        """Turn this epoch's sums into the next epoch's soft labels (uniform rows for unseen classes)."""
        k = self.soft.shape[0]
        seen = self.count > 0
        rows = torch.full_like(self.accum, 1.0 / k)
        rows[seen] = self.accum[seen] / self.count[seen, None]
        self.soft.copy_(rows.to(self.soft.dtype))
        self.accum.zero_()
        self.count.zero_()
        self.epoch += 1

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        epoch = math.floor(progress * self.epochs + 1e-9)   # fit's progress (e·S + s)/(E·S) can round below e/E
        if epoch == int(self.epoch) + 1:
            self.next_epoch()
        elif epoch != int(self.epoch):
            raise RuntimeError(f"OnlineLabelSmoothing holds the statistics of epoch {int(self.epoch)} but is called in "
                               f"epoch {epoch}: restore its state_dict with the run's checkpoint, and give it the "
                               f"run's number of epochs (epochs={self.epochs})")
        logits = model(x)
        if self.alpha == 1.0:
            return F.cross_entropy(logits.float(), labels), logits
        self.accumulate(logits.detach(), labels)
        hard = F.cross_entropy(logits.float(), labels)
        return self.alpha * hard + (1 - self.alpha) * soft_cross_entropy(logits, self.soft[labels]), logits
