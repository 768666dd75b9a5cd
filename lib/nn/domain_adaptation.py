"""Pieces shared by the domain-adaptation chapters: gradient reversal, DANN's discriminator and schedule, a
black-box source.

DANN: Y. Ganin, E. Ustinova, H. Ajakan, P. Germain, H. Larochelle, F. Laviolette, M. Marchand, V. Lempitsky,
"Domain-Adversarial Training of Neural Networks", JMLR 17 (2016), arXiv:1505.07818.

* ``grad_reverse(x, coeff)`` is the identity forward and multiplies the gradient by ``−coeff`` backward: the
  gradient reversal layer ``R`` (``R(x) = x``, ``dR/dx = −I``) with the adaptation factor λ applied to the
  reversed gradient only. Feature extractor ``G_f``, label predictor ``G_y`` and domain classifier ``G_d`` are
  then trained by one SGD on ``L_y(G_y(G_f(x_s)), y_s) + L_d(G_d(R(G_f(x))), d)``: ``G_d`` descends ``L_d``
  with its plain gradient and ``G_f`` ascends it with weight λ. (The paper's update rule also scales
  ``G_d``'s own step by λ; this module follows the common GRL implementation, and a chapter that needs the
  other can scale the domain loss.)
* ``dann_coefficient(p, gamma=10)`` is the adaptation factor of Sec. 5.2.2, ``λ_p = 2 / (1 + exp(−γ p)) − 1``,
  rising from 0 to ~1 as training progress ``p`` goes from 0 to 1, which suppresses the discriminator's noisy
  signal early in training.
* ``DomainDiscriminator`` is a domain classifier ``G_d``: an MLP ``features → hidden → hidden → 1`` with ReLU
  and dropout giving the logit of "target"; width and dropout are arguments, and each chapter states the
  values its paper uses. ``domain_loss`` is the logistic (binary cross-entropy) loss with source = 0,
  target = 1, averaged over the joined batch: for equal source and target batches this is half the sum of
  the two per-domain means.
* ``DANN(backbone, discriminator)`` joins a backbone that has ``forward_features`` and ``classifier`` (the
  book's ResNets and MobileNets) with a domain classifier. ``model(x)`` is the backbone's logits (evaluation);
  ``model(x, target=x_t, coeff=λ)`` runs source and target through the backbone as *one* batch (BatchNorm
  sees both domains, as most DANN implementations do) and returns the source logits and the domain logits
  of both halves, the features passing through ``grad_reverse(·, λ)`` on their way to the discriminator.
  Calling the module itself (not its parts) keeps a DistributedDataParallel wrapper in charge of the
  gradients. ``lib.losses.DANNLoss`` is the ``fit`` criterion that trains it.
* ``BlackBoxPredictor(model)`` exposes only ``softmax(model(x))`` under ``no_grad`` in eval mode: what DINE
  (Liang et al., CVPR 2022) and BETA (Yang et al., ICLR 2023) may query; its parameters, features and
  gradients are out of reach, and it refuses ``backward`` through its outputs by construction (they are
  detached tensors).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff):
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient times ``−coeff`` backward (``coeff ≥ 0``)."""
    try:
        value = float(coeff)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(coeff, bool) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"the reversal coefficient must be a finite number >= 0, got {coeff!r}")
    return _GradReverse.apply(x, value)


class GradientReversal(nn.Module):
    """``grad_reverse`` as a layer; ``coeff`` may be changed between steps (e.g. to ``dann_coefficient(p)``)."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"


def dann_coefficient(progress: float, gamma: float = 10.0) -> float:
    """``λ_p = 2 / (1 + exp(−γ p)) − 1`` for training progress ``p`` in [0, 1] (Ganin et al., Sec. 5.2.2)."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must lie in [0, 1], got {progress!r}")
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


class DomainDiscriminator(nn.Module):
    """``in_features → hidden → hidden → 1`` MLP (ReLU, dropout) giving the logit of "from the target domain"."""

    def __init__(self, in_features: int, hidden: int = 1024, dropout: float = 0.5):
        super().__init__()
        if in_features < 1 or hidden < 1:
            raise ValueError(f"in_features and hidden must be positive, got {in_features}, {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(1)


def domain_loss(source_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the discriminator, source labelled 0 and target 1, averaged over both batches."""
    logits = torch.cat([source_logits, target_logits]).float()
    labels = torch.cat([torch.zeros_like(source_logits), torch.ones_like(target_logits)]).float()
    return F.binary_cross_entropy_with_logits(logits, labels)


class DANN(nn.Module):
    """Backbone + domain discriminator (see the module docstring); the backbone's logits when ``target`` is None."""

    def __init__(self, backbone: nn.Module, discriminator: nn.Module):
        super().__init__()
        for attr in ("forward_features", "classifier"):
            if not hasattr(backbone, attr):
                raise TypeError(f"DANN needs a backbone with {attr!r} (e.g. lib.models.ResNetCIFAR); "
                                f"{type(backbone).__name__} has none")
        self.backbone, self.discriminator = backbone, discriminator

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None, coeff: float = 1.0):
        if target is None:
            return self.backbone(x)
        features = self.backbone.forward_features(torch.cat([x, target]))
        logits = self.backbone.classifier(features[:len(x)])
        domains = self.discriminator(grad_reverse(features, coeff))
        return logits, domains[:len(x)], domains[len(x):]


class BlackBoxPredictor:
    """A source model behind an API: ``predictor(x)`` returns its softmax outputs and nothing else.

    Not an ``nn.Module`` on purpose: it has no parameters to optimise, no ``state_dict`` to copy and no
    features to hook. ``queries`` counts the images it has answered.
    """

    def __init__(self, model: nn.Module):
        self._model = model.eval()
        self.queries = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._model.eval()
        self.queries += len(x)
        return F.softmax(self._model(x).float(), dim=1).detach()

    def to(self, device) -> "BlackBoxPredictor":
        self._model.to(device)
        return self
