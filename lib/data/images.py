"""Image datasets as decoded-once uint8 tensors, verified against their data cards."""
from __future__ import annotations

import hashlib
import io
import os
import pathlib
import socket
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from filelock import FileLock

from .cards import DataCard, is_pattern, load_card

CACHE_VERSION = 2  # bump when the cached tensor layout changes (2: every cache file has a .sha256 beside it)


class ChecksumError(RuntimeError):
    """A mirror file's sha256 differs from its data card: the file is corrupted, truncated or replaced."""


class MissingDataError(FileNotFoundError):
    """A file the data card lists is not in the mirror."""


class DataSchemaError(ValueError):
    """A dataset's columns or types differ from what its data card states."""


@dataclass
class ImageData:
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64, with where they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str
    source: dict = field(default_factory=dict)  # origin (mirror|hub), file checksums, indices digest

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: torch.Tensor) -> "ImageData":
        """The rows ``indices`` (a view into the same storage where possible)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        digest = hashlib.sha256(indices.numpy().tobytes()).hexdigest()[:16]
        return ImageData(self.images[indices], self.labels[indices], self.classes, self.name, self.split,
                         {**self.source, "rows": len(indices), "indices_sha256": digest})

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the pixels on the 0..1 scale (float64 sums, chunked)."""
        c = self.images.shape[1]
        total = torch.zeros(c, dtype=torch.float64)
        total_sq = torch.zeros(c, dtype=torch.float64)
        for chunk in self.images.split(4096):
            x = chunk.to(torch.float64) / 255.0
            total += x.sum(dim=(0, 2, 3))
            total_sq += (x * x).sum(dim=(0, 2, 3))
        count = self.images.shape[0] * self.images.shape[2] * self.images.shape[3]
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
        return mean.float(), std.float()


def _env_path(name: str) -> pathlib.Path | None:
    from ..repro.store import env_path   # relative values mean the caller's working directory, not the kernel's

    return env_path(name)


def mirror_root() -> pathlib.Path | None:
    """The local mirror directory from ``$REPRO_DATA``, or None to load from the hub.

    A relative ``$REPRO_DATA`` is resolved against the working directory of the command that started the
    chapter (``$PWD``), not the notebook kernel's ``papers/<slug>/``."""
    value = _env_path("REPRO_DATA")
    return value.resolve() if value else None


def cache_dir() -> pathlib.Path:
    """Where decoded tensors are cached (``$REPRO_CACHE``, default ``~/.cache/efficient-networks-reproduced``)."""
    value = _env_path("REPRO_CACHE")
    return value if value else pathlib.Path.home() / ".cache" / "efficient-networks-reproduced"


def sha256_file(path: pathlib.Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: pathlib.Path, chunk: int = 1 << 20) -> str:
    """The git blob id of a file: sha1 of ``b"blob <size>\\0"`` followed by its bytes (what a repository tree lists)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Digests of the files this process has already read, keyed by the algorithm and by what changes when a file is
# written or replaced (device, inode, size, modification time in ns): a chapter that loads one split several times
# (a subset, its noisy-label copy, its labels alone) reads each file once.
_VERIFIED: dict[tuple, str] = {}
_ALGORITHMS = {"sha256": lambda path: sha256_file(path), "git-sha1": lambda path: git_blob_sha1(path)}


def _file_digest(path: pathlib.Path, algorithm: str = "sha256") -> str:
    stat = path.stat()
    key = (algorithm, str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = _ALGORITHMS[algorithm](path)
    return _VERIFIED[key]


def _mirror_sha256(path: pathlib.Path) -> str:
    return _file_digest(path, "sha256")


# Where a user's own copy records the checksums the book checks it against, when the card cannot state them (hub
# shards the book never downloaded): the Hugging Face client's download record, which `hf download --local-dir`
# writes beside the data (its second line is the file's etag: the sha256 for LFS files, the git blob id otherwise),
# or a SHA256SUMS list in the format `sha256sum` writes.
HUB_RECORD_DIR = pathlib.PurePosixPath(".cache/huggingface/download")
CHECKSUM_LIST = "SHA256SUMS"


def _checksum_list(folder: pathlib.Path) -> dict[str, str]:
    path = folder / CHECKSUM_LIST
    if not path.is_file():
        return {}
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition(" ")
        rel = rel[1:] if rel[:1] in ("*", " ") else rel   # `sha256sum` writes "<hex>  <file>" or "<hex> *<file>"
        if len(digest) != 64 or not rel:
            raise ChecksumError(f"{path}, line {number}: expected '<sha256>  <file>' as sha256sum writes it, got {line!r}")
        sums[rel.removeprefix("./")] = digest.lower()
    return sums


def recorded_checksum(folder: pathlib.Path, rel: str) -> tuple[str, str, str] | None:
    """``(algorithm, hex, where)`` recorded beside a user's copy for file ``rel``, or None (see ``HUB_RECORD_DIR``)."""
    record = folder / HUB_RECORD_DIR / f"{rel}.metadata"
    if record.is_file():
        lines = record.read_text().splitlines()
        etag = lines[1].strip().strip('"').lower() if len(lines) > 1 else ""
        if len(etag) in (40, 64):
            return ("sha256" if len(etag) == 64 else "git-sha1"), etag, f"the hub's download record {record}"
    listed = _checksum_list(folder).get(rel)
    return ("sha256", listed, f"{folder / CHECKSUM_LIST}") if listed else None


