"""N-way K-shot episodes (Vinyals et al., NeurIPS 2016), seeded so that every arm sees the same episodes.

An episode draws ``n_way`` classes without replacement, then, inside each, ``k_shot + n_query`` distinct
examples without replacement: the first ``k_shot`` are the support set, the rest the query set. Support and
query indices are ordered class by class (class ``c`` of the episode occupies rows ``c·k … c·k + k − 1`` of
the support set), and the episode's labels are ``0 … n_way − 1`` in the order the classes were drawn.

Episode ``i`` depends only on ``(seed, i)`` (a generator seeded by ``sha256("episode:{seed}:{i}")``, a stream
of its own, distinct from the training loop's per-epoch generators): two arms that name the same seed are evaluated (or trained) on
identical episodes and can be compared episode by episode, and episode 1000 can be drawn without drawing
episodes 0–999. Classes with fewer than ``k_shot + n_query`` examples are never drawn (the sampler says how
many it excluded); the standard evaluation protocols use classes where that never happens.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.streams import stream_generator


@dataclass(frozen=True)
class Episode:
    """Indices into the dataset and the episode's own labels (0 … n_way − 1)."""

    classes: torch.Tensor          # (n_way,) dataset labels, in episode order
    support: torch.Tensor          # (n_way * k_shot,) dataset indices, class by class
    query: torch.Tensor            # (n_way * n_query,) dataset indices, class by class
    support_labels: torch.Tensor   # (n_way * k_shot,) episode labels
    query_labels: torch.Tensor     # (n_way * n_query,) episode labels


class EpisodeSampler:
    """``sampler.episode(i)`` / ``iter(sampler)`` (``episodes`` of them) over ``labels (N,)``."""

    def __init__(self, labels: torch.Tensor, n_way: int, k_shot: int, n_query: int, *, episodes: int = 1,
                 seed: int = 0):
        labels = torch.as_tensor(labels).long()
        for name, value, low in (("n_way", n_way, 2), ("k_shot", k_shot, 1), ("n_query", n_query, 1),
                                 ("episodes", episodes, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.n_way, self.k_shot, self.n_query, self.episodes, self.seed = n_way, k_shot, n_query, episodes, seed
        by_class = {int(c): torch.nonzero(labels == c).flatten() for c in torch.unique(labels)}
        need = k_shot + n_query
        self.pool = {c: idx for c, idx in by_class.items() if len(idx) >= need}
        self.excluded = sorted(set(by_class) - set(self.pool))
        if len(self.pool) < n_way:
            raise ValueError(f"{n_way}-way episodes need {n_way} classes with at least k_shot + n_query = {need} "
                             f"examples; only {len(self.pool)} of {len(by_class)} classes have that many")
        self.class_ids = torch.tensor(sorted(self.pool))

    def __len__(self) -> int:
        return self.episodes

    def episode(self, i: int) -> Episode:
        if not isinstance(i, int) or i < 0:
            raise ValueError(f"episode index must be a non-negative integer, got {i!r}")
        g = stream_generator("episode", self.seed, i)
        classes = self.class_ids[torch.randperm(len(self.class_ids), generator=g)[:self.n_way]]
        support, query = [], []
        for c in classes.tolist():
            idx = self.pool[c]
            chosen = idx[torch.randperm(len(idx), generator=g)[:self.k_shot + self.n_query]]
            support.append(chosen[:self.k_shot])
            query.append(chosen[self.k_shot:])
        ways = torch.arange(self.n_way)
        return Episode(classes, torch.cat(support), torch.cat(query), ways.repeat_interleave(self.k_shot),
                       ways.repeat_interleave(self.n_query))

    def __iter__(self):
        return (self.episode(i) for i in range(self.episodes))
