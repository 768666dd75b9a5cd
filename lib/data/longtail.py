"""Long-tailed subsets, shot groups and re-balancing samplers for "Decoupling Representation and Classifier".

Paper: B. Kang, S. Xie, M. Rohrbach, Z. Yan, A. Gordo, J. Feng, Y. Kalantidis, "Decoupling Representation
and Classifier for Long-Tailed Recognition", ICLR 2020, arXiv:1910.09217; official code
github.com/facebookresearch/classifier-balancing.

* ``longtail_counts`` / ``longtail_indices`` / ``longtail_subset`` — the exponential profile of the
  CIFAR-LT benchmarks (Cui et al., CVPR 2019, arXiv:1901.05555; Cao et al., NeurIPS 2019, arXiv:1906.07413):
  class ``c`` of ``C`` keeps ``n_c = n_max · imbalance^(-c / (C - 1))`` examples (rounded to the nearest
  integer, at least 1), so the first class has ``n_max`` and the last ``n_max / imbalance``. The rows of a
  class are a prefix of one seeded permutation of that class: deterministic for a seed, and nested (a
  smaller ``n_max`` or a larger imbalance keeps a subset of the rows).
* ``shot_groups`` — many / medium / few-shot classes. The paper (Sec. 5.1, ImageNet-LT) uses training
  counts > 100, 20..100 and < 20 (``rule="thresholds"``). A 10-class CIFAR-LT subset has no such spread at a
  reduced ``n_max``, so ``rule="thirds"`` (the default) sorts classes by training count and takes the
  ``round(C / 3)`` most frequent as many-shot, the ``round(C / 3)`` least frequent as few-shot and the rest as
  medium (3 / 4 / 3 classes for C = 10), independent of ``n_max`` and of the imbalance factor.
* ``group_accuracy`` — per-class top-1 accuracy averaged within each group and over all classes.
* Samplers for ``lib.train.fit``'s ``sampler`` hook (``sampler(generator, epoch) -> LongTensor`` with
  ``len(sampler)`` indices per epoch), all drawing only from the given generator:
  ``PowerSampler(labels, q)`` — Eq. (1), ``p_j = n_j^q / sum_i n_i^q`` is the probability of drawing
  class ``j``, then an example uniformly inside it; ``q = 1`` instance-balanced (``InstanceBalancedSampler``,
  a plain permutation as the default loop), ``q = 0`` class-balanced (``ClassBalancedSampler``), ``q = 1/2``
  square-root (``SquareRootSampler``); ``ProgressivelyBalancedSampler`` — Eq. (2),
  ``p_j(t) = (1 - t/T) p_j^IB + (t/T) p_j^CB`` over epochs ``t`` of ``T``.

Deviation from the official sampler (``data/ClassAwareSampler.py``): that code cycles through classes and
through a shuffled list per class (4 examples of a class in a row) and makes an epoch ``C · max_j n_j``
long. Here classes are drawn independently with the probabilities of Eq. (1) and examples with
replacement inside their class, and an epoch has ``len(labels)`` indices by default (``num_samples``
changes it), so a re-balanced arm takes as many steps as the instance-balanced one.
"""
from __future__ import annotations

import math

import torch

SHOT_RULES = ("thirds", "thresholds")


def _check_labels(labels: torch.Tensor) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be a 1-D integer tensor, got shape {tuple(labels.shape)} dtype {labels.dtype}")
    if len(labels) == 0:
        raise ValueError("labels is empty")
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min().item()}")
    return labels.long()


