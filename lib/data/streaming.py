"""Paper-scale datasets streamed from disk: images decoded lazily in DataLoader workers, torchvision transforms.v2,
and a data order that is a function of (seed, epoch) only.

ImageNet-1k's 1.28M images do not fit in memory as decoded tensors, so ``StreamingImages`` keeps only the labels in
memory and decodes an image when a DataLoader worker asks for it. ``lib.train.fit`` takes one as its training or
test set and then feeds the loop from a ``torch.utils.data.DataLoader`` (worker processes, pinned memory on CUDA)
instead of slicing tensors; everything else (loss, schedule, checkpoints, resume) is the same loop.

Sources (``open_images``, ``open_imagenet_lt``, ``open_ade20k``), each checked against its data card first:

* Parquet rows, from the hub or from a local copy in the hub's layout (``datasets`` memory-maps them as Arrow files;
  shards are verified by ``lib.data.images.verify_folder`` before any row is read);
* an ImageFolder tree (``torchvision.datasets.ImageFolder``'s listing: ``<split>/<class>/<file>``), whose class
  folders must be the card's ``synsets``; each file is checked against its ``SHA256SUMS`` line when it is read;
* ADE20K's release tree (``images/<split>/*.jpg`` with ``annotations/<split>/*.png``), checked the same way.

Transforms (torchvision ``transforms.v2``; the output is uint8 ``(C, H, W)``, normalised later on the training
device, as the in-memory path does): ``train_transform`` = ``RandomResizedCrop(224)`` + ``RandomHorizontalFlip``,
``eval_transform`` = ``Resize(256)`` + ``CenterCrop(224)`` (the standard ImageNet recipe of torchvision's reference
scripts), and for dense labels ``segmentation_train_transform`` / ``segmentation_eval_transform`` (the same geometry
on image and mask).

Order and randomness: an epoch visits the rows in the order ``fit`` draws from ``epoch_generator(seed, epoch)``; the
random draws of the transform of the sample at position ``p`` of epoch ``e`` come from a generator seeded with
``sample_seed(seed, e, p)``. Neither depends on which worker or process decodes the sample, so two arms trained with
the same seed see the same crops, and a run resumed in the middle of an epoch sees the batches the uninterrupted
run would have seen (``epoch_batches(..., start_step=k)``).
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
import pathlib
from dataclasses import dataclass, field

import torch

from .cards import DataCard, load_card
from .images import (
    CHECKSUM_LIST,
    ChecksumError,
    DataSchemaError,
    MissingDataError,
    _checksum_list,
    _columns,
    _label_column,
    _split_spec,
    check_columns,
    dataset_folder,
    open_arrow,
    split_paths,
    verify_folder,
)
from .segmentation import IGNORE_INDEX

# Channel statistics of ImageNet on the 0..1 scale: the values torchvision's pretrained models were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --- transforms ----------------------------------------------------------------------------------------------------

def train_transform(size: int = 224, scale: tuple[float, float] = (0.08, 1.0), flip: bool = True):
    """The standard ImageNet training transform: a random-resized crop to ``size`` and a horizontal flip (uint8 out)."""
    from torchvision.transforms import v2

    steps = [v2.RandomResizedCrop(size, scale=scale, antialias=True)]
    return v2.Compose(steps + ([v2.RandomHorizontalFlip()] if flip else []) + [v2.PILToTensor()])


def eval_transform(resize: int = 256, crop: int = 224):
    """The standard ImageNet evaluation transform: resize the shorter side to ``resize``, centre crop ``crop``."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(crop), v2.PILToTensor()])


