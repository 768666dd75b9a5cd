"""Semantic segmentation data: CamVid frames and masks as decoded-once uint8 / int64 tensors, and a joint augment.

``load_segmentation("camvid", split, size=(H, W))`` reads the mirror described by ``data_cards/camvid.md``
(``$REPRO_DATA/camvid/<split>-00000-of-00001.parquet`` + ``classes.json``), checks every file's sha256
against the card before decoding, resizes each frame once to ``size`` (image: PIL bilinear, which
low-pass filters when shrinking; mask: nearest neighbour, so every pixel keeps a real class id) and caches
``images`` ``(N, 3, H, W)`` uint8 and ``labels`` ``(N, H, W)`` int64 on disk under a file lock, keyed by
the files' checksums and the size (the same cache folder and locking as ``lib.data.images``).

The mirror stores void as class id 11 (``classes.json``: ``ignore_index: 11``); it is remapped to
``IGNORE_INDEX = 255`` so that losses and metrics skip it with ``ignore_index=255``, and ``classes`` lists
the 11 real classes only.

``joint_crop_flip`` is the ``augment`` hook of ``lib.train.fit`` for dense labels: the same random crop of
the padded frame (image padded with 0, mask with the void label) and the same horizontal flip on image and
mask, all draws from the epoch's ``torch.Generator`` so that arms trained with the same seed see the same
batches.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field

import numpy as np
import torch
from filelock import FileLock

from .cards import load_card
from .images import (
    ChecksumError,
    DataSchemaError,
    MissingDataError,
    cache_dir,
    load_cache,
    mirror_root,
    save_cache,
    sha256_file,
    verify_split,
)

IGNORE_INDEX = 255
SEGMENTATION_DATASETS = ("camvid",)
CACHE_VERSION = 1  # bump when the cached layout or the resizing changes
COLUMNS = ("image", "annotation")


@dataclass
class SegmentationData:
    """Images ``(N, 3, H, W)`` uint8 and masks ``(N, H, W)`` int64 (void = 255), with where they came from.

    Duck-types what ``lib.train.fit`` needs from a dataset: ``images``, ``labels``, ``len()``,
    ``channel_stats()``, ``classes``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str
    colors: list[list[int]] = field(default_factory=list)
    source: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices) -> "SegmentationData":
        """The frames ``indices`` (in the given order)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        digest = hashlib.sha256(indices.numpy().tobytes()).hexdigest()[:16]
        return SegmentationData(self.images[indices], self.labels[indices], self.classes, self.name, self.split,
                                self.colors, {**self.source, "rows": len(indices), "indices_sha256": digest})

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the pixels on the 0..1 scale (float64 sums)."""
        x = self.images.to(torch.float64) / 255.0
        mean = x.mean(dim=(0, 2, 3))
        std = (x.pow(2).mean(dim=(0, 2, 3)) - mean.pow(2)).clamp_min(1e-12).sqrt()
        return mean.float(), std.float()

    def class_frequencies(self) -> torch.Tensor:
        """Fraction of labelled (non-void) pixels of each class."""
        valid = self.labels[self.labels != IGNORE_INDEX]
        counts = torch.bincount(valid.flatten(), minlength=self.num_classes).double()
        return counts / counts.sum().clamp_min(1)


def _check_size(size) -> tuple[int, int]:
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise ValueError(f"size must be (height, width) with two positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _read_classes(card, root) -> dict:
    path = root / card.name / "classes.json"
    if not path.is_file():
        raise MissingDataError(f"{card.name}: file 'classes.json' is missing from the mirror {root / card.name}")
    expected = card.sha256.get("classes.json")
    actual = sha256_file(path)
    if expected is None or actual != expected:
        raise ChecksumError(f"checksum mismatch for {path}: sha256 {actual} but the data card {card.path.name} "
                            f"expects {expected}. Nothing was decoded or trained.")
    return json.loads(path.read_text())


def _decode_split(card, split: str, root, size: tuple[int, int], void_id: int) -> dict:
    import pyarrow.parquet as pq
    from PIL import Image

    h, w = size
    images, masks = [], []
    for rel in card.split_files(split):
        table = pq.read_table(root / card.name / rel)
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise DataSchemaError(f"{card.name}/{split}: columns {missing} missing from {rel}; found "
                                  f"{table.column_names}, the card expects {sorted(card.features)}")
        for image_cell, mask_cell in zip(table.column("image").to_pylist(), table.column("annotation").to_pylist()):
            image = Image.open(io.BytesIO(image_cell["bytes"])).convert("RGB")
            mask = Image.open(io.BytesIO(mask_cell["bytes"]))
            if mask.mode not in ("L", "P"):
                raise DataSchemaError(f"{card.name}/{split}: annotation mode {mask.mode!r}, expected 'L' (class ids)")
            images.append(np.asarray(image.resize((w, h), Image.BILINEAR), dtype=np.uint8))
            masks.append(np.asarray(mask.resize((w, h), Image.NEAREST), dtype=np.uint8))
    expected_rows = card.splits[split].get("rows")
    if expected_rows is not None and len(images) != expected_rows:
        raise DataSchemaError(f"{card.name}/{split}: {len(images)} rows but the card states {expected_rows}")
    labels = torch.from_numpy(np.stack(masks)).long()
    labels[labels == void_id] = IGNORE_INDEX
    return {"images": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), "labels": labels}


