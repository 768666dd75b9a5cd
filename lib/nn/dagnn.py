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

import warnings

import torch
from torch import nn


# PyTorch flags its CSR kernels as beta on every first use; the book relies on the tested subset only.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    # on a sparse input, dropping stored entries is dropout on the dense matrix (dropped zeros stay zero)
    if x.layout == torch.sparse_csr:
        return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), nn.functional.dropout(x.values(), p, True),
                                       x.shape, check_invariants=False)
    if x.is_sparse:
        x = x.coalesce()
        return torch.sparse_coo_tensor(x.indices(), nn.functional.dropout(x.values(), p, True), x.shape,
                                       check_invariants=False)
    return nn.functional.dropout(x, p, True)


class _CsrLinear(torch.autograd.Function):
    """``X @ W`` for a sparse CSR ``X`` (no gradient to ``X``); the backward ``X^T @ grad`` uses a transposed
    copy of ``X`` built from a cached permutation, instead of PyTorch's generic per-call conversion."""

    @staticmethod
    def forward(ctx, x, weight, transpose):
        ctx.x_t = transpose(x) if ctx.needs_input_grad[1] else None
        return x @ weight

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.x_t @ grad, None


class _CsrTranspose:
    """Transposes CSR matrices that share one sparsity structure (dropout changes only the values)."""

    def __init__(self):
        self.key = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        crow, col = x.crow_indices(), x.col_indices()
        key = (crow.data_ptr(), col.data_ptr(), tuple(x.shape), col.numel())
        if key != self.key:
            n, f = x.shape
            row = torch.repeat_interleave(torch.arange(n, device=col.device), crow.diff())
            self.perm = torch.argsort(col * n + row)
            self.rows = row[self.perm]
            self.ccol = torch.zeros(f + 1, dtype=crow.dtype, device=col.device)
            self.ccol[1:] = torch.bincount(col, minlength=f).cumsum(0)
            self.key = key
        return torch.sparse_csr_tensor(self.ccol, self.rows, x.values()[self.perm], (x.shape[1], x.shape[0]),
                                       check_invariants=False)


class _SymmetricPropagate(torch.autograd.Function):
    """``Â @ Z`` for a symmetric sparse CSR ``Â``; the backward pass is ``Â @ grad`` (no transpose to build)."""

    @staticmethod
    def forward(ctx, adjacency, z):
        ctx.adjacency = adjacency
        return adjacency @ z

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.adjacency @ grad


def _propagate(adjacency: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    if adjacency.layout == torch.sparse_csr:
        return _SymmetricPropagate.apply(adjacency, z)
    return torch.sparse.mm(adjacency, z)


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
        x = _dropout(features, self.dropout, self.training)
        if x.layout == torch.sparse_csr:
            x = _CsrLinear.apply(x, self.lin1.weight.t(), self._transpose) + self.lin1.bias
        elif x.is_sparse:
            x = torch.sparse.mm(x, self.lin1.weight.t()) + self.lin1.bias
        else:
            x = self.lin1(x)
        x = nn.functional.dropout(torch.relu(x), self.dropout, self.training)
        return self.lin2(x)

    def hops(self, features: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``H`` = [Z, ÂZ, ..., Â^K Z] stacked as (N, K+1, c)."""
        h = [self.transform(features)]
        for _ in range(self.k):
            h.append(_propagate(adjacency, h[-1]))
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
