"""lib.data.segmentation: verified CamVid-style loading (void -> 255, resized once, cached) and the joint augment."""
import hashlib
import io
import json
import pathlib

import numpy as np
import pytest
import torch
import yaml

import lib.data.segmentation as seg
from lib.data.images import ChecksumError
from lib.data.segmentation import IGNORE_INDEX, joint_augment, joint_crop_flip, load_segmentation


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def camvid_mirror(tmp_path, monkeypatch):
    """A 3-frame, 16×24 mirror in the CamVid schema: masks hold ids 0..2 and the void id 3."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    mirror, cards = tmp_path / "mirror" / "camvid", tmp_path / "cards"
    mirror.mkdir(parents=True)
    cards.mkdir()
    images, masks = [], []
    for i in range(3):
        images.append({"bytes": _png(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)), "path": None})
        mask = np.zeros((16, 24), dtype=np.uint8)
        mask[:, 8:16], mask[:, 16:], mask[:4] = 1, 2, 3      # void band on top
        masks.append({"bytes": _png(mask), "path": None})
    table = pa.table({"image": images, "annotation": masks, "file_name": [f"f{i}" for i in range(3)]})
    pq.write_table(table, mirror / "train-00000-of-00001.parquet")
    (mirror / "classes.json").write_text(json.dumps({"names": ["A", "B", "C", "Void"], "ignore_index": 3,
                                                     "colors_rgb": [[0, 0, 0]] * 4}))
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    front = {"name": "camvid", "title": "t", "hub_id": None, "hub_config": None, "license": "x", "citation": "x",
             "homepage": None, "format": "parquet",
             "features": {"image": "Image", "annotation": "Image", "file_name": "Value(string)"},
             "label_names": ["A", "B", "C", "Void"],
             "splits": {"train": {"rows": 3, "files": ["train-00000-of-00001.parquet"]}},
             "sha256": sha, "deviations": []}
    (cards / "camvid.md").write_text("---\n" + yaml.safe_dump(front) + "---\nTest.\n")
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", cards)
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "mirror"))
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    return mirror


def test_load_resizes_remaps_void_and_caches(camvid_mirror, monkeypatch):
    data = load_segmentation("camvid", "train", size=(8, 12))
    assert data.images.shape == (3, 3, 8, 12) and data.images.dtype == torch.uint8
    assert data.labels.shape == (3, 8, 12) and data.labels.dtype == torch.int64
    assert data.classes == ["A", "B", "C"] and data.num_classes == 3
    assert set(data.labels.unique().tolist()) == {0, 1, 2, IGNORE_INDEX}
    assert (data.labels[:, :2] == IGNORE_INDEX).all() and (data.labels[:, 2:] != IGNORE_INDEX).all()
    assert (data.labels[:, 2:, :4] == 0).all() and (data.labels[:, 2:, 8:] == 2).all()   # nearest keeps the bands
    monkeypatch.setattr(seg, "_decode_split", lambda *a: pytest.fail("decoded twice"))
    again = load_segmentation("camvid", "train", size=(8, 12))
    assert torch.equal(again.labels, data.labels)
    mean, std = data.channel_stats()
    assert mean.shape == (3,) and (std > 0).all()


def test_corrupted_mirror_is_a_checksum_error(camvid_mirror):
    path = camvid_mirror / "classes.json"
    path.write_text(path.read_text().replace("Void", "void"))
    with pytest.raises(ChecksumError, match="classes.json"):
        load_segmentation("camvid", "train", size=(8, 12))


@pytest.mark.parametrize("bad", [(0, 12), (8,), "8x12", (8.0, 12)])
def test_bad_size_names_the_value(bad):
    with pytest.raises(ValueError, match="size"):
        load_segmentation("camvid", "train", size=bad)


def test_unknown_dataset_names_the_accepted_ones():
    with pytest.raises(ValueError, match="camvid"):
        load_segmentation("cityscapes", "train")


def _aligned_batch(n=16, h=12, w=20):
    g = torch.Generator().manual_seed(3)
    images = torch.randint(1, 255, (n, 3, h, w), generator=g, dtype=torch.uint8)   # never 0: padding is detectable
    masks = images[:, 0].long() % 11                                               # the mask is made from the image
    return images, masks


def test_joint_crop_flip_keeps_image_and_mask_aligned():
    images, masks = _aligned_batch()
    out_images, out_masks = joint_crop_flip(images, masks, torch.Generator().manual_seed(0), padding=4)
    assert out_images.shape == images.shape and out_masks.shape == masks.shape
    padded = out_masks == IGNORE_INDEX
    assert padded.any() and (~padded).any()
    assert torch.equal(out_masks[~padded], out_images[:, 0].long()[~padded] % 11)
    assert (out_images[:, 0][padded] == 0).all()


def test_joint_flip_only_is_an_exact_mirror_and_deterministic():
    images, masks = _aligned_batch()
    a = joint_crop_flip(images, masks, torch.Generator().manual_seed(5), padding=0)
    b = joint_crop_flip(images, masks, torch.Generator().manual_seed(5), padding=0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    flipped = torch.tensor([not torch.equal(a[1][i], masks[i]) for i in range(len(masks))])
    assert flipped.any() and (~flipped).any()
    for i in range(len(masks)):
        expected = masks[i].flip(1) if flipped[i] else masks[i]
        assert torch.equal(a[1][i], expected) and torch.equal(a[0][i], images[i].flip(2) if flipped[i] else images[i])


def test_joint_augment_matches_the_fit_hook_signature_and_checks_padding():
    images, masks = _aligned_batch()
    out = joint_augment(2)(images, masks, torch.Generator().manual_seed(1))
    assert out[0].dtype == torch.uint8 and out[1].dtype == torch.int64
    with pytest.raises(ValueError, match="padding"):
        joint_augment(-1)
    with pytest.raises(ValueError, match="must match"):
        joint_crop_flip(images, masks[:, :5], torch.Generator())


def test_a_flipped_byte_in_the_segmentation_cache_is_detected_and_decoded_again(camvid_mirror, monkeypatch):
    import os

    data = load_segmentation("camvid", "train", size=(8, 12))
    (cache,) = [p for p in (pathlib.Path(os.environ["REPRO_CACHE"]) / "camvid").glob("train-seg-*.pt")]
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    cache.write_bytes(bytes(raw))
    decoded = []
    real = seg._decode_split
    monkeypatch.setattr(seg, "_decode_split", lambda *a: decoded.append(1) or real(*a))
    with pytest.warns(RuntimeWarning, match="corrupted"):
        again = load_segmentation("camvid", "train", size=(8, 12))
    assert decoded == [1] and torch.equal(again.labels, data.labels)