def expected_checksum(card: DataCard, folder: pathlib.Path, rel: str) -> tuple[str, str, str] | None:
    """What file ``rel`` must hash to: the card's value first, else the one recorded beside the copy."""
    stated = card.expected_checksum(rel)
    if stated is not None:
        return stated[0], stated[1], f"the data card {card.path.name if card.path else card.name}"
    return recorded_checksum(folder, rel)


def dataset_folder(card: DataCard, folder: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The folder that holds dataset ``card``'s files: ``folder`` (a copy the user names), else ``$REPRO_DATA/<name>``,
    else None (the hub). A named folder that does not exist is a MissingDataError."""
    if folder is not None:
        path = pathlib.Path(folder).expanduser()
        if not path.is_dir():
            raise MissingDataError(f"{card.name}: the folder {path} does not exist or is not a directory; name the "
                                   f"folder that holds {card.name}'s files (layout: data_cards/{card.name}.md)")
        return path.resolve()
    root = mirror_root()
    return root / card.name if root is not None else None


def _where(card: DataCard, folder: pathlib.Path) -> str:
    root = mirror_root()
    if root is not None and folder == root / card.name:
        return f"the mirror {folder} (REPRO_DATA={root})"
    return f"the folder {folder}"


def split_paths(card: DataCard, split: str, folder: pathlib.Path) -> list[str]:
    """The files of ``split`` under ``folder``, relative to it: literal entries as listed, glob patterns expanded
    (sorted). A missing file or a pattern that matches nothing is a MissingDataError."""
    listed = _split_spec(card, split)["files"]
    found = []
    for rel in listed:
        if is_pattern(rel):
            matches = sorted(p.relative_to(folder).as_posix() for p in folder.glob(rel) if p.is_file())
            if not matches:
                raise MissingDataError(f"{card.name}/{split}: no file matches {rel!r} in {_where(card, folder)}; "
                                       f"expected files: {', '.join(listed)}")
            found += matches
        elif not (folder / rel).is_file():
            raise MissingDataError(f"{card.name}/{split}: file {rel!r} is missing from {_where(card, folder)}; "
                                   f"expected files: {', '.join(listed)}")
        else:
            found.append(rel)
    return found


def verify_folder(card: DataCard, split: str, folder: pathlib.Path) -> dict[str, str]:
    """Check every file of ``split`` under ``folder`` against ``expected_checksum``; return ``{file: digest}``
    (``"git-sha1:<hex>"`` for a file known by its git blob id).

    Raises MissingDataError or ChecksumError (naming the file, its digest and the expected one) before anything is
    decoded or trained; a file with no checksum anywhere is a ChecksumError saying where to record one.
    """
    checked = {}
    for rel in split_paths(card, split, folder):
        path = folder / rel
        expected = expected_checksum(card, folder, rel)
        if expected is None:
            hub = f"`hf download {card.hub_id} --repo-type dataset --local-dir {folder}` writes" if card.hub_id else \
                "the hub client writes"
            raise ChecksumError(
                f"{card.name}/{split}: no checksum to verify {path} against: the data card lists none for {rel!r}, and "
                f"{folder} has neither the hub's download record ({HUB_RECORD_DIR}/{rel}.metadata, which {hub}) nor "
                f"a line for it in {folder / CHECKSUM_LIST} (the format `sha256sum` writes; compare it with the "
                f"sha256 the hub shows for the file). Nothing was decoded or trained.")
        algorithm, digest, where = expected
        actual = _file_digest(path, algorithm)
        if actual != digest:
            raise ChecksumError(
                f"checksum mismatch for {path}: {algorithm} {actual} but {where} expects {digest}. The file is "
                f"corrupted, truncated or a different version; restore it from the source named in "
                f"data_cards/{card.name}.md. Nothing was decoded or trained.")
        checked[rel] = actual if algorithm == "sha256" else f"{algorithm}:{actual}"
    return checked


def _split_spec(card: DataCard, split: str) -> dict:
    if split not in card.splits:
        raise ValueError(f"unknown split {split!r} for dataset {card.name!r}; accepted: {', '.join(sorted(card.splits))}")
    return card.splits[split]


def verify_split(card: DataCard, split: str, root: pathlib.Path) -> dict[str, str]:
    """Check every mirror file of ``split`` (under ``root/<name>/``) against the card; return ``{file: sha256}``.

    Raises MissingDataError or ChecksumError before anything is decoded or trained.
    """
    return verify_folder(card, split, pathlib.Path(root) / card.name)


def _columns(card: DataCard, label: str | None = None) -> tuple[str, str]:
    """The image column and the label column (``label``, else the card's ``label_column``, else its one ClassLabel)."""
    image_cols = [k for k, v in card.features.items() if str(v).startswith("Image")]
    label_cols = [k for k, v in card.features.items() if str(v).startswith("ClassLabel")]
    column = label or card.extra.get("label_column") or (label_cols[0] if len(label_cols) == 1 else None)
    if len(image_cols) != 1 or column is None:
        raise DataSchemaError(f"{card.name}: load() needs one Image and one ClassLabel feature; card has {card.features}")
    if column not in label_cols:
        raise ValueError(f"{card.name}: label column {column!r} is not a ClassLabel feature of the card; "
                         f"accepted: {', '.join(label_cols)}")
    return image_cols[0], column


def open_arrow(card: DataCard, split: str, folder: pathlib.Path | None):
    """``split`` as a ``datasets.Dataset`` (Arrow, memory-mapped): the parquet files of ``split`` under ``folder``
    (check them with ``verify_folder`` first), or the hub's copy when ``folder`` is None."""
    import datasets  # imported lazily: heavy, and only needed on a cache miss

    datasets.disable_progress_bars()
    if folder is not None:
        files = [str(folder / rel) for rel in split_paths(card, split, folder)]
        return datasets.load_dataset("parquet", data_files={split: files}, split=split)
    if card.hub_id is None:
        raise MissingDataError(f"{card.name} has no hub id; set REPRO_DATA to a local mirror or name a folder")
    _check_hub_reachable(card)
    try:
        return datasets.load_dataset(card.hub_id, card.hub_config, split=split,
                                     revision=card.extra.get("hub_revision"))
    except Exception as error:
        access = f" Access: {card.extra['access']}." if card.extra.get("access") else ""
        raise MissingDataError(f"{card.name}: loading {card.hub_id!r} from the Hugging Face hub failed "
                               f"({type(error).__name__}: {str(error)[:300]}); REPRO_DATA is not set.{access} Set "
                               f"REPRO_DATA to a local mirror (<name>/<split>-0000i-of-0000N.parquet) or name a "
                               f"folder holding a copy.") from error


def check_columns(card: DataCard, split: str, ds, expected: dict[str, str]) -> None:
    """DataSchemaError unless ``ds`` has every column of ``expected`` (column -> ``"Image"`` | ``"ClassLabel"``)
    with that feature type; the message names what is missing or mistyped and what the card expects."""
    import datasets

    missing = set(expected) - set(ds.column_names)
    if missing:
        raise DataSchemaError(
            f"{card.name}/{split}: columns {sorted(missing)} missing; found {ds.column_names}, "
            f"the card expects {sorted(card.features)}")
    wrong = {c: ds.features[c] for c, kind in expected.items() if not isinstance(ds.features[c], getattr(datasets, kind))}
    if wrong:
        raise DataSchemaError(f"{card.name}/{split}: expected " + " and ".join(f"{c}: {expected[c]}" for c in expected)
                              + ", found " + " and ".join(f"{c}: {ds.features[c]}" for c in expected))
    for column, kind in expected.items():
        stated = str((card.features or {}).get(column, ""))
        if kind == "ClassLabel" and stated.startswith("ClassLabel(") and stated[11:-1].isdigit():
            if ds.features[column].num_classes != int(stated[11:-1]):
                raise DataSchemaError(f"{card.name}/{split}: {column} has {ds.features[column].num_classes} classes, "
                                      f"the card states {stated}")


def _open_dataset(card: DataCard, split: str, folder: pathlib.Path | None, label: str | None = None):
    ds = open_arrow(card, split, folder)
    image_col, label_col = _columns(card, label)
    check_columns(card, split, ds, {image_col: "Image", label_col: "ClassLabel"})
    return ds, image_col, label_col


def _check_hub_reachable(card: DataCard, timeout: float = 3.0) -> None:
    """Fail in seconds, naming REPRO_DATA, when the hub cannot be reached (the hub client retries for ~30 s).

    Skipped in the hub's offline mode (``HF_DATASETS_OFFLINE`` / ``HF_HUB_OFFLINE``), which reads its cache."""
    offline = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in offline):
        return
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise MissingDataError(
            f"{card.name}: REPRO_DATA is not set, so the data would come from the Hugging Face hub ({card.hub_id}), "
            f"but {host}:{port} cannot be reached ({error}). Set REPRO_DATA to a local mirror directory "
            f"(<name>/<split>-0000i-of-0000N.parquet, see data_cards/{card.name}.md), or set HF_DATASETS_OFFLINE=1 "
            f"to read the hub's local cache.") from None


def _label_column(ds, label_col: str) -> torch.Tensor:
    """The label column in row order (a selection's rows included) as int64, read as one Arrow array: indexing
    ``ds[label_col]`` builds a Python list through the row formatter, seconds for 50,000 rows."""
    column = ds.select_columns([label_col]).with_format("arrow")[label_col]
    return torch.from_numpy(np.array(column.to_numpy(), dtype=np.int64))   # a writable copy


def _decode(ds, image_col: str, label_col: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    first = ds[0][image_col]
    mode = "L" if first.mode in ("L", "1", "I;16") else "RGB"
    arrays = [np.asarray(img.convert(mode), dtype=np.uint8) for img in ds[image_col]]
    images = torch.from_numpy(np.stack(arrays))
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    labels = _label_column(ds, label_col)
    return images.contiguous(), labels, list(ds.features[label_col].names)


def _digest_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def save_cache(obj, path: pathlib.Path) -> None:
    """Write a cache file atomically with its sha256 in ``<file>.sha256`` beside it (checked by ``load_cache``)."""
    from ..repro.store import atomic_write

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    _digest_path(path).unlink(missing_ok=True)   # never a stale digest beside a new file
    atomic_write(path, lambda handle: handle.write(data))
    atomic_write(_digest_path(path), lambda handle: handle.write(f"{digest}  {path.name}\n".encode()))


def load_cache(path: pathlib.Path, keys: tuple[str, ...] = ("images", "labels", "classes")) -> dict | None:
    """The cached tensors in ``path`` (a dict with ``keys``), or None when there is no valid cache file.

    A file whose sha256 differs from its ``.sha256`` (a flipped byte), a truncated file, a file torch cannot
    read or one without a digest is named in a warning and deleted, so that the caller decodes it again.
    """
    from ..repro.store import remove_stale_temporaries

    remove_stale_temporaries(path)
    if not path.is_file():
        return None
    problem = None
    data = path.read_bytes()
    expected = _digest_path(path).read_text().split()[0] if _digest_path(path).is_file() else None
    actual = hashlib.sha256(data).hexdigest()
    if expected is None:
        problem = "has no .sha256 digest beside it"
    elif actual != expected:
        problem = f"has sha256 {actual[:16]}... but its digest file says {expected[:16]}... (corrupted)"
    else:
        try:
            cached = torch.load(io.BytesIO(data), weights_only=True)
            if not isinstance(cached, dict) or not set(keys) <= set(cached):
                problem = f"does not hold {', '.join(keys)}"
        except Exception as error:   # truncated or foreign file: torch raises a generic zip error
            problem = f"cannot be read ({type(error).__name__}: {str(error)[:120]})"
    if problem is None:
        return cached
    warnings.warn(f"decoded-data cache file {path} {problem}; deleting it and decoding the data again",
                  RuntimeWarning, stacklevel=3)
    path.unlink(missing_ok=True)
    _digest_path(path).unlink(missing_ok=True)
    return None


def load(name: str, split: str, *, per_class: int | None = None, subset_seed: int = 0,
         folder: str | os.PathLike | None = None, label: str | None = None) -> ImageData:
    """Load ``split`` of dataset ``name`` as uint8 tensors (verified, decoded once, cached).

    The files come from ``folder`` (a copy in the hub's parquet layout that the user names), else from
    ``$REPRO_DATA/<name>/``, else from the hub; ``label`` picks another ClassLabel column (CIFAR-100's
    ``coarse_label``). With ``per_class``, only a class-balanced subset (``balanced_subset(labels, per_class,
    subset_seed)``) is returned; when the whole split is not cached yet, only those rows are decoded and cached.

    >>> train = load("cifar10", "train")        # doctest: +SKIP
    >>> train.images.shape, train.images.dtype  # (50000, 3, 32, 32), torch.uint8
    """
    card = load_card(name)
    _split_spec(card, split)
    image_col, label_col = _columns(card, label)
    root = dataset_folder(card, folder)
    ds = None
    if root is not None:
        checksums = verify_folder(card, split, root)
        key = hashlib.sha256("".join(sorted(checksums.values())).encode()).hexdigest()[:16]
        source = {"origin": "mirror" if folder is None else "folder", "files_sha256": checksums}
        if folder is not None:
            source["folder"] = str(root)
    else:
        ds, image_col, label_col = _open_dataset(card, split, None, label)
        key = ds._fingerprint[:16]
        source = {"origin": "hub", "hub_id": card.hub_id, "fingerprint": ds._fingerprint}
    if sum(str(v).startswith("ClassLabel") for v in card.features.values()) > 1:
        key = f"{key}-{label_col}"      # one cache per label column of a card with several
        source["label_column"] = label_col

    cache = cache_dir() / name
    from ..repro.store import check_writable

    check_writable(cache, "decoded-data cache (REPRO_CACHE)")
    full_path = cache / f"{split}-v{CACHE_VERSION}-{key}.pt"
    with FileLock(str(full_path) + ".lock"):
        cached = load_cache(full_path)
        if cached is not None or per_class is None:
            if cached is None:
                if ds is None:
                    ds, image_col, label_col = _open_dataset(card, split, root, label)
                cached = _decode_checked(card, split, ds, image_col, label_col)
                save_cache(cached, full_path)
            data = ImageData(cached["images"], cached["labels"], cached["classes"], name, split,
                             {**source, "rows": len(cached["labels"])})
            if per_class is None:
                return data
            return data.subset(balanced_subset(data.labels, per_class, subset_seed))
    # A subset of a split that is not cached whole: read the labels, decode only the chosen rows.
    if ds is None:
        ds, image_col, label_col = _open_dataset(card, split, root, label)
    indices = balanced_subset(_label_column(ds, label_col), per_class, subset_seed)
    digest = hashlib.sha256(indices.numpy().tobytes()).hexdigest()[:16]
    sub_path = cache / f"{split}-v{CACHE_VERSION}-{key}-rows-{digest}.pt"
    with FileLock(str(sub_path) + ".lock"):
        cached = load_cache(sub_path)
        if cached is None:
            images, labels, classes = _decode(ds.select(indices.tolist()), image_col, label_col)
            cached = {"images": images, "labels": labels, "classes": classes}
            save_cache(cached, sub_path)
    return ImageData(cached["images"], cached["labels"], cached["classes"], name, split,
                     {**source, "rows": len(indices), "indices_sha256": digest})


def load_labels(name: str, split: str, *, folder: str | os.PathLike | None = None,
                label: str | None = None) -> torch.Tensor:
    """The labels of ``split`` of dataset ``name`` in row order, read without decoding any image (files are
    checked against the card first; ``folder`` and ``label`` as in ``load``)."""
    card = load_card(name)
    _split_spec(card, split)
    root = dataset_folder(card, folder)
    if root is not None:
        verify_folder(card, split, root)
    ds, _, label_col = _open_dataset(card, split, root, label)
    labels = _label_column(ds, label_col)
    expected_rows = _split_spec(card, split).get("rows")
    if expected_rows is not None and len(labels) != expected_rows:
        raise DataSchemaError(f"{card.name}/{split}: {len(labels)} rows but the card states {expected_rows}")
    return labels


def _decode_checked(card: DataCard, split: str, ds, image_col: str, label_col: str) -> dict:
    images, labels, classes = _decode(ds, image_col, label_col)
    expected_rows = _split_spec(card, split).get("rows")
    if expected_rows is not None and len(labels) != expected_rows:
        raise DataSchemaError(f"{card.name}/{split}: {len(labels)} rows but the card states {expected_rows}")
    return {"images": images, "labels": labels, "classes": classes}


def balanced_subset(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class, chosen by a seeded permutation, sorted.

    Deterministic for a given seed; a smaller subset is contained in a larger one with the same seed.
    """
    if not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        if per_class > len(idx):
            raise ValueError(f"class {c} has {len(idx)} examples, fewer than per_class={per_class}")
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values
