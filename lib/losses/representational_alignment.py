"""Linear CKA and the layer mapping of representational guidance (Subramaniam et al., NeurIPS 2025).

Paper: V. Subramaniam, D. Mayo, C. Conwell, T. Poggio, B. Katz, B. Cheung, A. Barbu, "Training the
Untrainable: Introducing Inductive Bias via Representational Alignment", arXiv:2410.20035; official code
github.com/vsubramaniam851/untrainable-networks (``rep_sim/``).

Linear centred kernel alignment (Kornblith, Norouzi, Lee, Hinton, ICML 2019, CKA with linear kernels)
between representations ``X (N, p)`` and ``Y (N, q)`` of the same ``N`` inputs::

    CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L)),   K = X Xᵀ, L = Y Yᵀ,
    HSIC(K, L) = tr(H K H · H L H)  (the 1/(N−1)² factors cancel),  H = I − 11ᵀ/N

It lies in [0, 1], is 1 for ``Y = X``, and is invariant to orthogonal transforms and isotropic scaling of
either argument (not to arbitrary invertible linear maps). ``linear_cka`` computes it from the N × N Gram
matrices of the column-centred features (``H X Xᵀ H = X_c X_cᵀ``), which stays cheap for wide conv feature
maps (``p = C·H·W``) at batch sizes in the hundreds, and in fp32 or fp64 as given (never under autocast).

Guidance: the target network's loss is ``CE + α · Σ (1 − CKA(target_l, guide_l))`` over pairs of layers (the
official ``image_class.py`` weights the sum by ``rep_sim_alpha``). ``layer_mapping`` pairs the guide's layers
with the target's by spreading them evenly, as the official ``layer_supervision`` does (guide layer ``i`` of
``G`` → target layer ``round(i · (T − 1)/(G − 1))``, Python's round-half-to-even included). When the guide has
more layers than the target, several guide layers map to one target layer; the official ``layermap_sim``
stores one score per *target* layer, so only the last guide layer mapped to it counts. A chapter that sums
over every pair of ``layer_mapping`` instead must say so.
"""
from __future__ import annotations

import torch


def linear_cka(x: torch.Tensor, y: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Linear CKA between ``x (N, ...)`` and ``y (N, ...)`` (flattened per sample); differentiable.

    ``eps`` is added under the square root of the denominator (0: exact; a constant representation then gives
    NaN, which callers must not feed in).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA compares representations of the same inputs: got {x.shape[0]} and {y.shape[0]} rows")
    if x.shape[0] < 2:
        raise ValueError(f"CKA needs at least 2 inputs, got {x.shape[0]}")
    with torch.autocast(x.device.type, enabled=False):
        dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
        x = x.reshape(x.shape[0], -1).to(dtype)
        y = y.reshape(y.shape[0], -1).to(dtype)
        x = x - x.mean(0, keepdim=True)
        y = y - y.mean(0, keepdim=True)
        k, l = x @ x.t(), y @ y.t()
        return (k * l).sum() / torch.sqrt((k * k).sum() * (l * l).sum() + eps)


def layer_mapping(guide_layers: list, target_layers: list) -> dict:
    """Guide layer → target layer, the guide's layers spread evenly over the target's (official mapping)."""
    if not guide_layers or not target_layers:
        raise ValueError(f"both networks need at least one layer; got {len(guide_layers)} guide and "
                         f"{len(target_layers)} target layers")
    step = (len(target_layers) - 1) / (len(guide_layers) - 1) if len(guide_layers) > 1 else 1
    return {g: target_layers[min(round(i * step), len(target_layers) - 1)] for i, g in enumerate(guide_layers)}
