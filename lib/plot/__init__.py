"""The book's standard figures: per-seed points with mean ± 95 % CI per arm, and learning curves."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..repro.stats import mean_ci


def _ok(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r.get("status", "ok") == "ok"]


def arm_points(runs: list[dict], arms: list[str], metric: str = "test_acc", *, ax=None, ylabel: str | None = None,
               title: str | None = None):
    """Each seed's final ``metric`` as a dot, with the arm's mean and 95 % t-interval as a bar.

    Seeds are connected across arms by faint lines, so a paired comparison can be read off the figure.
    """
    ax = ax or plt.subplots(figsize=(1.3 * len(arms) + 2, 3.4))[1]
    runs = _ok(runs)
    by_seed: dict[int, list[tuple[int, float]]] = {}
    for i, arm in enumerate(arms):
        values = [r["metrics"][metric] for r in runs if r["arm"] == arm]
        seeds = [r["seed"] for r in runs if r["arm"] == arm]
        for s, v in zip(seeds, values):
            by_seed.setdefault(s, []).append((i, v))
        jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.zeros(len(values))
        ax.scatter(i + jitter, values, s=14, color=f"C{i}", alpha=0.75, zorder=3)
        if values:
            m, lo, hi = mean_ci(values)
            if lo == lo:  # not NaN: at least two seeds
                ax.errorbar(i + 0.22, m, yerr=[[m - lo], [hi - m]], fmt="o", color="black", capsize=4, zorder=4)
            else:
                ax.plot(i + 0.22, m, "o", color="black")
    for points in by_seed.values():
        xs, ys = zip(*points)
        ax.plot(xs, ys, color="grey", alpha=0.25, lw=0.8, zorder=1)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel(ylabel or metric)
    ax.set_xlabel("arm (dots: seeds; black: mean ± 95% CI)")
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return ax


def learning_curves(runs: list[dict], arms: list[str], key: str = "test_acc", *, ax=None, ylabel: str | None = None,
                    title: str | None = None):
    """Mean over seeds of ``history[key]`` per epoch for each arm, with a band from min to max over seeds."""
    ax = ax or plt.subplots(figsize=(5.5, 3.4))[1]
    runs = _ok(runs)
    for i, arm in enumerate(arms):
        curves = [[h.get(key, np.nan) for h in r["history"]] for r in runs if r["arm"] == arm]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        values = np.array([c[:length] for c in curves], dtype=float)
        epochs = np.arange(1, length + 1)
        mask = ~np.isnan(values).any(axis=0)
        ax.plot(epochs[mask], values.mean(axis=0)[mask], color=f"C{i}", label=arm)
        ax.fill_between(epochs[mask], values.min(axis=0)[mask], values.max(axis=0)[mask], color=f"C{i}", alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or key)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


__all__ = ["arm_points", "learning_curves"]