def segmentation_train_transform(crop: int = 512, scale: tuple[float, float] = (0.5, 2.0)):
    """Image and mask together: the shorter side resized to a random length in ``crop × scale``, a random ``crop``
    square (padded where the image is smaller), a horizontal flip. Padding is 0, the mask's "other" value, which the
    remapping after the transform turns into ``IGNORE_INDEX``."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResize(int(crop * scale[0]), int(crop * scale[1])),
                       v2.RandomCrop(crop, pad_if_needed=True), v2.RandomHorizontalFlip()])


def segmentation_eval_transform(size: int = 512):
    """Image and mask together: the longer side resized to ``size``, centred on a ``size`` square padded with 0
    (ignored after remapping), so that a batch has one shape. Metrics are computed at that resolution."""
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(size=None, max_size=size, antialias=True), v2.CenterCrop(size)])


# --- sources: read one row as (PIL image, target) --------------------------------------------------------------------

def _open_image(data: bytes, mode: str = "RGB"):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    return image.convert(mode) if image.mode != mode else image


class ArrowSource:
    """Rows of a ``datasets.Dataset`` (hub or local Parquet), decoded by PIL here rather than by ``datasets``."""

    def __init__(self, ds, image_col: str, target_col: str, mask: bool = False):
        import datasets

        ds = ds.select_columns([image_col, target_col]).cast_column(image_col, datasets.Image(decode=False))
        if mask:
            ds = ds.cast_column(target_col, datasets.Image(decode=False))
        self.ds, self.image_col, self.target_col, self.mask = ds, image_col, target_col, mask

    def __len__(self) -> int:
        return len(self.ds)

    def read(self, row: int):
        item = self.ds[int(row)]
        target = item[self.target_col]
        return _open_image(item[self.image_col]["bytes"]), (_open_image(target["bytes"], "L") if self.mask else target)

    def file_names(self) -> list[str | None]:
        """The file name the hub's ``Image`` feature keeps for every row (None where it kept none)."""
        import pyarrow.compute as pc

        column = self.ds.with_format("arrow")[self.image_col]
        return pc.struct_field(column, "path").to_pylist()


class FileSource:
    """Image files under ``root`` (and mask files for dense labels), each checked against ``checksums`` when read."""

    def __init__(self, root: pathlib.Path, files: list[str], targets: list[int] | None = None,
                 masks: list[str] | None = None, checksums: dict[str, str] | None = None):
        self.root, self.files, self.targets, self.masks, self.checksums = root, files, targets, masks, checksums or {}

    def __len__(self) -> int:
        return len(self.files)

    def _bytes(self, rel: str) -> bytes:
        data = (self.root / rel).read_bytes()
        expected = self.checksums.get(rel)
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise ChecksumError(f"checksum mismatch for {self.root / rel}: sha256 {hashlib.sha256(data).hexdigest()} "
                                f"but {self.root / CHECKSUM_LIST} expects {expected}. The file is corrupted or "
                                f"replaced; restore it (the run stopped before training on it).")
        return data

    def read(self, row: int):
        row = int(row)
        image = _open_image(self._bytes(self.files[row]))
        if self.masks is not None:
            return image, _open_image(self._bytes(self.masks[row]), "L")
        return image, self.targets[row]


def _require_checksums(root: pathlib.Path, files: list[str], what: str) -> dict[str, str]:
    """The ``SHA256SUMS`` lines of ``files`` (every file must have one: a tree has no other checksum source)."""
    sums = _checksum_list(root)
    missing = [rel for rel in files if rel not in sums]
    if missing:
        raise ChecksumError(
            f"{what}: no checksum for {len(missing)} of {len(files)} files under {root} (first: {missing[0]!r}); "
            f"{root / CHECKSUM_LIST} must list every file as `sha256sum` writes it, e.g. `cd {root} && find "
            f"{pathlib.PurePosixPath(missing[0]).parts[0]} -type f | sort | xargs sha256sum > {CHECKSUM_LIST}` "
            f"(once; each file is then checked when it is read). Nothing was decoded or trained.")
    return {rel: sums[rel] for rel in files}


# --- the dataset -----------------------------------------------------------------------------------------------------

