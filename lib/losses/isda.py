"""Implicit semantic data augmentation (ISDA): a robust cross-entropy over class-conditional feature noise.

Paper: Y. Wang, G. Huang, S. Song, X. Pan, Y. Xia, C. Wu, "Regularizing Deep Networks with Semantic Data
Augmentation", IEEE TPAMI 2021, arXiv:2007.10538 (conference version: NeurIPS 2019, arXiv:1909.12220).
Official code: github.com/blackfeather-wang/ISDA-for-Deep-Networks.

Idea (Sec. 3 of the TPAMI paper). A training feature ``a_i`` of class ``y_i`` is translated along random
directions drawn from ``N(0, λ Σ_{y_i})``, where ``Σ_c`` is the covariance of the deep features of class
``c``. Letting the number of such augmented copies go to infinity, the expected cross-entropy over them is
bounded above by a cross-entropy on *augmented logits* (the closed-form bound of Sec. 3.3)::

    z̃_j = z_j + (λ / 2) · (w_j − w_{y_i})ᵀ Σ_{y_i} (w_j − w_{y_i}),       loss = CE(z̃, y_i)

with ``z = W a + b`` the logits of the final linear layer and ``w_j`` its rows. The term is zero for
``j = y_i``, so the target logit is unchanged and every other logit grows by a non-negative, class-pair
specific margin. ``λ = 0`` is plain cross-entropy, exactly.

Online covariance (Sec. 3.4). ``Σ_c`` is estimated during training from the (detached) features of the
mini-batches seen so far: the batch's per-class mean and biased covariance are merged into running
statistics with the exact pooled-moment formula, so after any sequence of batches the estimate equals the
covariance (normalised by ``n``) of all features of that class seen so far — the statistic the official
``EstimatorCV`` keeps. The features drift as the network learns; like the official code, old features are
never discounted.

Schedule. The paper sets ``λ = λ0 · t / T`` (``t``: current, ``T``: total training time). The official
code evaluates it once per epoch, ``λ = λ0 · epoch / epochs`` with ``epoch`` counted from 0 — so the first
epoch is plain cross-entropy and λ never reaches λ0. ``ISDALoss(schedule="epoch")`` (default) follows the
code; ``schedule="step"`` is the continuous per-step version of the paper's formula. The official CIFAR
default is ``λ0 = 0.5``.

Use as a criterion of ``lib.train.fit``: ``fit(model, ..., criterion=ISDALoss(feature_dim, classes,
epochs=config.epochs))``. The model must end in a linear layer reachable as ``model.classifier`` (the
book's ResNets and MobileNets do); its input is captured with a forward pre-hook, so the model is called
once, through its DDP wrapper when there is one.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SCHEDULES = ("epoch", "step")


class ClassCovariance(nn.Module):
    """Running per-class mean and covariance (normalised by the count) of ``D``-dimensional features."""

    def __init__(self, num_classes: int, feature_dim: int):
        super().__init__()
        if num_classes < 1 or feature_dim < 1:
            raise ValueError(f"num_classes and feature_dim must be positive, got {num_classes}, {feature_dim}")
        self.register_buffer("mean", torch.zeros(num_classes, feature_dim))
        self.register_buffer("cov", torch.zeros(num_classes, feature_dim, feature_dim))
        self.register_buffer("count", torch.zeros(num_classes))

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Merge one batch: ``features (N, D)``, ``labels (N,)`` in ``[0, num_classes)``."""
        num_classes, dim = self.mean.shape
        if features.ndim != 2 or features.shape[1] != dim:
            raise ValueError(f"features must have shape (N, {dim}), got {tuple(features.shape)}")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                             f"[{labels.min().item()}, {labels.max().item()}]")
        features = features.to(self.mean.dtype)
        onehot = F.one_hot(labels, num_classes).to(features.dtype)          # (N, C)
        n_batch = onehot.sum(0)                                              # (C,)
        batch_mean = (onehot.t() @ features) / n_batch.clamp(min=1)[:, None]  # (C, D)
        centred = features[:, None, :] - batch_mean[None]                    # (N, C, D)
        weighted = centred * onehot[:, :, None]
        batch_cov = torch.einsum("ncd,nce->cde", weighted, centred) / n_batch.clamp(min=1)[:, None, None]
        total = self.count + n_batch
        w = (n_batch / total.clamp(min=1))[:, None]                          # weight of the new batch
        delta = self.mean - batch_mean
        self.cov.mul_(1 - w[:, :, None]).add_(batch_cov * w[:, :, None]
                                              + (w * (1 - w))[:, :, None] * delta[:, :, None] * delta[:, None, :])
        self.mean.mul_(1 - w).add_(batch_mean * w)
        self.count.copy_(total)


