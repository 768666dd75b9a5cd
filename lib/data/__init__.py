"""Datasets for the book: data cards → local mirror or Hugging Face hub → decoded-once uint8 tensors.

`load(name, split)` reads the dataset described by `data_cards/<name>.md`:

* from a local mirror when ``$REPRO_DATA`` is set (laid out ``<name>/<split>-0000i-of-0000N.parquet``
  in the hub's schema); every file's sha256 is checked against the card before anything is decoded;
* otherwise from the hub with ``datasets.load_dataset(hub_id)``;
* or from a copy the user names (``folder=``), checked against the card or, for hub shards the card cannot pin,
  against the checksums recorded beside the copy.

Images are decoded once into a uint8 tensor ``(N, C, H, W)`` and cached on disk (``$REPRO_CACHE``,
default ``~/.cache/efficient-networks-reproduced``), keyed by the files' checksums, under a file lock so
two chapters running at once never read a half-written cache. Subsets are deterministic and
class-balanced; augmentation works on whole batches of tensors on the training device.

Paper-scale sets (ImageNet-1k, ImageNet-LT, ADE20K) are streamed instead (``lib.data.streaming``): decoded lazily in
DataLoader workers with torchvision's transforms, in an order that depends on (seed, epoch) only.
"""
from .cards import CARDS_DIR, DataCard, UnknownDatasetError, card_names, load_card
from .images import (
    ChecksumError,
    DataSchemaError,
    ImageData,
    MissingDataError,
    balanced_subset,
    cache_dir,
    load,
    load_labels,
    mirror_root,
    sha256_file,
    verify_split,
)
from .augment import crop_flip, normalize
from .longtail import create_sampler, longtail_subset, shot_groups
from .segmentation import SegmentationData, load_segmentation
from .planetoid import GraphData, load_planetoid
from .domains import DOMAINS, load_domain, restrict_classes
from .noisy_labels import label_digest, symmetric_noise
from .streaming import (StreamingImages, eval_transform, open_ade20k, open_imagenet_lt, open_images,
                        train_transform)

__all__ = [
    "CARDS_DIR", "DataCard", "UnknownDatasetError", "card_names", "load_card",
    "ChecksumError", "DataSchemaError", "ImageData", "MissingDataError", "balanced_subset", "cache_dir",
    "load", "load_labels", "mirror_root", "sha256_file", "verify_split", "crop_flip", "normalize",
    "create_sampler", "longtail_subset", "shot_groups", "SegmentationData", "load_segmentation", "GraphData",
    "load_planetoid", "DOMAINS", "load_domain", "restrict_classes", "label_digest", "symmetric_noise",
    "StreamingImages", "eval_transform", "open_ade20k", "open_imagenet_lt", "open_images", "train_transform",
]
