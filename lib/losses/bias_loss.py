"""Bias loss: cross-entropy weighted per image by the diversity (variance) of its last convolutional features.

Paper: L. Abrahamyan, V. Ziatchin, Y. Chen, N. Deligiannis, "Bias Loss for Mobile Neural Networks", ICCV 2021,
arXiv:2107.11170. Official code: github.com/lusinlu/bias-loss-skipblocknet (``bias_loss/biasloss.py``, trained by
``bias_loss/train.py``). The paper's method section was not read from a citable source, so its equation numbers are
not given here; this module computes the loss as the official code does:

1. feature diversity of image ``i``: ``v_i = Var(F_i)``, the unbiased variance of all ``C·H·W`` values of the
   feature maps ``F_i`` of the last convolutional layer (official ``torch.var(features.reshape(N, -1), dim=1)``; for
   its CIFAR ResNet18, the output of ``layer4`` before the pooling);
2. normalised over the batch (``normalisation``; the official default is ``"global"``)::

       local:   v̂_i = (v_i − min_batch v) / (max_batch v − min_batch v)
       global:  v̂_i = (v_i − m)         / (max_batch v − min_batch v)

   where ``m`` is the smallest variance of any training batch so far, this one included: ``v̂ ≥ 0``, and the
   batch's largest ``v̂`` is 1 or more;
3. the scaling ``z(v̂) = exp(α v̂) − β`` and the loss ``L = (1/N) Σ_i z(v̂_i) · CE(logits_i, y_i)``, official
   ``α = β = 0.3``. The weights are computed from detached features (official ``features.clone().detach()``): no
   gradient flows through ``v̂``. Images with diverse features weigh more; ``α = β = 0`` is cross-entropy exactly.

The official formula changed once. The code released in August 2021 (commits ae6d68d, 40d67b5) weighted by
``exp(β v̂) − 1 + α``; commit b557bca (September 2022, "fixed the formula to have the same notation as the paper")
made it ``exp(α v̂) − β``. With the defaults α = β = 0.3 the first gives ``exp(0.3 v̂) − 0.7``, the second
``exp(0.3 v̂) − 0.3``. This module follows the current code; ``BiasLoss(alpha=0.3, beta=0.7)`` is the first release.

Deviations from the official code:

* the running minimum ``m`` starts at +inf and is a buffer, checkpointed with the run (official: 100000, a plain
  attribute, lost when training resumes); the two agree whenever a variance below 100000 has been seen;
* a batch whose variances are all equal (one image) gives ``v̂ = 0`` (official: a division by zero, NaN or inf);
* the variance is taken in fp32 of the features as the forward pass made them (bf16 under ``lib.train``'s autocast;
  the official runs are fp32);
* under several processes the batch's minimum and maximum (and so ``m``) are all-reduced, so every process weighs its
  images as one process would with the whole global batch (the official code trains on one GPU).

The official loop skips each epoch's last incomplete batch; ``lib.train.fit`` trains ``floor(N / B)`` full batches
per epoch, so it does too.

Use as a criterion of ``lib.train.fit``: ``fit(model, ..., criterion=BiasLoss())``. The features are the output of
the submodule named ``feature_module`` (``"stages"``: the last residual stage of ``lib.models.ResNetCIFAR``, before
its pooling; ``"features"``: the last 1×1 convolution block of ``lib.models.MobileNetV2``), captured with a forward
hook, so the model is called once, through its DDP wrapper when there is one.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

NORMALISATIONS = ("global", "local")


def feature_diversity(features: torch.Tensor) -> torch.Tensor:
    """``(N,)`` unbiased variance, in fp32, of all values of each image's feature maps ``(N, C, H, W)`` (or ``(N, D)``)."""
    if features.ndim < 2 or features[0].numel() < 2:
        raise ValueError(f"features must have shape (N, ...) with at least 2 values per image, got "
                         f"{tuple(features.shape)}")
    return features.float().reshape(len(features), -1).var(dim=1)


def normalised_diversity(diversity: torch.Tensor, floor: torch.Tensor | float | None = None) -> torch.Tensor:
    """``v̂`` of the module docstring: ``(v − floor) / (max v − min v)`` over the batch; ``floor=None`` is the
    batch's minimum (``"local"``), a running minimum gives ``"global"``. Equal variances give zeros."""
    low, high = diversity.min(), diversity.max()
    floor = low if floor is None else torch.as_tensor(floor, dtype=diversity.dtype, device=diversity.device)
    return _normalise(diversity, floor, low, high)


