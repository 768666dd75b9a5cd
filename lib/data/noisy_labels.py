"""Symmetric label noise for the robustness claims of the losses part (a seeded, checksummed corruption).

``symmetric_noise(labels, rate, num_classes, seed)`` flips exactly ``round(rate · N)`` labels, chosen
uniformly without replacement, each to a class drawn uniformly from the ``K − 1`` *other* classes: the
realised noise rate is ``rate`` exactly (the convention "symmetric flipping" of e.g. Han et al., Co-teaching,
NeurIPS 2018, in its fixed-count form), and each flipped label differs from the clean one. The draw depends
only on ``(seed, N, rate, K)``, so every arm and chapter that names the same seed trains on the same noisy
labels. ``label_digest`` is the sha256 of a label tensor, recorded with the results like the data checksums.
"""
from __future__ import annotations

import hashlib

import torch


def symmetric_noise(labels: torch.Tensor, rate: float, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(noisy_labels, flipped)``: a copy of ``labels (N,)`` with ``round(rate·N)`` labels flipped, and the mask."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate must lie in [0, 1], got {rate!r}")
    if num_classes < 2:
        raise ValueError(f"label noise needs at least 2 classes, got {num_classes}")
    labels = torch.as_tensor(labels)
    device, labels = labels.device, labels.cpu()
    if labels.ndim != 1 or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be a 1-d integer tensor, got shape {tuple(labels.shape)} dtype {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    generator = torch.Generator().manual_seed(seed)
    n_flip = round(rate * len(labels))
    chosen = torch.randperm(len(labels), generator=generator)[:n_flip]
    shift = torch.randint(1, num_classes, (n_flip,), generator=generator)      # 1..K-1: never the clean class
    noisy = labels.clone().long()
    noisy[chosen] = (noisy[chosen] + shift) % num_classes
    flipped = torch.zeros(len(labels), dtype=torch.bool)
    flipped[chosen] = True
    return noisy.to(labels.dtype).to(device), flipped.to(device)


def label_digest(labels: torch.Tensor) -> str:
    """sha256 of the labels as little-endian int64 (stable across dtypes and platforms)."""
    return hashlib.sha256(torch.as_tensor(labels).long().numpy().astype("<i8").tobytes()).hexdigest()


NOISE_RATES = (0.2, 0.4)


def noisy_train(dataset: str, rate: float, *, per_class: int | None = None, subset_seed: int = 0):
    """``(data, clean_labels)``: the training split of ``dataset`` (optionally its balanced subset, the same rows
    ``lib.data.load`` returns) with symmetric label noise at ``rate`` as ``data.labels``, and the clean labels of
    the same rows. The noise is drawn once over the *whole* split with the seed of the card
    ``data_cards/generated/<dataset>-noisy-labels.md`` and checked against the card's digest.

    The noise is a property of the dataset, not of a subset: a subset keeps the noisy labels of its rows, so its
    realised noise rate is close to, not exactly, ``rate``; ``source["noise_rate_realised"]`` records it.
    """
    from .cards import load_card
    from .domains import load_generated_card
    from .images import ChecksumError, ImageData, balanced_subset, load, load_labels

    card = load_generated_card(f"{dataset}-noisy-labels")
    rates = {int(k.removeprefix("train-noise")) / 100: k for k in card.splits if k.startswith("train-noise")}
    if rate not in rates:
        raise ValueError(f"noise rate {rate!r} has no split in {card.path}; accepted: "
                         f"{', '.join(str(r) for r in sorted(rates))}")
    key = rates[rate]
    spec = card.splits[key]
    labels = load_labels(dataset, "train")              # the whole split's labels, no image decoded
    num_classes = len(load_card(dataset).label_names)
    noisy, flipped = symmetric_noise(labels, rate, num_classes, card.seed)
    if label_digest(noisy) != spec["sha256"]:
        raise ChecksumError(f"generated {card.name}/{key} has sha256 {label_digest(noisy)}, but its card {card.path} "
                            f"states {spec['sha256']}")
    if per_class is None:
        data, rows = load(dataset, "train"), torch.arange(len(labels))
    else:
        data, rows = load(dataset, "train", per_class=per_class, subset_seed=subset_seed), \
            balanced_subset(labels, per_class, subset_seed)
    if not torch.equal(data.labels, labels[rows]):
        raise ChecksumError(f"{dataset}/train: the decoded subset's labels differ from the label column's rows")
    data = ImageData(data.images, noisy[rows], data.classes, data.name, data.split,
                     {**data.source, "label_noise": {"card": card.name, "rate": rate, "seed": card.seed,
                                                     "labels_sha256": spec["sha256"],
                                                     "noise_rate_realised": flipped[rows].float().mean().item()}})
    return data, labels[rows]