def longtail_counts(num_classes: int, n_max: int, imbalance: float) -> list[int]:
    """Examples kept per class: ``round(n_max · imbalance^(-c / (C - 1)))`` for ``c = 0..C-1`` (at least 1)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if isinstance(n_max, bool) or not isinstance(n_max, int) or n_max < 1:
        raise ValueError(f"n_max must be a positive integer, got {n_max!r}")
    if isinstance(imbalance, bool) or not isinstance(imbalance, (int, float)) or not imbalance >= 1:
        raise ValueError(f"imbalance must be a number >= 1 (n_max / n_min; 1 = balanced), got {imbalance!r}")
    return [max(1, int(math.floor(n_max * imbalance ** (-c / (num_classes - 1)) + 0.5))) for c in range(num_classes)]


def longtail_indices(labels: torch.Tensor, n_max: int, imbalance: float, seed: int = 0,
                     order: list[int] | None = None) -> torch.Tensor:
    """Sorted row indices of a long-tailed subset of ``labels`` (the profile of ``longtail_counts``).

    ``order`` lists the classes from most to least frequent (default ``0..C-1``). Class ``order[c]`` keeps
    the first ``n_c`` rows of a permutation of its rows drawn from a generator seeded with ``seed`` (one
    permutation per class, drawn in class-id order), so the subset is deterministic and nested.
    """
    labels = _check_labels(labels)
    classes = torch.unique(labels).tolist()
    order = list(classes) if order is None else [int(c) for c in order]
    if sorted(order) != classes:
        raise ValueError(f"order must be a permutation of the classes present {classes}, got {order}")
    counts = longtail_counts(len(classes), n_max, imbalance)
    generator = torch.Generator().manual_seed(seed)
    perms = {}
    for c in classes:
        rows = torch.nonzero(labels == c).flatten()
        perms[c] = rows[torch.randperm(len(rows), generator=generator)]
    chosen = []
    for rank, c in enumerate(order):
        if counts[rank] > len(perms[c]):
            raise ValueError(f"class {c} has {len(perms[c])} examples, fewer than the {counts[rank]} the profile "
                             f"(n_max={n_max}, imbalance={imbalance}) asks for at rank {rank}")
        chosen.append(perms[c][:counts[rank]])
    return torch.cat(chosen).sort().values


def longtail_subset(data, n_max: int, imbalance: float, seed: int = 0, order: list[int] | None = None):
    """The long-tailed subset of an ``ImageData`` (``data.subset(longtail_indices(...))``)."""
    return data.subset(longtail_indices(data.labels, n_max, imbalance, seed, order))


def unused_balanced_indices(labels: torch.Tensor, used: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``per_class`` rows of every class that are not in ``used`` (a seeded choice).

    For a balanced validation split drawn from the training rows a long-tailed subset leaves out.
    """
    labels = _check_labels(labels)
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    free = torch.ones(len(labels), dtype=torch.bool)
    free[torch.as_tensor(used, dtype=torch.long)] = False
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels).tolist():
        rows = torch.nonzero((labels == c) & free).flatten()
        if per_class > len(rows):
            raise ValueError(f"class {c} has {len(rows)} unused examples, fewer than per_class={per_class}")
        chosen.append(rows[torch.randperm(len(rows), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def class_counts(labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Examples per class, ``(num_classes,)`` int64."""
    labels = _check_labels(labels)
    return torch.bincount(labels, minlength=num_classes or 0)


def shot_groups(counts, rule: str = "thirds", many_above: int = 100, few_below: int = 20) -> dict[str, list[int]]:
    """Class ids of the ``many`` / ``medium`` / ``few``-shot groups from training counts per class.

    ``rule="thirds"``: by rank of the count (ties broken by class id), ``round(C/3)`` classes each for many
    and few, the rest medium. ``rule="thresholds"``: the paper's ImageNet-LT split, many ``> many_above``,
    few ``< few_below``, medium otherwise.
    """
    counts = torch.as_tensor(counts)
    if counts.ndim != 1 or len(counts) < 3:
        raise ValueError(f"counts must be a 1-D tensor of at least 3 class counts, got shape {tuple(counts.shape)}")
    if rule == "thirds":
        ranked = sorted(range(len(counts)), key=lambda c: (-int(counts[c]), c))
        k = round(len(counts) / 3)
        groups = {"many": ranked[:k], "medium": ranked[k:len(counts) - k], "few": ranked[len(counts) - k:]}
    elif rule == "thresholds":
        if not few_below <= many_above:
            raise ValueError(f"few_below ({few_below}) must not exceed many_above ({many_above})")
        groups = {"many": [c for c in range(len(counts)) if counts[c] > many_above],
                  "medium": [c for c in range(len(counts)) if few_below <= counts[c] <= many_above],
                  "few": [c for c in range(len(counts)) if counts[c] < few_below]}
    else:
        raise ValueError(f"unknown shot-group rule {rule!r}; accepted: {', '.join(SHOT_RULES)}")
    return {k: sorted(v) for k, v in groups.items()}


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Top-1 accuracy (%) of every class, ``(num_classes,)`` float64 (NaN for a class absent from ``labels``)."""
    predictions, labels = torch.as_tensor(predictions).long(), _check_labels(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ in shape")
    total = torch.bincount(labels, minlength=num_classes).double()
    right = torch.bincount(labels[predictions == labels], minlength=num_classes).double()
    return torch.where(total > 0, 100.0 * right / total.clamp(min=1), torch.full_like(total, float("nan")))


def group_accuracy(predictions: torch.Tensor, labels: torch.Tensor, groups: dict[str, list[int]],
                   num_classes: int) -> dict[str, float]:
    """``{"acc", "<group>_acc", ...}``: mean per-class accuracy (%) over all classes and within each group.

    On a balanced test set ``acc`` is the plain top-1 accuracy, as in the paper's "All" column.
    """
    per_class = per_class_accuracy(predictions, labels, num_classes)
    result = {"acc": per_class.nanmean().item()}
    for name, members in groups.items():
        result[f"{name}_acc"] = per_class[members].nanmean().item() if members else float("nan")
    return result


class PowerSampler:
    """Class-aware sampling with ``p_j = n_j^q / sum_i n_i^q`` (Eq. 1 of the paper) for ``fit``'s sampler hook.

    Each index is drawn by choosing a class with probability ``p_j`` and then one of its examples
    uniformly (with replacement). ``num_samples`` indices per epoch (default ``len(labels)``).
    """

    def __init__(self, labels: torch.Tensor, q: float, num_samples: int | None = None):
        labels = _check_labels(labels)
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 1:
            raise ValueError(f"q must be a number in [0, 1] (1 instance-, 1/2 square-root-, 0 class-balanced), got {q!r}")
        num_samples = len(labels) if num_samples is None else num_samples
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        self.labels, self.q, self.num_samples = labels, float(q), num_samples
        counts = torch.bincount(labels)
        self.classes = torch.nonzero(counts).flatten()
        self.counts = counts[self.classes]
        self.members = [torch.nonzero(labels == c).flatten() for c in self.classes.tolist()]
        # rows of the examples grouped by class, and where each class starts: one gather per epoch
        self._rows = torch.cat(self.members)
        self._starts = torch.cumsum(self.counts, 0) - self.counts

    def class_probabilities(self, epoch: int = 0) -> torch.Tensor:
        """``p_j`` over the classes present (``self.classes``), float64, summing to 1."""
        weights = self.counts.double() ** self.q
        return weights / weights.sum()

    def __len__(self) -> int:
        return self.num_samples

    def __call__(self, generator: torch.Generator, epoch: int) -> torch.Tensor:
        probs = self.class_probabilities(epoch)
        which = torch.multinomial(probs, self.num_samples, replacement=True, generator=generator)
        offsets = (torch.rand(self.num_samples, generator=generator, dtype=torch.float64)
                   * self.counts[which].double()).long().clamp(max=self.counts[which] - 1)
        return self._rows[self._starts[which] + offsets]


class InstanceBalancedSampler(PowerSampler):
    """``q = 1``: every example equally likely. An epoch is a permutation of all rows (like ``fit``'s
    default), which draws each class with exactly ``p_j = n_j / N``."""

    def __init__(self, labels: torch.Tensor, num_samples: int | None = None):
        super().__init__(labels, 1.0, num_samples)

    def __call__(self, generator: torch.Generator, epoch: int) -> torch.Tensor:
        n = len(self.labels)
        reps = -(-self.num_samples // n)
        return torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])[:self.num_samples]


class ClassBalancedSampler(PowerSampler):
    """``q = 0``: every class equally likely, ``p_j = 1 / C``."""

    def __init__(self, labels: torch.Tensor, num_samples: int | None = None):
        super().__init__(labels, 0.0, num_samples)


class SquareRootSampler(PowerSampler):
    """``q = 1/2``: ``p_j`` proportional to ``sqrt(n_j)``."""

    def __init__(self, labels: torch.Tensor, num_samples: int | None = None):
        super().__init__(labels, 0.5, num_samples)


class ProgressivelyBalancedSampler(PowerSampler):
    """Eq. (2): ``p_j(t) = (1 - t/T) n_j / N + (t/T) / C`` at epoch ``t`` of ``epochs`` (= T)."""

    def __init__(self, labels: torch.Tensor, epochs: int, num_samples: int | None = None):
        super().__init__(labels, 1.0, num_samples)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        self.epochs = epochs

    def class_probabilities(self, epoch: int = 0) -> torch.Tensor:
        if not 0 <= epoch < self.epochs:
            raise ValueError(f"epoch must be in [0, {self.epochs}), got {epoch!r}")
        t = epoch / self.epochs
        instance = self.counts.double() / self.counts.sum()
        return (1 - t) * instance + t / len(self.counts)


SAMPLERS = {"ib": InstanceBalancedSampler, "cb": ClassBalancedSampler, "sr": SquareRootSampler,
            "pb": ProgressivelyBalancedSampler}


def create_sampler(name: str, labels: torch.Tensor, *, epochs: int | None = None, num_samples: int | None = None):
    """A sampler by name: ``ib`` (q = 1), ``cb`` (q = 0), ``sr`` (q = 1/2), ``pb`` (Eq. 2, needs ``epochs``)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; accepted: {', '.join(SAMPLERS)}")
    if name == "pb":
        if epochs is None:
            raise ValueError("the progressively-balanced sampler 'pb' needs epochs")
        return ProgressivelyBalancedSampler(labels, epochs, num_samples)
    return SAMPLERS[name](labels, num_samples)


__all__ = ["SAMPLERS", "SHOT_RULES", "ClassBalancedSampler", "InstanceBalancedSampler", "PowerSampler",
           "ProgressivelyBalancedSampler", "SquareRootSampler", "class_counts", "create_sampler", "group_accuracy",
           "longtail_counts", "longtail_indices", "longtail_subset", "per_class_accuracy", "shot_groups",
           "unused_balanced_indices"]
