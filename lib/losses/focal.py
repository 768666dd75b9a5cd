"""Focal loss: cross-entropy weighted per image by its own difficulty, ``(1 − p_y)^γ``.

Paper: T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss for Dense Object Detection", ICCV 2017,
arXiv:1708.02002. Sec. 3.2 defines, for the probability ``p_t`` of the true class, ``FL(p_t) = −(1 − p_t)^γ
log(p_t)`` (Eq. 4), and its α-balanced variant (Eq. 5), both for binary (sigmoid) classification; the paper finds
``γ = 2`` best for detection. This is the usual softmax form for ``K`` classes, without the α-balancing:

    L = (1/N) Σ_i −(1 − p_{i,y_i})^γ · log p_{i,y_i},      p_i = softmax(logits_i),

computed in fp32 from ``log_softmax``. ``γ = 0`` is cross-entropy exactly. The gradient flows through the
modulating factor too, as in the paper's definition (some implementations detach it; this one does not).

Use as a criterion of ``lib.train.fit``: ``fit(model, ..., criterion=FocalLoss(gamma=2.0))``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _check_gamma(gamma) -> None:
    if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean softmax focal loss of ``logits (N, K)`` and ``labels (N,)``; ``gamma = 0`` returns
    ``F.cross_entropy(logits, labels)`` exactly."""
    _check_gamma(gamma)
    if gamma == 0:
        return F.cross_entropy(logits, labels)
    log_p = F.log_softmax(logits.float(), dim=1).gather(1, labels[:, None]).squeeze(1)
    return -((1 - log_p.exp()) ** gamma * log_p).mean()


class FocalLoss(nn.Module):
    """``fit`` criterion: the softmax focal loss with focusing parameter ``gamma`` (≥ 0; 0 is cross-entropy)."""

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        _check_gamma(gamma)
        self.gamma = float(gamma)

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        logits = model(x)
        if self.gamma == 0:
            return F.cross_entropy(logits, labels), logits
        with torch.autocast(logits.device.type, enabled=False):
            return focal_loss(logits.float(), labels, self.gamma), logits