@dataclass(eq=False)
class StreamingImages(torch.utils.data.Dataset):
    """A dataset whose images are decoded on access: ``dataset[(row, draw_seed)] -> (image uint8 (C, H, W), target)``.

    ``target`` is the class id (int64 scalar) or, for dense labels, the mask (int64 ``(H, W)``, ignored pixels
    ``IGNORE_INDEX``). ``labels`` holds every class id in memory (None for dense labels); ``transform`` runs with the
    global torch generator seeded by ``draw_seed`` (``sample_seed``) and restored afterwards. Duck-types what
    ``lib.train.fit`` needs: ``len()``, ``labels``, ``classes``, ``channel_stats()``.
    """

    source: object
    labels: torch.Tensor | None
    classes: list[str]
    name: str
    split: str
    transform: object = None
    stats: tuple = (IMAGENET_MEAN, IMAGENET_STD)
    rows: torch.Tensor | None = None           # the source rows this dataset shows (a subset), in order
    mask_lut: torch.Tensor | None = None       # dense labels: mask value -> class id (IGNORE_INDEX for "other")
    info: dict = field(default_factory=dict)   # where the data came from (layout, folder, checksums)

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else len(self.source)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def dense(self) -> bool:
        return self.mask_lut is not None

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std on the 0..1 scale used to normalise (stated, not measured: the card's
        ``image_stats`` or ImageNet's)."""
        return torch.tensor(self.stats[0], dtype=torch.float32), torch.tensor(self.stats[1], dtype=torch.float32)

    def subset(self, indices) -> "StreamingImages":
        """The rows ``indices`` of this dataset (in the given order)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        rows = self.rows[indices] if self.rows is not None else indices
        labels = self.labels[indices] if self.labels is not None else None
        digest = hashlib.sha256(rows.numpy().tobytes()).hexdigest()[:16]
        return StreamingImages(self.source, labels, self.classes, self.name, self.split, self.transform, self.stats,
                               rows, self.mask_lut, {**self.info, "rows": len(rows), "indices_sha256": digest})

    def with_transform(self, transform) -> "StreamingImages":
        """The same rows with another transform (a training and an evaluation view of one split)."""
        other = copy.copy(self)
        other.transform = transform
        return other

    def __getitem__(self, key):
        position, draw = key if isinstance(key, tuple) else (key, 0)
        row = int(self.rows[position]) if self.rows is not None else int(position)
        image, target = self.source.read(row)
        if self.dense:
            from torchvision import tv_tensors
            from torchvision.transforms.v2 import functional as TF

            image, target = tv_tensors.Image(TF.pil_to_tensor(image)), tv_tensors.Mask(TF.pil_to_tensor(target)[0])
        if self.transform is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(draw)
                out = self.transform(image, target) if self.dense else self.transform(image)
            image, target = out if self.dense else (out, target)
        image = _as_uint8_chw(image)
        if self.dense:
            return image, self.mask_lut[target.as_subclass(torch.Tensor).long()]
        return image, torch.tensor(target, dtype=torch.long)


def _as_uint8_chw(image) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        from torchvision.transforms.v2 import functional as TF

        image = TF.pil_to_tensor(image)
    return image.as_subclass(torch.Tensor).contiguous()


# --- order, batches, loader --------------------------------------------------------------------------------------------

def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The seed of the transform's draws for the sample at ``position`` of ``epoch`` (a function of these only)."""
    return (_epoch_base(seed, epoch) + int(position)) & 0x7FFF_FFFF_FFFF_FFFF


def _epoch_base(seed: int, epoch: int) -> int:
    return int.from_bytes(hashlib.sha256(f"sample:{seed}:{epoch}".encode()).digest()[:8], "little")


def epoch_batches(order: torch.Tensor, batch_size: int, seed: int, epoch: int, *, steps: int | None = None,
                  start_step: int = 0, rank: int = 0, world: int = 1) -> list[list[tuple[int, int]]]:
    """The keys ``(row, draw_seed)`` of this process's part of every batch of an epoch, from ``start_step`` on.

    Batch ``s`` holds ``order[s·B : (s+1)·B]`` (``B = batch_size``, ``steps`` batches, default ``len(order) // B``);
    process ``rank`` of ``world`` takes the ``B / world`` keys at ``[rank·B/world, (rank+1)·B/world)``, as
    ``fit`` splits an in-memory batch.
    """
    steps = len(order) // batch_size if steps is None else steps
    local = batch_size // world
    base = _epoch_base(seed, epoch)
    batches = []
    for step in range(start_step, steps):
        first = step * batch_size + rank * local
        rows = order[first:first + local].tolist()
        batches.append([(row, (base + first + j) & 0x7FFF_FFFF_FFFF_FFFF) for j, row in enumerate(rows)])
    return batches


def evaluation_batches(count: int, batch_size: int, rank: int = 0, world: int = 1) -> list[list[tuple[int, int]]]:
    """Consecutive batches of rows for evaluation, process ``rank`` taking every ``world``-th (as ``evaluate`` does)."""
    return [[(row, 0) for row in range(start, min(start + batch_size, count))]
            for start in range(rank * batch_size, count, world * batch_size)]


def default_workers() -> int:
    """DataLoader workers per process: the CPUs this process may use, shared among the local processes, less one for
    the training loop itself, at most 8 (``$REPRO_WORKERS`` overrides)."""
    if os.environ.get("REPRO_WORKERS"):
        return int(os.environ["REPRO_WORKERS"])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cpus // int(os.environ.get("LOCAL_WORLD_SIZE", "1")) - 1))


def make_loader(dataset: StreamingImages, batches, *, workers: int | None = None, pin_memory: bool = False):
    """A DataLoader that yields ``(images uint8 (B, C, H, W), targets)`` for ``batches`` (lists of keys), decoding in
    ``workers`` processes (``default_workers()`` when None)."""
    workers = default_workers() if workers is None else workers
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=pin_memory,
                                       prefetch_factor=4 if workers else None)


