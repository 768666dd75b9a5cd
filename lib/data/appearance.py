"""Appearance-shifted copies of a test set: the same images and labels, another look (IBN-Net's invariance tests).

IBN-Net (Pan et al., ECCV 2018, Sec. 3–4) argues that instance normalisation removes appearance — colour,
contrast, brightness, style — while keeping content. These shifts change appearance and keep content, each a
deterministic function of the image (torchvision's ``transforms.v2.functional`` on uint8 tensors):

* ``grayscale`` — ITU-R 601 luma, replicated to three channels (``rgb_to_grayscale``);
* ``low-contrast`` — contrast halved towards the image's mean grey level (``adjust_contrast(·, 0.5)``);
* ``channel-permuted`` — RGB → BRG, a fixed re-colouring that keeps the set of channel statistics, permuted;
* ``inverted`` — ``255 − x`` (a negative-scale change: instance normalisation does *not* undo it).

``load_shifted(dataset, split, shift, per_class=k)`` returns the shifted rows of exactly the subset that
``lib.data.load(dataset, split, per_class=k)`` returns, so every shifted image is paired with its clean one.
A shifted split is a generated dataset: ``data_cards/generated/<dataset>-shifted.md`` holds the sha256 of the
whole shifted split, which is checked whenever it is generated (``tests/data/test_appearance.py``
regenerates every split).
"""
from __future__ import annotations

import torch
from filelock import FileLock

from .domains import load_generated_card, tensor_digest
from .images import ChecksumError, ImageData, balanced_subset, cache_dir, load, load_cache, save_cache

SHIFTS = ("grayscale", "low-contrast", "channel-permuted", "inverted")


def appearance_shift(images: torch.Tensor, shift: str) -> torch.Tensor:
    """``images (N, 3, H, W)`` uint8 with appearance ``shift`` (one of ``SHIFTS``), uint8."""
    from torchvision.transforms.v2 import functional as TF

    if shift not in SHIFTS:
        raise ValueError(f"unknown appearance shift {shift!r}; accepted: {', '.join(SHIFTS)}")
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
    if shift == "grayscale":
        return TF.rgb_to_grayscale(images, num_output_channels=3).contiguous()
    if shift == "low-contrast":
        return TF.adjust_contrast(images, 0.5).contiguous()
    if shift == "channel-permuted":
        return images[:, [2, 0, 1]].contiguous()
    return (255 - images).contiguous()


def load_shifted(dataset: str, split: str, shift: str, *, per_class: int | None = None,
                 subset_seed: int = 0) -> ImageData:
    """The ``shift``ed ``split`` of ``dataset`` (checked against its card), optionally the balanced subset."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown appearance shift {shift!r}; accepted: {', '.join(SHIFTS)}")
    card = load_generated_card(f"{dataset}-shifted")
    key = f"{split}-{shift}"
    if key not in card.splits:
        raise ValueError(f"{dataset}-shifted has no split {key!r}; accepted: {', '.join(card.splits)}")
    spec = card.splits[key]
    base = load(dataset, split)
    path = cache_dir() / "generated" / card.name / f"{key}-v{card.generator_version}-{spec['sha256'][:16]}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        cached = load_cache(path, keys=("images", "labels"))
        if cached is None:
            images = appearance_shift(base.images, shift)
            digest = tensor_digest(images, base.labels)
            if digest != spec["sha256"]:
                raise ChecksumError(f"generated {card.name}/{key} has sha256 {digest}, but its card {card.path} states "
                                    f"{spec['sha256']}: the transform, its source or torchvision changed")
            cached = {"images": images, "labels": base.labels.clone()}
            save_cache(cached, path)
    data = ImageData(cached["images"], cached["labels"], base.classes, card.name, key,
                     {**base.source, "origin": "generated", "card": card.name, "shift": shift,
                      "generator": card.generator, "tensors_sha256": spec["sha256"]})
    if per_class is not None:
        data = data.subset(balanced_subset(data.labels, per_class, subset_seed))
    return data