def load_segmentation(name: str, split: str, *, size=(96, 128)) -> SegmentationData:
    """Load ``split`` of segmentation dataset ``name`` resized to ``size`` = (H, W) (verified, decoded once, cached).

    >>> train = load_segmentation("camvid", "train", size=(96, 128))   # doctest: +SKIP
    >>> train.images.shape, train.labels.shape                         # (367, 3, 96, 128), (367, 96, 128)
    """
    if name not in SEGMENTATION_DATASETS:
        raise ValueError(f"unknown segmentation dataset {name!r}; accepted: {', '.join(SEGMENTATION_DATASETS)}")
    size = _check_size(size)
    card = load_card(name)
    card.split_files(split)  # unknown split -> ValueError naming the accepted ones
    root = mirror_root()
    if root is None:
        raise MissingDataError(f"{name} has no hub counterpart; set REPRO_DATA to the local mirror "
                               f"(a folder holding {name}/<split>-*.parquet)")
    checksums = verify_split(card, split, root)
    meta = _read_classes(card, root)
    void_id = int(meta["ignore_index"])
    names = [n for i, n in enumerate(meta["names"]) if i != void_id]
    colors = [c for i, c in enumerate(meta.get("colors_rgb", [])) if i != void_id]
    if void_id != len(names):
        raise DataSchemaError(f"{name}: void id {void_id} is not the last class id; remapping assumes it is")
    key = hashlib.sha256("".join(sorted(checksums.values())).encode()).hexdigest()[:16]
    folder = cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}-seg-v{CACHE_VERSION}-{key}-{size[0]}x{size[1]}.pt"
    with FileLock(str(path) + ".lock"):
        cached = load_cache(path, keys=("images", "labels"))   # verified against its .sha256; None if invalid
        if cached is None:
            cached = _decode_split(card, split, root, size, void_id)
            save_cache(cached, path)
    source = {"origin": "mirror", "files_sha256": checksums, "rows": len(cached["labels"]),
              "size": list(size), "void_id_in_mirror": void_id, "ignore_index": IGNORE_INDEX}
    return SegmentationData(cached["images"], cached["labels"], names, name, split, colors, source)


def joint_crop_flip(images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator, *, padding: int = 8,
                    flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``H×W`` crop of the padded frame and the same horizontal flip on images and masks.

    images ``(N, C, H, W)`` (padded with 0), masks ``(N, H, W)`` (padded with ``IGNORE_INDEX``, so padding
    never counts as a class). Draws: crop offsets ``(2, N)`` then flips ``(N,)`` from ``generator``.
    """
    if images.ndim != 4 or masks.ndim != 3 or images.shape[0] != masks.shape[0] or images.shape[2:] != masks.shape[1:]:
        raise ValueError(f"images (N, C, H, W) and masks (N, H, W) must match, got {tuple(images.shape)} "
                         f"and {tuple(masks.shape)}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
    n, _, h, w = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    if padding:
        p = padding
        images = torch.nn.functional.pad(images, (p, p, p, p))
        masks = torch.nn.functional.pad(masks, (p, p, p, p), value=IGNORE_INDEX)
        rows = (offsets[0][:, None] + torch.arange(h))[:, :, None]   # (N, H, 1)
        cols = (offsets[1][:, None] + torch.arange(w))[:, None, :]   # (N, 1, W)
        batch = torch.arange(n)[:, None, None]
        images = images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
        masks = masks[batch, rows, cols]
    if flip:
        images = torch.where(flips[:, None, None, None], images.flip(3), images)
        masks = torch.where(flips[:, None, None], masks.flip(2), masks)
    return images.contiguous(), masks.contiguous()


def joint_augment(padding: int = 8, flip: bool = True):
    """``augment(images, masks, generator) -> (images, masks)`` for ``lib.train.fit``'s ``augment`` hook."""
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")

    def augment(images, masks, generator):
        return joint_crop_flip(images, masks, generator, padding=padding, flip=flip)

    return augment


__all__ = ["IGNORE_INDEX", "SEGMENTATION_DATASETS", "SegmentationData", "load_segmentation", "joint_crop_flip",
           "joint_augment"]
