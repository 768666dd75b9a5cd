"""Graph convolutional network (GCN) of any depth, the baseline whose accuracy collapses as it deepens.

Paper: T. N. Kipf, M. Welling, "Semi-Supervised Classification with Graph Convolutional Networks", ICLR 2017,
arXiv:1609.02907. The depth study it serves is M. Liu, H. Gao, S. Ji, "Towards Deeper Graph Neural Networks",
KDD 2020, arXiv:2007.09296 (Sec. 3: deep GCNs lose accuracy).

One layer (Kipf & Welling, Eq. 2, plus a bias): ``H' = Â H W + b`` with ``Â = D^-1/2 (A + I) D^-1/2`` given
as a sparse tensor. ``GCN(in_features, hidden, num_classes, layers=L)`` stacks ``L`` such layers
(``in -> hidden -> ... -> hidden -> classes``), ReLU after every layer but the last, dropout on the input of every
layer (as in Kipf & Welling's code). The output is the logits ``(N, classes)``; the softmax lives in the loss.

Inputs: ``features`` (N, F), dense or sparse COO/CSR (bag-of-words rows are ~1 % non-zero; dropout on a
sparse input drops stored entries, which is dropout on the dense matrix since dropped zeros stay zero),
``adjacency`` (N, N) sparse COO, or sparse CSR taken to be symmetric (its backward pass reuses it).
Weights use Glorot (Xavier) uniform initialisation, as Kipf & Welling's TensorFlow code.

Biases: every layer has one (zero at initialisation; ``gcn_params`` counts them). Eq. 2 has none, and neither
has Kipf & Welling's TensorFlow code (github.com/tkipf/gcn): its ``GraphConvolution`` defaults to
``bias=False`` and its GCN model does not change that. Their PyTorch port (github.com/tkipf/pygcn) has
biases (``bias=True``, initialised uniformly in ``±1/sqrt(out_features)`` like its weights); this follows
the port. A bias adds ``hidden`` (``num_classes`` for the last layer) parameters per layer, which
``lib.train.full_batch`` decays like the weights.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn


# PyTorch flags its CSR kernels as beta on every first use; the book relies on the tested subset only.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def sparse_aware_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout`` for a dense tensor; for a sparse COO or CSR tensor, the same on its stored values."""
    if not training or p == 0.0:
        return x
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


def matmul(x: torch.Tensor, weight: torch.Tensor, transpose: _CsrTranspose | None = None) -> torch.Tensor:
    """``x @ weight`` for a dense, sparse COO or sparse CSR ``x`` (a CSR ``x`` gets no gradient)."""
    if x.layout == torch.sparse_csr:
        return _CsrLinear.apply(x, weight, transpose or _CsrTranspose())
    return torch.sparse.mm(x, weight) if x.is_sparse else x @ weight


class _SymmetricPropagate(torch.autograd.Function):
    """``Â @ Z`` for a symmetric sparse CSR ``Â``: the backward pass is ``Â @ grad`` again, which avoids the
    transpose that PyTorch's generic sparse backward builds on every call (about 20x slower here)."""

    @staticmethod
    def forward(ctx, adjacency, z):
        ctx.adjacency = adjacency
        return adjacency @ z

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.adjacency @ grad


def propagate(adjacency: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``Â @ Z``; a sparse CSR ``Â`` is taken to be symmetric (D^-1/2 (A + I) D^-1/2 of an undirected graph)."""
    if adjacency.layout == torch.sparse_csr:
        return _SymmetricPropagate.apply(adjacency, z)
    return torch.sparse.mm(adjacency, z)


def gcn_params(in_features: int, hidden: int, num_classes: int, layers: int) -> int:
    """Closed-form parameter count of ``GCN(in_features, hidden, num_classes, layers)`` (weights + biases)."""
    if layers == 1:
        return in_features * num_classes + num_classes
    first, middle, last = in_features * hidden + hidden, hidden * hidden + hidden, hidden * num_classes + num_classes
    return first + (layers - 2) * middle + last


class GraphConv(nn.Module):
    """One GCN layer ``Â (X W) + b`` (the product with W first: it is the cheaper order when F > out)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weight)
        self._transpose = _CsrTranspose()

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return propagate(adjacency, matmul(x, self.weight, self._transpose)) + self.bias


class GCN(nn.Module):
    """``layers`` graph convolutions (1 or more), ReLU between, dropout before each; returns logits."""

    def __init__(self, in_features: int, hidden: int, num_classes: int, *, layers: int = 2, dropout: float = 0.5):
        super().__init__()
        if layers < 1 or hidden < 1 or in_features < 1 or num_classes < 1:
            raise ValueError(f"layers, hidden, in_features and num_classes must be >= 1, got layers={layers}, "
                             f"hidden={hidden}, in_features={in_features}, num_classes={num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = [in_features] + [hidden] * (layers - 1) + [num_classes]
        self.convs = nn.ModuleList(GraphConv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dropout = dropout

    def forward(self, features: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        x = features
        for i, conv in enumerate(self.convs):
            x = conv(sparse_aware_dropout(x, self.dropout, self.training), adjacency)
            if i < len(self.convs) - 1:
                x = torch.relu(x)
        return x


__all__ = ["GCN", "GraphConv", "gcn_params", "matmul", "propagate", "sparse_aware_dropout"]