def _normalise(diversity: torch.Tensor, floor: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    span = high - low
    if span <= 0:
        return torch.zeros_like(diversity)
    return (diversity - floor) / span


def bias_weights(v: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """The scaling ``z(v̂) = exp(α v̂) − β`` of each image's cross-entropy."""
    return torch.exp(alpha * v) - beta


def bias_loss(logits: torch.Tensor, labels: torch.Tensor, v: torch.Tensor, alpha: float = 0.3,
              beta: float = 0.3) -> torch.Tensor:
    """``(1/N) Σ z(v̂_i) CE_i`` in fp32 for ``logits (N, K)``, ``labels (N,)`` and normalised diversities ``v (N,)``
    (treated as constants); ``alpha = beta = 0`` returns ``F.cross_entropy(logits, labels)`` exactly."""
    _check_strength(alpha, beta)
    if alpha == 0 and beta == 0:
        return F.cross_entropy(logits, labels)
    per_image = F.cross_entropy(logits.float(), labels, reduction="none")
    return (bias_weights(v.detach().float(), alpha, beta) * per_image).mean()


def _check_strength(alpha, beta) -> None:
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta < 1):
        raise ValueError(f"beta must be a finite number < 1 (every weight exp(alpha v) - beta is then > 0), "
                         f"got {beta!r}")


def _feature_module(model: nn.Module, name: str) -> nn.Module:
    net = getattr(model, "module", model)          # a DDP wrapper's module holds the layers
    try:
        return net.get_submodule(name)
    except AttributeError:
        children = ", ".join(n for n, _ in net.named_children()) or "none"
        raise AttributeError(f"the bias loss reads the output of the submodule {name!r} (the last convolutional "
                             f"features), which {type(net).__name__} does not have; its children: {children}") from None


def logits_and_features(model: nn.Module, x: torch.Tensor, feature_module: str = "stages"):
    """``model(x)`` and the output of its submodule ``feature_module`` in the same forward pass."""
    captured = {}
    handle = _feature_module(model, feature_module).register_forward_hook(
        lambda module, inputs, output: captured.update(features=output))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return logits, captured["features"]


def split_accuracy(diversity: torch.Tensor, correct: torch.Tensor, fraction: float = 1 / 3) -> tuple[float, float]:
    """Top-1 accuracy (%) on the ``floor(fraction · N)`` images of lowest and of highest ``diversity`` (a stable
    sort: equal values keep their order), from per-image ``correct`` (bool)."""
    if diversity.shape != correct.shape or diversity.ndim != 1:
        raise ValueError(f"diversity and correct must be (N,) each, got {tuple(diversity.shape)} and "
                         f"{tuple(correct.shape)}")
    k = math.floor(fraction * len(diversity))
    if not 0 < fraction <= 0.5 or k < 1:
        raise ValueError(f"fraction must lie in (0, 0.5] and select at least one of the {len(diversity)} images, "
                         f"got {fraction!r}")
    order = torch.sort(diversity, stable=True).indices
    hits = correct[order].float()
    return 100.0 * hits[:k].mean().item(), 100.0 * hits[-k:].mean().item()


class BiasLoss(nn.Module):
    """``fit`` criterion: the bias loss as the official code trains it (module docstring).

    ``alpha`` (≥ 0), ``beta`` (< 1): the scaling ``exp(α v̂) − β``, official 0.3 and 0.3; ``normalisation``:
    ``"global"`` (official default) or ``"local"``; ``feature_module``: the submodule whose output is the last
    convolutional feature map. Buffer ``running_min``: the smallest variance seen so far (``"global"``).
    """

    def __init__(self, alpha: float = 0.3, beta: float = 0.3, normalisation: str = "global", *,
                 feature_module: str = "stages"):
        super().__init__()
        _check_strength(alpha, beta)
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"unknown normalisation {normalisation!r}; accepted: {', '.join(NORMALISATIONS)}")
        if not isinstance(feature_module, str) or not feature_module:
            raise ValueError(f"feature_module must name a submodule, got {feature_module!r}")
        self.alpha, self.beta, self.normalisation, self.feature_module = (float(alpha), float(beta), normalisation,
                                                                          feature_module)
        self.register_buffer("running_min", torch.tensor(float("inf")))

    @torch.no_grad()
    def normalise(self, diversity: torch.Tensor) -> torch.Tensor:
        """``v̂`` of one training batch; updates ``running_min`` (global extremes when several processes train)."""
        low, high = diversity.min().clone(), diversity.max().clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(low, op=dist.ReduceOp.MIN)
            dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if self.normalisation == "global":
            self.running_min.copy_(torch.minimum(self.running_min, low.to(self.running_min)))
            return _normalise(diversity, self.running_min.to(diversity), low, high)
        return _normalise(diversity, low, low, high)

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        if self.alpha == 0 and self.beta == 0:      # weight 1 for every image: fit's own cross-entropy
            logits = model(x)
            return F.cross_entropy(logits, labels), logits
        logits, features = logits_and_features(model, x, self.feature_module)
        with torch.autocast(logits.device.type, enabled=False):
            v = self.normalise(feature_diversity(features.detach()))
            return bias_loss(logits.float(), labels, v, self.alpha, self.beta), logits
