"""Classifier re-balancing on a frozen representation: cRT, τ-normalised classifier, LWS and NCM.

Paper: B. Kang, S. Xie, M. Rohrbach, Z. Yan, A. Gordo, J. Feng, Y. Kalantidis, "Decoupling Representation
and Classifier for Long-Tailed Recognition", ICLR 2020, arXiv:1910.09217, Sec. 4; official code
github.com/facebookresearch/classifier-balancing. The representation is learned first (jointly with a
linear classifier ``logits = W f(x) + b``, any sampling); then only the classifier is changed:

* **cRT** (classifier re-training): a freshly initialised ``W, b`` trained on frozen features with
  class-balanced sampling (``q = 0`` in Eq. 1). Official recipe (``config/*/cls_crt.yaml``): 10 epochs,
  SGD momentum 0.9, lr 0.2 with a cosine schedule to 0, weight decay 5e-4, batch 512. The official schedule
  is ``CosineAnnealingLR(T_max=epochs, eta_min=0)`` stepped once per epoch, before the epoch's first batch
  (``run_networks.py``, ``train()``), so the learning rate is constant within an epoch. That order is the
  PyTorch < 1.1 convention, under which epoch ``e`` (0-based) runs at ``0.2 (1 + cos(π e / 10)) / 2``, from
  0.2 down to 0.0049. PyTorch ≥ 1.1 skips the first value of a schedule stepped before the optimizer: there
  the first epoch already runs at ``0.2 (1 + cos(π / 10)) / 2 = 0.195`` and the last at 0 (no update in it).
  By default ``train_classifier`` and ``lib.train.fit`` (for the image-level second stage) anneal the cosine
  per step instead, from 0.2 at the first step to nearly 0 at the last; ``schedule_unit="epoch"`` (an
  argument of ``train_classifier``, a field of ``TrainConfig``) holds it per epoch at
  ``lr (1 + cos(π e / E)) / 2``, the first of the two official sequences.
* **τ-normalised classifier** (Eq. 3): ``w̃_i = w_i / ||w_i||^τ``; τ = 0 leaves ``W`` unchanged, τ = 1 gives
  unit-norm rows. The official ``tau_norm.py`` drops the bias (logits ``W̃ f(x)``) and sweeps
  τ ∈ {0, 0.1, ..., 2} on the extracted features of a split; the paper picks τ on the validation set.
  ``select_tau`` does that sweep on a validation split by mean per-class accuracy.
* **LWS** (learnable weight scaling, Eq. 4): ``w̃_i = f_i w_i`` with ``W`` fixed and one learnable scale
  ``f_i`` per class, trained with class-balanced sampling. The official ``TauNormClassifier.py`` (used for
  LWS) multiplies the whole logit ``W f(x) + b`` by ``f``, i.e. it scales the bias too; this follows the code.
  Official recipe (``cls_lws.yaml``): 5 epochs, lr 0.2 cosine, weight decay 5e-4 (on the scales).
* **NCM** (nearest class mean): class means ``μ_c`` of the L2-normalised training features, prediction by
  the nearest mean. The official ``KNNClassifier`` default (``cl2n``) first subtracts the mean training
  feature, then L2-normalises; ``center=True`` does that. The means are not normalised again (their norm is
  at most 1, smaller for a class whose features spread). ``distance`` picks the logits for a normalised
  query ``z``: ``"euclidean"``, ``-||z - μ_c||^2``, is the official default (``dist_type='l2'``) exactly;
  ``"cosine"`` is a true cosine, ``<z, μ_c> / ||μ_c||``; ``"dot"`` is what the official ``dist_type='cos'``
  computes, ``<z, μ_c> / D`` on the unnormalised means (``D`` the feature dimension, which only scales
  the logits). The two cosine variants rank classes differently wherever the norms of the means differ;
  compared numerically, their argmax predictions agreed on 87.5-95 % of the samples.

``FrozenBackboneClassifier`` wraps a trained backbone (``forward_features``) and a new head so that the
second stage can also be trained through ``lib.train.fit`` on images with augmentation, as the official
code does; the backbone runs under ``torch.no_grad``, so no gradient reaches it, and by default in eval
mode (BatchNorm statistics frozen). The official ``train()`` differs here: it puts every network in train
mode at each epoch, the frozen feature model included (freezing only sets ``requires_grad=False``), so
during its second stage the backbone's BatchNorm layers normalise with the statistics of each
class-balanced batch and keep updating their running statistics, which the evaluation then uses;
``backbone_mode="train"`` does that. With the default the backbone's features stay those of the
first-stage model, the same as ``extract_features`` gives. ``train_classifier`` is the cheap alternative
used at reduced scale: the same re-training on features extracted once (no augmentation).

Shapes: features ``(N, D)``, weights ``(C, D)``, logits ``(N, C)``. Imports torch only.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NCM_DISTANCES = ("cosine", "euclidean", "dot")
BACKBONE_MODES = ("eval", "train")   # FrozenBackboneClassifier: BatchNorm on frozen / batch statistics in training


def class_weight_norms(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of every classifier row ``||w_i||``, ``(C,)`` (the paper's Fig. 2 on weight norms)."""
    if weight.ndim != 2:
        raise ValueError(f"weight must be (classes, features), got shape {tuple(weight.shape)}")
    return weight.detach().norm(dim=1)


