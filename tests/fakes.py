"""Small fake copies of paper datasets in their exact on-disk formats, for the loader tests (imported by them).

Each helper writes real encoded images (JPEG or PNG bytes) where the real dataset has them, the hub's features in
Parquet files, ImageFolder trees and split lists, and ``card_copy`` writes a copy of the book's own data card with
only the row counts (and what the tests name) changed, so the loaders are tested against the real cards' schema.
"""
from __future__ import annotations

import hashlib
import io
import pathlib

import numpy as np
import yaml

from lib.data.cards import parse_front_matter

BOOK_CARDS = pathlib.Path(__file__).resolve().parents[1] / "data_cards"   # the real cards, even while a test patches


def encoded(array: np.ndarray, fmt: str = "JPEG") -> bytes:
    """``array`` (H, W, 3) or (H, W) uint8 as JPEG or PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def random_image(rng: np.random.Generator, height: int = 12, width: int = 16) -> np.ndarray:
    """A smooth RGB image of a random colour (a horizontal ramp: JPEG keeps it close to the array)."""
    colour = rng.integers(0, 200, 3)
    ramp = np.linspace(0, 55, width)[None, :, None]
    return (colour[None, None, :] + ramp + np.zeros((height, 1, 1))).astype(np.uint8)


def sha256(path: pathlib.Path) -> str:
    """The file's sha256, read in blocks (mirror files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def card_copy(name: str, cards_dir: pathlib.Path, **changes) -> dict:
    """Write ``cards_dir/<name>.md``: the book's card with the front-matter keys in ``changes`` replaced (a
    ``splits`` change replaces only the named splits' values); return the front matter written."""
    meta, body = parse_front_matter((BOOK_CARDS / f"{name}.md").read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key == "splits":
            meta["splits"] = {**meta["splits"], **value}
        else:
            meta[key] = value
    cards_dir.mkdir(parents=True, exist_ok=True)
    (cards_dir / f"{name}.md").write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body)
    return meta


def hub_record(folder: pathlib.Path, rel: str, etag: str | None = None) -> pathlib.Path:
    """The download record ``hf download --local-dir`` writes beside a file: commit, etag (the file's sha256 for LFS
    files), time."""
    etag = etag or sha256(folder / rel)
    record = folder / ".cache" / "huggingface" / "download" / f"{rel}.metadata"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{'0' * 40}\n{etag}\n1712656091.123\n")
    return record


def write_parquet(path: pathlib.Path, columns: dict, features) -> pathlib.Path:
    """A Parquet file as the hub stores it (``datasets`` features in the schema metadata)."""
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))
    return path


def flip_a_byte(path: pathlib.Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def sha256sums(folder: pathlib.Path, files) -> pathlib.Path:
    """``folder/SHA256SUMS`` in the format ``sha256sum`` writes, for ``files`` relative to ``folder``."""
    lines = [f"{sha256(folder / rel)}  {rel}" for rel in files]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return folder / "SHA256SUMS"


def imagenet_tree(tmp_path: pathlib.Path, per_class: dict[str, int], classes: int = 3, size=(20, 28),
                  vary: bool = True):
    """A fake ImageNet-1k ImageFolder tree under ``tmp_path/tree`` (``per_class[split]`` JPEGs in each of the first
    ``classes`` synsets, heights varying by up to 2 pixels unless ``vary`` is False, with SHA256SUMS) and a copy of
    the book's card for it in ``tmp_path/cards``; returns the tree's folder. Point ``lib.data.cards.CARDS_DIR`` at
    ``tmp_path/cards`` to use it."""
    from lib.data.cards import load_card

    rng = np.random.default_rng(0)
    synsets = load_card("imagenet1k", BOOK_CARDS).extra["synsets"][:classes]
    folders = {"train": "train", "validation": "val"}
    tree, files = tmp_path / "tree", []
    for split, count in per_class.items():
        for synset in synsets:
            for k in range(count):
                rel = f"{folders[split]}/{synset}/{synset}_{k}.JPEG"
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                (tree / rel).write_bytes(encoded(random_image(rng, size[0] + (k % 3 if vary else 0), size[1])))
                files.append(rel)
    sha256sums(tree, files)
    card_copy("imagenet1k", tmp_path / "cards", synsets=synsets,
              splits={s: {"rows": classes * n, "files": [f"**/{s}-*.parquet"]} for s, n in per_class.items()})
    return tree
