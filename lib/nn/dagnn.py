"""Deep Adaptive Graph Neural Network (DAGNN): transform once, propagate K hops, weigh the hops per node.

Paper: M. Liu, H. Gao, S. Ji, "Towards Deeper Graph Neural Networks", KDD 2020, arXiv:2007.09296.
Official code: github.com/mengliu1998/DeeperGNN (``DeeperGNN/dagnn.py``).

DAGNN (Sec. 4) decouples the feature transformation from the propagation, so a large receptive field costs
no extra weights:

* ``Z = MLP(X)`` in R^{n x c}: dropout, linear to ``hidden``, ReLU, dropout, linear to the ``c`` classes;
* ``H_l = Â^l Z`` for ``l = 0 .. K``, ``Â = D^-1/2 (A + I) D^-1/2``, stacked into ``H`` in R^{n x (K+1) x c};
* adaptive adjustment: retention scores ``S = sigmoid(H s)`` in R^{n x (K+1)}, one per node and hop, with a
  trainable projection ``s`` in R^{c x 1};
* ``X_out = softmax(sum_l S[:, l] H_l)``.

Where the official code differs from the paper, this follows the code:

* the projection ``s`` is a linear layer with a bias (``Linear(c, 1)``), so ``S = sigmoid(H s + b)``;
* the softmax is left to the loss: ``forward`` returns the logits ``sum_l S_l H_l`` (the official code returns
  their log-softmax and uses the NLL loss, which is the same cross-entropy);
* every linear layer keeps PyTorch's default initialisation.

Shapes: ``features`` (N, F) dense or sparse COO/CSR, ``adjacency`` (N, N) sparse COO, or sparse CSR taken to be
symmetric (the backward pass of ``Â Z`` reuses ``Â``, as D^-1/2 (A + I) D^-1/2 of an undirected graph is);
output (N, c).

``smoothness_metric`` is the paper's smoothness metric value SMV_G (Sec. 3.1): with
``D(x_i, x_j) = 1/2 || x_i / ||x_i|| - x_j / ||x_j|| ||`` (in [0, 1]), ``SMV_i = mean_{j != i} D(x_i, x_j)``
and ``SMV_G = mean_i SMV_i``. A lower value means smoother (more alike) node representations.
"""
from __future__ import annotations

import torch
from torch import nn

from .gcn import _CsrTranspose, matmul, propagate, sparse_aware_dropout


def dagnn_params(in_features: int, hidden: int, num_classes: int) -> int:
    """Closed-form parameter count of ``DAGNN``: two linear layers and the scoring projection; independent of K."""
    return (in_features * hidden + hidden) + (hidden * num_classes + num_classes) + (num_classes + 1)


class DAGNN(nn.Module):
    """``Z = MLP(X)``, ``H_l = Â^l Z`` (l = 0..K), output ``sum_l sigmoid(H_l s + b) H_l`` (logits)."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, *, k: int = 10, dropout: float = 0.5):
        super().__init__()
        if k < 0:
            raise ValueError(f"k (propagation hops) must be >= 0, got {k}")
        if hidden < 1 or in_features < 1 or num_classes < 1:
            raise ValueError(f"hidden, in_features and num_classes must be >= 1, got hidden={hidden}, "
                             f"in_features={in_features}, num_classes={num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.lin1 = nn.Linear(in_features, hidden)
        self.lin2 = nn.Linear(hidden, num_classes)
        self.proj = nn.Linear(num_classes, 1)
        self.k = k
        self.dropout = dropout
        self._transpose = _CsrTranspose()

    def transform(self, features: torch.Tensor) -> torch.Tensor:
        """``Z = MLP(X)`` (N, c)."""
        x = sparse_aware_dropout(features, self.dropout, self.training)
        if x.layout == torch.sparse_csr or x.is_sparse:
            x = matmul(x, self.lin1.weight.t(), self._transpose) + self.lin1.bias
        else:
            x = self.lin1(x)
        x = nn.functional.dropout(torch.relu(x), self.dropout, self.training)
        return self.lin2(x)

    def hops(self, features: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``H`` = [Z, ÂZ, ..., Â^K Z] stacked as (N, K+1, c)."""
        h = [self.transform(features)]
        for _ in range(self.k):
            h.append(propagate(adjacency, h[-1]))
        return torch.stack(h, dim=1)

    def retention_scores(self, h: torch.Tensor) -> torch.Tensor:
        """``S = sigmoid(H s + b)`` (N, K+1): how much of each hop every node keeps."""
        return torch.sigmoid(self.proj(h)).squeeze(-1)

    def forward(self, features: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        h = self.hops(features, adjacency)
        return (self.retention_scores(h).unsqueeze(-1) * h).sum(1)


@torch.no_grad()
def smoothness_metric(x: torch.Tensor, chunk: int = 1024) -> float:
    """SMV_G of node representations ``x`` (N, d), N >= 2 (module docstring; Liu et al. 2020, Sec. 3.1).

    All-zero rows are left at zero after normalisation (their distance to a unit vector is 1/2).
    """
    x = x.to_dense() if x.is_sparse else x
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"smoothness_metric needs an (N, d) tensor with N >= 2, got shape {tuple(x.shape)}")
    x = x.double()
    unit = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    n = unit.shape[0]
    total = 0.0
    for start in range(0, n, chunk):
        total += (0.5 * torch.cdist(unit[start:start + chunk], unit)).sum().item()   # D(x_i, x_i) = 0
    return total / (n * (n - 1))


__all__ = ["DAGNN", "dagnn_params", "smoothness_metric"]
