"""Prototypical networks (Snell, Swersky, Zemel, NeurIPS 2017).

An encoder ``f`` embeds the support set; the prototype of class ``c`` is the mean embedding of its support
examples (Eq. 1, ``c_k = (1/|S_k|) Σ f(x_i)``), and a query ``x`` gets the logits ``−‖f(x) − c_k‖²`` (Eq. 2
with the squared Euclidean distance, which the paper finds best), trained with cross-entropy over the
episode's classes. ``protonet_logits`` takes a ``scale`` (the logits are ``−d / scale``; 1 in the paper); margin
losses such as the adaptive-margin loss (Li et al., CVPR 2020) add their margins to these logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def prototypes(support_embeddings: torch.Tensor, support_labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """``(n_way, D)`` class means of ``support_embeddings (S, D)`` by episode label ``0 … n_way − 1``."""
    if support_embeddings.ndim != 2 or len(support_embeddings) != len(support_labels):
        raise ValueError(f"support embeddings must be (S, D) with S = {len(support_labels)} labels, got "
                         f"{tuple(support_embeddings.shape)}")
    if len(support_labels) and (support_labels.min() < 0 or support_labels.max() >= n_way):
        bad = sorted({int(v) for v in support_labels if not 0 <= int(v) < n_way})
        raise ValueError(f"support labels must be episode labels in 0..{n_way - 1}, got {bad}")
    counts = torch.bincount(support_labels, minlength=n_way)
    if (counts == 0).any():
        raise ValueError(f"every one of the {n_way} classes needs a support example; counts {counts.tolist()}")
    onehot = F.one_hot(support_labels, n_way).to(support_embeddings.dtype)
    return onehot.t() @ support_embeddings / counts[:, None].to(support_embeddings.dtype)


def protonet_logits(query_embeddings: torch.Tensor, protos: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """``−‖q − c_k‖² / scale`` for every query row and prototype: ``(Q, n_way)``, from the differences themselves
    (no ``‖q‖² − 2qc + ‖c‖²`` cancellation), in fp32 or wider."""
    wide = lambda t: t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    q, c = wide(query_embeddings), wide(protos)
    return -((q[:, None, :] - c[None, :, :]) ** 2).sum(-1) / scale


class ProtoNet(nn.Module):
    """``ProtoNet(encoder)(support, support_labels, query, n_way) -> (Q, n_way)`` logits; the encoder's output is
    flattened per example."""

    def __init__(self, encoder: nn.Module, scale: float = 1.0):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        self.encoder, self.scale = encoder, scale

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                n_way: int) -> torch.Tensor:
        embeddings = self.encoder(torch.cat([support, query])).flatten(1)
        protos = prototypes(embeddings[:len(support)], support_labels, n_way)
        return protonet_logits(embeddings[len(support):], protos, scale=self.scale)
