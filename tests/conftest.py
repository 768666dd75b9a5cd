"""Shared fixtures: a tiny image dataset in the hub's parquet schema with its own data card."""
from __future__ import annotations

import hashlib
import io
import pathlib

import numpy as np
import pytest
import yaml


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def tiny_mirror(tmp_path, monkeypatch):
    """A mirror ``tiny/`` (train 40 rows, 4 classes, 8×8 RGB) + its card; REPRO_DATA/REPRO_CACHE point at tmp."""
    import datasets

    rng = np.random.default_rng(0)
    mirror, cards, cache = tmp_path / "mirror", tmp_path / "cards", tmp_path / "cache"
    (mirror / "tiny").mkdir(parents=True)
    cards.mkdir()
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c", "d"])})
    rows = {"img": [], "label": []}
    for i in range(40):
        rows["img"].append({"bytes": _png(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)), "path": None})
        rows["label"].append(i % 4)
    path = mirror / "tiny" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))
    front = {
        "name": "tiny", "title": "Tiny", "hub_id": None, "hub_config": None, "license": "CC0", "citation": "none",
        "homepage": None, "format": "parquet", "features": {"img": "Image", "label": "ClassLabel(4)"},
        "label_names": ["a", "b", "c", "d"],
        "splits": {"train": {"rows": 40, "files": [path.name]}},
        "sha256": {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}, "deviations": [],
    }
    (cards / "tiny.md").write_text("---\n" + yaml.safe_dump(front) + "---\nA test dataset.\n")
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", cards)
    monkeypatch.setenv("REPRO_DATA", str(mirror))
    monkeypatch.setenv("REPRO_CACHE", str(cache))
    return pathlib.Path(mirror)
