"""Continual-learning metrics from the accuracy matrix ``R``.

``R[i, j]`` is the test accuracy on task ``j`` after training on tasks ``0 … i`` (``T × T``; entries above the
diagonal, tasks not yet seen, are not used). With ``T`` tasks:

* average accuracy (Lopez-Paz & Ranzato, NeurIPS 2017, "ACC"): ``(1/T) Σ_j R[T−1, j]``;
* backward transfer (ibid., "BWT"): ``(1/(T−1)) Σ_{j<T−1} (R[T−1, j] − R[j, j])``, negative when learning later
  tasks hurts earlier ones;
* forgetting (Chaudhry, Dokania, Ajanthan, Torr, ECCV 2018, their forgetting measure after the last task): ``(1/(T−1))
  Σ_{j<T−1} max_{l<T−1} (R[l, j] − R[T−1, j])``, the drop from each task's best accuracy to its final one.
"""
from __future__ import annotations

import torch


def _check(R) -> torch.Tensor:
    R = torch.as_tensor(R, dtype=torch.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"the accuracy matrix must be square T x T with T >= 1, got shape {tuple(R.shape)}")
    if torch.isnan(torch.tril(R)).any():
        raise ValueError("the accuracy matrix has NaN on or below its diagonal (a task evaluated after it was seen)")
    return R


def average_accuracy(R) -> float:
    R = _check(R)
    return R[-1].mean().item()


def backward_transfer(R) -> float:
    R = _check(R)
    if len(R) < 2:
        raise ValueError("backward transfer needs at least 2 tasks")
    return (R[-1, :-1] - R.diagonal()[:-1]).mean().item()


def forgetting(R) -> float:
    R = _check(R)
    if len(R) < 2:
        raise ValueError("forgetting needs at least 2 tasks")
    T = len(R)
    best = torch.stack([R[j:T - 1, j].max() for j in range(T - 1)])
    return (best - R[-1, :-1]).mean().item()