# --- openers ---------------------------------------------------------------------------------------------------------

def _stats(card: DataCard) -> tuple:
    stats = card.extra.get("image_stats")
    return (tuple(stats["mean"]), tuple(stats["std"])) if stats else (IMAGENET_MEAN, IMAGENET_STD)


def _check_rows(card: DataCard, split: str, count: int, where) -> None:
    expected = _split_spec(card, split).get("rows")
    if expected is not None and count != expected:
        raise DataSchemaError(f"{card.name}/{split}: {count} rows in {where} but the card states {expected}")


def _check_layout(card: DataCard, split: str, layout: str | None, key: str, name: str) -> None:
    """ValueError unless ``layout`` (None: detected) is ``"parquet"`` or, where the card names a folder for ``split``
    under ``key``, ``name``; checked before any file is looked at."""
    accepted = ["parquet"] + ([name] if split in (card.extra.get(key) or {}) else [])
    if layout is not None and layout not in accepted:
        raise ValueError(f"{card.name}/{split}: unknown layout {layout!r}; accepted: {', '.join(accepted)}")


def _layout(card: DataCard, split: str, base: pathlib.Path, layout: str | None) -> str:
    if layout is not None:
        return layout
    tree = card.extra.get("imagefolder", {}).get(split)
    if tree is not None and (base / tree).is_dir():
        return "imagefolder"
    release = card.extra.get("release_folders", {}).get(split)
    if release is not None and (base / "images" / release).is_dir():
        return "release"
    return "parquet"


def _imagefolder(card: DataCard, split: str, base: pathlib.Path):
    from torchvision.datasets import ImageFolder

    sub = card.extra["imagefolder"][split]
    tree = ImageFolder(str(base / sub), allow_empty=True)
    synsets = card.extra.get("synsets")
    if synsets is not None and tree.classes != synsets:
        missing = sorted(set(synsets) - set(tree.classes))
        unexpected = sorted(set(tree.classes) - set(synsets))
        raise DataSchemaError(f"{card.name}/{split}: the class folders of {base / sub} are not the card's "
                              f"{len(synsets)} synsets: {len(missing)} missing (first: {missing[:3]}), "
                              f"{len(unexpected)} unexpected (first: {unexpected[:3]})")
    files = [pathlib.Path(path).relative_to(base).as_posix() for path, _ in tree.samples]
    _check_rows(card, split, len(files), base / sub)
    checksums = _require_checksums(base, files, f"{card.name}/{split}")
    targets = [label for _, label in tree.samples]
    return FileSource(base, files, targets, checksums=checksums), torch.tensor(targets, dtype=torch.long), tree.classes