def isda_logits(logits: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, cov: torch.Tensor,
                lam: float) -> torch.Tensor:
    """Augmented logits ``z̃_j = z_j + λ/2 · (w_j − w_y)ᵀ Σ_y (w_j − w_y)`` (the bound of Sec. 3.3).

    ``logits (N, C)``, ``weight (C, D)`` of the final linear layer, ``labels (N,)``, ``cov (C, D, D)``.
    Gradients flow to the logits and to ``weight``; the covariance is treated as a constant.
    """
    if lam == 0:
        return logits
    diff = weight[None, :, :] - weight[labels][:, None, :]                   # (N, C, D): w_j − w_y
    sigma = torch.einsum("ncd,nde,nce->nc", diff, cov[labels].detach(), diff)
    return logits + 0.5 * lam * sigma


class ISDALoss(nn.Module):
    """``fit`` criterion: cross-entropy on ISDA-augmented logits with the λ ramp; keeps ``Σ_c`` as buffers.

    ``feature_dim``: input size of ``model.classifier``; ``lambda0``: final strength (0 → cross-entropy);
    ``epochs``: the schedule's length (needed by ``schedule="epoch"``).
    """

    def __init__(self, feature_dim: int, num_classes: int, lambda0: float = 0.5, *, epochs: int | None = None,
                 schedule: str = "epoch"):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown ISDA schedule {schedule!r}; accepted: {', '.join(SCHEDULES)}")
        if schedule == "epoch" and (not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"schedule='epoch' needs the number of epochs as a positive integer, got {epochs!r}")
        if not math.isfinite(lambda0) or lambda0 < 0:
            raise ValueError(f"lambda0 must be a finite number >= 0, got {lambda0!r}")
        self.lambda0, self.epochs, self.schedule = float(lambda0), epochs, schedule
        self.covariance = ClassCovariance(num_classes, feature_dim)

    def strength(self, progress: float) -> float:
        """λ at ``progress`` ∈ [0, 1) of training."""
        if self.schedule == "step":
            return self.lambda0 * progress
        return self.lambda0 * math.floor(progress * self.epochs + 1e-9) / self.epochs

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        net = getattr(model, "module", model)          # a DDP wrapper's module holds the classifier
        classifier = getattr(net, "classifier", None)
        if not isinstance(classifier, nn.Linear):
            raise TypeError(f"ISDALoss needs a model whose last layer is an nn.Linear named 'classifier'; "
                            f"{type(net).__name__}.classifier is {type(classifier).__name__}")
        captured = {}
        handle = classifier.register_forward_pre_hook(lambda module, inputs: captured.update(features=inputs[0]))
        try:
            logits = model(x)
        finally:
            handle.remove()
        self.covariance.update(captured["features"].detach(), labels)
        # The margins are quadratic forms of the fp32 covariance: under bf16 autocast (TrainConfig.precision) they
        # are computed in fp32 from the (bf16) logits and the fp32 weights, like the loss autocast keeps in fp32.
        with torch.autocast(logits.device.type, enabled=False):
            augmented = isda_logits(logits.float(), classifier.weight.float(), labels, self.covariance.cov,
                                    self.strength(progress))
            return F.cross_entropy(augmented, labels), logits