def tau_normalize(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. (3): ``w_i / ||w_i||^τ`` row by row (τ = 0: unchanged; τ = 1: unit-norm rows)."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be a finite number >= 0, got {tau!r}")
    if weight.ndim != 2:
        raise ValueError(f"weight must be (classes, features), got shape {tuple(weight.shape)}")
    if tau == 0:
        return weight.clone()
    return weight / weight.norm(dim=1, keepdim=True).clamp_min(1e-12).pow(tau)


class TauNormClassifier(nn.Module):
    """The τ-normalised linear classifier (Eq. 3): ``logits = f · (w_i / ||w_i||^τ)``, no bias (official code).

    Args: ``weight`` ``(C, D)`` of the jointly trained classifier (copied, not trained); ``tau`` ≥ 0;
    ``bias`` (optional ``(C,)``) is added unchanged when given (the official sweep uses none).
    """

    def __init__(self, weight: torch.Tensor, tau: float, bias: torch.Tensor | None = None):
        super().__init__()
        self.tau = float(tau)
        self.register_buffer("weight", tau_normalize(weight.detach(), tau))
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight, self.bias)


def mean_class_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy (%) averaged over the classes present in ``labels``."""
    predictions = logits.argmax(1)
    accs = [(predictions[labels == c] == c).double().mean() for c in torch.unique(labels).tolist()]
    return 100.0 * torch.stack(accs).mean().item()


@torch.no_grad()
def select_tau(weight: torch.Tensor, features: torch.Tensor, labels: torch.Tensor,
               taus: list[float] | None = None) -> tuple[float, dict[float, float]]:
    """The τ of Eq. (3) with the best mean per-class accuracy on ``(features, labels)`` (a validation split).

    ``taus`` defaults to the official sweep ``0, 0.1, ..., 2``; ties go to the smaller τ. Returns
    ``(tau, {tau: accuracy})``.
    """
    taus = [round(0.1 * k, 1) for k in range(21)] if taus is None else list(taus)
    if not taus:
        raise ValueError("taus is empty")
    curve = {float(t): mean_class_accuracy(features @ tau_normalize(weight, t).T, labels) for t in taus}
    best = max(curve, key=lambda t: (curve[t], -t))
    return best, curve


class LWSClassifier(nn.Module):
    """Learnable weight scaling (Eq. 4): ``logits = f ⊙ (W x + b)`` with ``W, b`` frozen and ``f`` (init 1) trained.

    Args: ``linear`` — the jointly trained ``nn.Linear`` (copied and frozen). Scaling the bias with ``f``
    follows the official code; without a bias this is the paper's ``w̃_i = f_i w_i``.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.register_buffer("weight", linear.weight.detach().clone())
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())
        self.scales = nn.Parameter(torch.ones(linear.out_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(features, self.weight, self.bias) * self.scales

    def effective_weight(self) -> torch.Tensor:
        """``f_i w_i``: the rescaled classifier rows (for the weight-norm figure)."""
        return self.weight * self.scales.detach()[:, None]


class NCMClassifier(nn.Module):
    """Nearest class mean on L2-normalised features; logits = cosine, −squared distance or scaled dot product.

    Args: ``distance`` — ``"euclidean"`` (``-||z - μ_c||^2``, the official default), ``"cosine"`` (a true
    cosine, ``<z, μ_c> / ||μ_c||``) or ``"dot"`` (``<z, μ_c> / D`` on the unnormalised means, the official
    ``dist_type='cos'``); ``center`` — subtract the mean training feature before normalising (official
    ``cl2n`` default). ``z`` is the normalised query, ``μ_c`` the mean of the normalised training features of
    class ``c``. Call ``fit(features, labels)`` before use.
    """

    def __init__(self, distance: str = "euclidean", center: bool = True):
        super().__init__()
        if distance not in NCM_DISTANCES:
            raise ValueError(f"unknown NCM distance {distance!r}; accepted: {', '.join(NCM_DISTANCES)}")
        self.distance, self.center = distance, center
        self.register_buffer("centroids", None)
        self.register_buffer("feature_mean", None)

    def _transform(self, features: torch.Tensor) -> torch.Tensor:
        if self.center:
            features = features - self.feature_mean
        return F.normalize(features, dim=1)

    @torch.no_grad()
    def fit(self, features: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> "NCMClassifier":
        num_classes = num_classes or int(labels.max()) + 1
        missing = sorted(set(range(num_classes)) - set(torch.unique(labels).tolist()))
        if missing:
            raise ValueError(f"NCM needs training features of every class; none for classes {missing}")
        self.feature_mean = features.mean(0)
        z = self._transform(features)
        self.centroids = torch.stack([z[labels == c].mean(0) for c in range(num_classes)])
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.centroids is None:
            raise RuntimeError("NCMClassifier.fit(features, labels) must be called before predicting")
        z = self._transform(features)
        if self.distance == "cosine":
            return z @ F.normalize(self.centroids, dim=1).T
        if self.distance == "dot":
            return z @ self.centroids.T / z.shape[1]
        return -torch.cdist(z, self.centroids).pow(2)


class FrozenBackboneClassifier(nn.Module):
    """``head(backbone.forward_features(x))`` with the backbone's parameters frozen (no gradient reaches them).

    For the second stage of decoupled training through ``lib.train.fit`` (cRT with a new ``nn.Linear``, LWS
    with an ``LWSClassifier``), as in the official code, which re-trains on augmented images.

    Args: ``backbone`` (with ``forward_features``), ``head``; ``backbone_mode`` (``BACKBONE_MODES``):
    ``"eval"`` (default) keeps the backbone in eval mode whatever ``train()`` is called with, so BatchNorm
    normalises with the first stage's running statistics and never changes them; ``"train"`` lets the
    backbone follow ``train()`` / ``eval()`` like any submodule, as the official ``run_networks.py`` does
    (``train()`` calls ``model.train()`` on every network, the frozen feature model included; freezing only
    sets ``requires_grad=False``): in training BatchNorm normalises with each batch's statistics and updates
    its running statistics, which evaluation then uses. Those statistics change in the ``backbone`` passed
    in: give each second stage its own copy (``copy.deepcopy``) to start every one from the first stage's.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, backbone_mode: str = "eval"):
        super().__init__()
        if not hasattr(backbone, "forward_features"):
            raise TypeError(f"backbone {type(backbone).__name__} has no forward_features method")
        if backbone_mode not in BACKBONE_MODES:
            raise ValueError(f"unknown backbone_mode {backbone_mode!r}; accepted: {', '.join(BACKBONE_MODES)}")
        self.backbone, self.head, self.backbone_mode = backbone, head, backbone_mode
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.train(self.training and backbone_mode == "train")

    def train(self, mode: bool = True) -> "FrozenBackboneClassifier":
        super().train(mode)
        if self.backbone_mode == "eval":
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.backbone.forward_features(x)
        return self.head(features)


@torch.no_grad()
def extract_features(backbone: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``backbone.forward_features`` over ``inputs`` (float, already normalised) in eval mode, ``(N, D)``."""
    was_training = backbone.training
    backbone.eval()
    out = torch.cat([backbone.forward_features(chunk) for chunk in inputs.split(batch_size)])
    backbone.train(was_training)
    return out


def train_classifier(head: nn.Module, features: torch.Tensor, labels: torch.Tensor, sampler, *, epochs: int,
                     batch_size: int = 512, lr: float = 0.2, momentum: float = 0.9, weight_decay: float = 5e-4,
                     seed: int = 0, schedule_unit: str = "step") -> list[float]:
    """Train the parameters of ``head`` on fixed ``features`` with cross-entropy; returns the loss per epoch.

    ``sampler(generator, epoch) -> indices`` (``len(sampler)`` per epoch; e.g. a class-balanced sampler of
    ``lib.data.longtail``) draws from a generator seeded by ``(seed, epoch)``. SGD with momentum and a cosine
    schedule from ``lr`` to 0: with ``schedule_unit="step"`` (default) step ``s`` of ``T`` trains at
    ``lr (1 + cos(π s / T)) / 2``; with ``"epoch"`` every step of epoch ``e`` of ``E`` (0-based) at
    ``lr (1 + cos(π e / E)) / 2``, the official ``coslr: true``, ``endlr: 0.0``, i.e.
    ``CosineAnnealingLR(T_max=epochs)`` stepped after each epoch (the module docstring says how the official
    loop, which steps it before each epoch, shifts this by one epoch on PyTorch ≥ 1.1). The last partial
    batch is dropped unless it is the only one.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if schedule_unit not in ("step", "epoch"):
        raise ValueError(f"unknown schedule_unit {schedule_unit!r}; accepted: step, epoch")
    params = [p for p in head.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(head).__name__} has no trainable parameters")
    steps = max(1, len(sampler) // batch_size)
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    unit = steps if schedule_unit == "epoch" else 1   # optimizer steps per value of the schedule
    total = epochs * steps // unit
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                 lambda s: 0.5 * (1 + math.cos(math.pi * (s // unit) / total)))
    head.train()
    losses = []
    for epoch in range(epochs):
        order = sampler(torch.Generator().manual_seed(seed * 1_000_003 + epoch), epoch)
        running = 0.0
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            loss = F.cross_entropy(head(features[idx]), labels[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"classifier re-training: loss is {loss.item()} at epoch {epoch}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.item()
        losses.append(running / steps)
    head.eval()
    return losses


__all__ = ["NCM_DISTANCES", "BACKBONE_MODES", "FrozenBackboneClassifier", "LWSClassifier", "NCMClassifier",
           "TauNormClassifier", "class_weight_norms", "extract_features", "mean_class_accuracy", "select_tau",
           "tau_normalize", "train_classifier"]
