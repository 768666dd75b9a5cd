"""DANN's training objective as a ``lib.train.fit`` criterion (Ganin et al., JMLR 2016; ``lib.nn.domain_adaptation``).

``fit(DANN(backbone, discriminator), source, test, config, criterion=DANNLoss(), unlabeled=target)``: every
step takes a labelled source batch ``x, y`` and an unlabelled target batch ``x_t`` (``fit``'s ``unlabeled``
stream) and minimises

    CE(G_y(G_f(x)), y) + weight · L_d(G_d(R_λ(G_f(x))), 0; G_d(R_λ(G_f(x_t))), 1),   λ = dann_coefficient(p, gamma)

with ``p`` the training progress in [0, 1) and ``R_λ`` the gradient reversal layer. ``weight = 0`` trains the
source classifier alone: the domain term is still part of the graph with weight 0, so every parameter gets a
(zero) gradient and DistributedDataParallel finds no unused parameter. Its value is kept (detached) for
monitoring as ``last_domain_loss``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.domain_adaptation import DANN, dann_coefficient, domain_loss


class DANNLoss(nn.Module):
    def __init__(self, weight: float = 1.0, gamma: float = 10.0):
        super().__init__()
        if not weight >= 0 or not gamma > 0:
            raise ValueError(f"weight must be >= 0 and gamma > 0, got weight={weight!r}, gamma={gamma!r}")
        self.weight, self.gamma = float(weight), float(gamma)
        self.last_domain_loss = None

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float,
                unlabeled: torch.Tensor | None = None):
        if unlabeled is None:
            raise ValueError("DANNLoss needs target images: train with fit(..., unlabeled=<target ImageData>)")
        net = getattr(model, "module", model)
        net = getattr(net, "_orig_mod", net)            # torch.compile's wrapper
        if not isinstance(net, DANN):
            raise TypeError(f"DANNLoss trains a lib.nn.DANN model, got {type(net).__name__}")
        logits, source_domain, target_domain = model(x, target=unlabeled, coeff=dann_coefficient(progress, self.gamma))
        adversarial = domain_loss(source_domain, target_domain)
        self.last_domain_loss = adversarial.detach()
        return F.cross_entropy(logits.float(), labels) + self.weight * adversarial, logits

    def state_dict(self, *args, **kwargs):
        return {}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return nn.modules.module._IncompatibleKeys([], [])
