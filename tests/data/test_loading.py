"""lib.data: verified loading, decode-once cache, class-balanced subsets, batched augmentation."""
import pytest
import torch

from lib.data import (ChecksumError, MissingDataError, UnknownDatasetError, balanced_subset, crop_flip, load)
import lib.data.images as images


def test_load_decodes_to_uint8_nchw(tiny_mirror):
    data = load("tiny", "train")
    assert data.images.shape == (40, 3, 8, 8) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [i % 4 for i in range(40)]
    assert data.classes == ["a", "b", "c", "d"]
    assert data.source["origin"] == "mirror" and len(data.source["files_sha256"]) == 1


def test_second_load_reads_the_cache_not_the_images(tiny_mirror, monkeypatch):
    first = load("tiny", "train")
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("decoded twice"))
    second = load("tiny", "train")
    assert torch.equal(first.images, second.images)


def test_subset_without_full_cache_decodes_only_the_rows_and_matches_full(tiny_mirror):
    sub = load("tiny", "train", per_class=3, subset_seed=1)
    full = load("tiny", "train")
    idx = balanced_subset(full.labels, 3, seed=1)
    assert torch.equal(sub.images, full.images[idx]) and torch.equal(sub.labels, full.labels[idx])
    assert sub.source["indices_sha256"] == full.subset(idx).source["indices_sha256"]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_file_is_a_checksum_error_and_nothing_is_decoded(tiny_mirror, monkeypatch, damage):
    path = tiny_mirror / "tiny" / "train-00000-of-00001.parquet"
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        raw = raw[: len(raw) // 2]
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("decoded a corrupted file"))
    with pytest.raises(ChecksumError, match="checksum mismatch.*train-00000-of-00001.parquet"):
        load("tiny", "train")


def test_a_split_loaded_twice_is_hashed_once_and_a_rewritten_file_again(tiny_mirror, monkeypatch):
    calls = []
    real = images.sha256_file
    monkeypatch.setattr(images, "sha256_file", lambda path, *a: calls.append(path) or real(path, *a))
    load("tiny", "train")
    load("tiny", "train", per_class=2)
    images.load_labels("tiny", "train")
    assert len(calls) == 1                                     # one mirror file, read once in this process
    path = tiny_mirror / "tiny" / "train-00000-of-00001.parquet"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF                                 # same size, new bytes: written after the first check
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        load("tiny", "train")
    assert len(calls) == 2


def test_missing_file_names_the_file_and_the_mirror(tiny_mirror):
    (tiny_mirror / "tiny" / "train-00000-of-00001.parquet").unlink()
    with pytest.raises(MissingDataError, match="train-00000-of-00001.parquet.*REPRO_DATA"):
        load("tiny", "train")


def test_unknown_dataset_and_split_name_the_accepted_values(tiny_mirror):
    with pytest.raises(UnknownDatasetError, match="imagenet.*tiny"):
        load("imagenet", "train")
    with pytest.raises(ValueError, match="'validation'.*train"):
        load("tiny", "validation")


def test_balanced_subset_is_deterministic_balanced_and_nested():
    labels = torch.arange(100) % 5
    a, b = balanced_subset(labels, 4, seed=3), balanced_subset(labels, 4, seed=3)
    assert torch.equal(a, b) and torch.bincount(labels[a]).tolist() == [4] * 5
    assert set(a.tolist()) <= set(balanced_subset(labels, 10, seed=3).tolist())
    assert not torch.equal(a, balanced_subset(labels, 4, seed=4))
    with pytest.raises(ValueError, match="per_class"):
        balanced_subset(labels, -1)


def test_crop_flip_is_a_shifted_window_or_its_mirror():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    y = crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert y.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for n in range(2):
        windows = [padded[n, :, i:i + 6, j:j + 6] for i in range(5) for j in range(5)]
        assert any(torch.equal(y[n], w) or torch.equal(y[n], w.flip(2)) for w in windows)


def test_crop_flip_same_generator_seed_same_result_zero_padding_no_flip_is_identity():
    x = torch.randint(0, 255, (8, 3, 8, 8), dtype=torch.uint8)
    a = crop_flip(x, torch.Generator().manual_seed(5))
    b = crop_flip(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert torch.equal(crop_flip(x, torch.Generator().manual_seed(5), padding=0, flip=False), x)


def test_wrong_schema_is_a_clear_error(tiny_mirror):
    import datasets
    import hashlib
    import yaml

    import lib.data.cards as cards

    path = tiny_mirror / "tiny" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_dict({"picture": ["x"], "label": [0]}).to_parquet(str(path))
    card_path = cards.CARDS_DIR / "tiny.md"
    front = yaml.safe_load(card_path.read_text().split("---")[1])
    front["sha256"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    card_path.write_text("---\n" + yaml.safe_dump(front) + "---\n")
    from lib.data import DataSchemaError

    with pytest.raises(DataSchemaError, match=r"columns \['img'\] missing; found \['picture', 'label'\]"):
        load("tiny", "train")


def _load_in_child(args):
    import os

    mirror, cache, cards_dir = args
    os.environ.update(REPRO_DATA=mirror, REPRO_CACHE=cache)
    import lib.data.cards

    lib.data.cards.CARDS_DIR = __import__("pathlib").Path(cards_dir)
    from lib.data import load as child_load

    return child_load("tiny", "train").images.sum().item()


def test_two_processes_filling_one_cache_at_once_agree(tiny_mirror):
    import multiprocessing
    import os

    import lib.data.cards as cards

    args = (os.environ["REPRO_DATA"], os.environ["REPRO_CACHE"], str(cards.CARDS_DIR))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        sums = pool.map(_load_in_child, [args, args])
    assert sums[0] == sums[1] == load("tiny", "train").images.sum().item()
    cached = list((__import__("pathlib").Path(os.environ["REPRO_CACHE"]) / "tiny").glob("*.pt"))
    assert len(cached) == 1   # written once, atomically, under the lock


def test_label_column_keeps_a_selection_order_and_equals_the_row_formatter(tiny_mirror):
    card = images.load_card("tiny")
    ds, _, label_col = images._open_dataset(card, "train", images.dataset_folder(card))
    assert torch.equal(images._label_column(ds, label_col), torch.as_tensor(ds[label_col], dtype=torch.long))
    picked = ds.select([7, 2, 5, 2])
    got = images._label_column(picked, label_col)
    assert got.dtype == torch.int64 and got.tolist() == [ds[i][label_col] for i in (7, 2, 5, 2)]