def open_images(name: str, split: str, *, folder: str | os.PathLike | None = None, transform=None,
                layout: str | None = None, label: str | None = None) -> StreamingImages:
    """``split`` of image-classification dataset ``name``, streamed: from ``folder`` (a copy the user names, in the
    hub's Parquet layout or as an ImageFolder tree, detected unless ``layout`` says), else ``$REPRO_DATA/<name>``,
    else the hub. Files are checked against the card (module docstring) before any image is read."""
    card = load_card(name)
    _split_spec(card, split)
    _check_layout(card, split, layout, "imagefolder", "imagefolder")
    image_col, label_col = _columns(card, label)
    base = dataset_folder(card, folder)
    kind = "hub" if base is None else _layout(card, split, base, layout)
    if kind == "imagefolder":
        source, labels, classes = _imagefolder(card, split, base)
        info = {"layout": kind, "folder": str(base), "checksums": str(base / CHECKSUM_LIST)}
    else:
        checksums = verify_folder(card, split, base) if base is not None else None
        ds = open_arrow(card, split, base)
        check_columns(card, split, ds, {image_col: "Image", label_col: "ClassLabel"})
        _check_rows(card, split, len(ds), base or card.hub_id)
        source, labels, classes = ArrowSource(ds, image_col, label_col), _label_column(ds, label_col), \
            list(ds.features[label_col].names)
        info = {"layout": "parquet", "folder": str(base) if base else None, "hub_id": None if base else card.hub_id,
                "files_sha256": checksums}
    return StreamingImages(source, labels, classes, name, split, transform, _stats(card), info={"origin": kind, **info})


def _read_split_list(path: pathlib.Path) -> tuple[list[str], list[int]]:
    files, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataSchemaError(f"{path}, line {number}: expected '<path> <label>', got {line!r}")
        files.append(parts[0])
        labels.append(int(parts[1]))
    return files, labels


def open_imagenet_lt(split: str, *, lists: str | os.PathLike | None = None, images: str | os.PathLike | None = None,
                     transform=None, layout: str | None = None) -> StreamingImages:
    """ImageNet-LT's ``split`` (``train``, ``val``, ``test``): the official list (``data_cards/imagenet_lt.md``) from
    ``lists`` (else ``$REPRO_DATA/imagenet_lt``), its images from the ImageNet-1k copy ``images`` (as ``open_images``
    finds it). The list's labels must agree with the copy's (synset folder, or the Parquet label column)."""
    card = load_card("imagenet_lt")
    _split_spec(card, split)
    base = dataset_folder(card, lists)
    if base is None:
        raise MissingDataError("imagenet_lt: the split lists have no hub copy; pass lists=<folder with "
                               "ImageNet_LT_{train,val,test}.txt> or set REPRO_DATA (data_cards/imagenet_lt.md)")
    checksums = verify_folder(card, split, base)
    (rel,) = split_paths(card, split, base)
    files, labels = _read_split_list(base / rel)
    _check_rows(card, split, len(files), base / rel)
    roots = {pathlib.PurePosixPath(f).parts[0] for f in files}
    if len(roots) != 1 or not roots <= {"train", "val"}:
        raise DataSchemaError(f"imagenet_lt/{split}: list paths must all start with train/ or val/, found {sorted(roots)}")
    source_split = "train" if roots == {"train"} else "validation"
    imagenet = open_images(card.extra.get("source_dataset", "imagenet1k"), source_split, folder=images,
                           transform=transform, layout=layout)
    if isinstance(imagenet.source, FileSource):
        index = {rel: row for row, rel in enumerate(imagenet.source.files)}
        keys = files
    else:
        names = imagenet.source.file_names()
        if not any(names):
            raise DataSchemaError("imagenet_lt: the ImageNet-1k Parquet copy keeps no file names in its image column, "
                                  "so the split list cannot be matched to its rows; use an ImageFolder tree instead")
        index = {pathlib.PurePosixPath(n).name: row for row, n in enumerate(names) if n}
        keys = [pathlib.PurePosixPath(f).name for f in files]
    absent = [f for f, k in zip(files, keys) if k not in index]
    if absent:
        raise MissingDataError(f"imagenet_lt/{split}: {len(absent)} listed images are not in the ImageNet-1k copy "
                               f"(first: {absent[0]!r})")
    rows = torch.tensor([index[k] for k in keys], dtype=torch.long)
    listed = torch.tensor(labels, dtype=torch.long)
    wrong = (imagenet.labels[rows] != listed).nonzero().flatten()
    if len(wrong):
        i = int(wrong[0])
        raise DataSchemaError(f"imagenet_lt/{split}: {len(wrong)} listed labels differ from the ImageNet-1k copy's "
                              f"(first: {files[i]!r} listed {labels[i]}, the copy says {int(imagenet.labels[rows[i]])})")
    subset = imagenet.subset(rows)
    subset.name, subset.split = "imagenet_lt", split
    subset.info = {**subset.info, "lists": str(base), "list_digest": checksums[rel]}
    return subset


def _ade_lut() -> torch.Tensor:
    """ADE20K's annotation value -> class id: 0 ("other") -> IGNORE_INDEX, k -> k - 1 (k = 1..150, mmseg's
    ``reduce_zero_label``); values above 150 (absent from the benchmark) are ignored too."""
    lut = torch.full((256,), IGNORE_INDEX, dtype=torch.long)
    lut[1:151] = torch.arange(150)
    return lut


def open_ade20k(split: str, *, folder: str | os.PathLike | None = None, transform=None,
                layout: str | None = None) -> StreamingImages:
    """ADE20K (SceneParse150) ``split`` (``train``, ``validation``) with masks: from ``folder`` (the benchmark's
    release tree or a copy of the hub's Parquet conversion), else ``$REPRO_DATA/ade20k``, else the hub
    (``data_cards/ade20k.md``). Targets are class ids 0..149 with "other" as ``IGNORE_INDEX``."""
    card = load_card("ade20k")
    _split_spec(card, split)
    _check_layout(card, split, layout, "release_folders", "release")
    base = dataset_folder(card, folder)
    kind = "hub" if base is None else _layout(card, split, base, layout)
    if kind == "release":
        sub = card.extra["release_folders"][split]
        images = sorted(p.relative_to(base).as_posix() for p in (base / "images" / sub).glob("*.jpg"))
        masks = [f"annotations/{sub}/{pathlib.PurePosixPath(rel).stem}.png" for rel in images]
        absent = [m for m in masks if not (base / m).is_file()]
        if absent:
            raise MissingDataError(f"ade20k/{split}: {len(absent)} annotations missing under {base} (first: {absent[0]!r})")
        _check_rows(card, split, len(images), base / "images" / sub)
        source = FileSource(base, images, masks=masks,
                            checksums=_require_checksums(base, images + masks, f"ade20k/{split}"))
        info = {"layout": kind, "folder": str(base), "checksums": str(base / CHECKSUM_LIST)}
    else:
        checksums = verify_folder(card, split, base) if base is not None else None
        ds = open_arrow(card, split, base)
        check_columns(card, split, ds, {"image": "Image", "annotation": "Image"})
        _check_rows(card, split, len(ds), base or card.hub_id)
        source = ArrowSource(ds, "image", "annotation", mask=True)
        info = {"layout": "parquet", "folder": str(base) if base else None, "files_sha256": checksums}
    return StreamingImages(source, None, list(card.label_names), "ade20k", split, transform, _stats(card),
                           mask_lut=_ade_lut(), info={"origin": kind, **info})


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ArrowSource", "FileSource", "StreamingImages",
           "default_workers", "epoch_batches", "eval_transform", "evaluation_batches", "make_loader", "open_ade20k",
           "open_imagenet_lt", "open_images", "sample_seed", "segmentation_eval_transform",
           "segmentation_train_transform", "train_transform"]
