"""CIFAR-100 through its card: a local copy in the hub's layout (checked against the hub client's download record or a
SHA256SUMS list), fine and coarse labels, the hub path, and the errors for a missing folder, a wrong schema and a
checksum mismatch. The copy is fake: 3 classes x 2 JPEG images per split, in the hub's files and features."""
import numpy as np
import pytest
import torch

from fakes import card_copy, encoded, flip_a_byte, hub_record, random_image, sha256, sha256sums, write_parquet
from lib.data import ChecksumError, DataSchemaError, MissingDataError, load, load_card, load_labels

FINE = [0, 1, 99]            # apple, aquarium_fish, worm
COARSE = [4, 1, 13]          # their superclasses: fruit_and_vegetables, fish, non-insect_invertebrates


def _features():
    import datasets

    card = load_card("cifar100")
    return datasets.Features({"img": datasets.Image(),
                              "fine_label": datasets.ClassLabel(names=card.label_names),
                              "coarse_label": datasets.ClassLabel(names=card.label_names_of("coarse_label"))})


@pytest.fixture
def cifar100_copy(tmp_path, monkeypatch):
    """A folder laid out as `hf download uoft-cs/cifar100 --local-dir` leaves it, with the download records."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar100-copy"
    for split in ("train", "test"):
        rows = {"img": [], "fine_label": [], "coarse_label": []}
        for fine, coarse in zip(FINE, COARSE):
            for _ in range(2):
                rows["img"].append({"bytes": encoded(random_image(rng, 32, 32)), "path": None})
                rows["fine_label"].append(fine)
                rows["coarse_label"].append(coarse)
        rel = f"cifar100/{split}-00000-of-00001.parquet"
        write_parquet(folder / rel, rows, _features())
        hub_record(folder, rel)
    card_copy("cifar100", tmp_path / "cards", splits={"train": {"rows": 6, "files": ["cifar100/train-*.parquet"]},
                                                      "test": {"rows": 6, "files": ["cifar100/test-*.parquet"]}})
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", tmp_path / "cards")
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    return folder


def test_a_hub_layout_copy_loads_with_fine_and_coarse_labels(cifar100_copy):
    fine = load("cifar100", "train", folder=cifar100_copy)
    assert fine.images.shape == (6, 3, 32, 32) and fine.images.dtype == torch.uint8
    assert fine.labels.tolist() == [0, 0, 1, 1, 99, 99]
    assert len(fine.classes) == 100 and fine.classes[99] == "worm"
    coarse = load("cifar100", "train", folder=cifar100_copy, label="coarse_label")
    assert coarse.labels.tolist() == [4, 4, 1, 1, 13, 13] and len(coarse.classes) == 20
    assert torch.equal(coarse.images, fine.images)
    assert coarse.source["label_column"] == "coarse_label" and fine.source["origin"] == "folder"
    assert load_labels("cifar100", "test", folder=cifar100_copy, label="coarse_label").tolist() == [4, 4, 1, 1, 13, 13]
    with pytest.raises(ValueError, match="label column 'img' is not a ClassLabel.*accepted: fine_label, coarse_label"):
        load("cifar100", "train", folder=cifar100_copy, label="img")


def test_a_copy_without_hub_records_is_checked_against_sha256sums(cifar100_copy):
    import shutil

    shutil.rmtree(cifar100_copy / ".cache")
    with pytest.raises(ChecksumError, match=r"no checksum to verify .*train-00000-of-00001.parquet.*SHA256SUMS"):
        load("cifar100", "train", folder=cifar100_copy)
    sha256sums(cifar100_copy, ["cifar100/train-00000-of-00001.parquet"])
    assert len(load("cifar100", "train", folder=cifar100_copy)) == 6


def test_a_checksum_mismatch_names_the_file_its_digest_and_the_expected_one(cifar100_copy):
    path = cifar100_copy / "cifar100" / "train-00000-of-00001.parquet"
    expected = sha256(path)
    flip_a_byte(path)
    with pytest.raises(ChecksumError) as info:
        load("cifar100", "train", folder=cifar100_copy)
    message = str(info.value)
    assert f"checksum mismatch for {path}: sha256 {sha256(path)} but the hub's download record" in message
    assert f"expects {expected}" in message


def test_a_missing_folder_or_shard_is_a_missing_data_error(cifar100_copy, tmp_path):
    with pytest.raises(MissingDataError, match=r"the folder .*nowhere does not exist"):
        load("cifar100", "train", folder=tmp_path / "nowhere")
    (cifar100_copy / "cifar100" / "test-00000-of-00001.parquet").unlink()
    with pytest.raises(MissingDataError, match=r"cifar100/test: no file matches 'cifar100/test-\*.parquet' in the folder"):
        load("cifar100", "test", folder=cifar100_copy)


def test_a_wrong_schema_names_the_columns(cifar100_copy):
    import datasets

    rel = "cifar100/train-00000-of-00001.parquet"
    write_parquet(cifar100_copy / rel, {"img": [{"bytes": encoded(np.zeros((32, 32, 3), np.uint8)), "path": None}],
                                       "label": [0]},
                  datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(num_classes=100)}))
    hub_record(cifar100_copy, rel)
    with pytest.raises(DataSchemaError, match=r"columns \['fine_label'\] missing; found \['img', 'label'\], "
                                          r"the card expects \['coarse_label', 'fine_label', 'img'\]"):
        load("cifar100", "train", folder=cifar100_copy)
    features = _features()
    features["fine_label"] = datasets.ClassLabel(num_classes=10)
    write_parquet(cifar100_copy / rel, {"img": [{"bytes": encoded(np.zeros((32, 32, 3), np.uint8)), "path": None}],
                                       "fine_label": [0], "coarse_label": [0]}, features)
    hub_record(cifar100_copy, rel)
    with pytest.raises(DataSchemaError, match=r"fine_label has 10 classes, the card states ClassLabel\(100\)"):
        load("cifar100", "train", folder=cifar100_copy)


def test_without_a_folder_or_mirror_the_hub_id_is_loaded(cifar100_copy, monkeypatch):
    import datasets

    import lib.data.images as images

    calls = []
    local = datasets.load_dataset("parquet", split="train", data_files=str(
        cifar100_copy / "cifar100" / "train-00000-of-00001.parquet"))

    def fake_hub(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return local

    monkeypatch.setattr(images, "_check_hub_reachable", lambda card: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_hub)
    data = load("cifar100", "train")
    assert calls == [("uoft-cs/cifar100", None, {"split": "train", "revision": None})]
    assert data.source["origin"] == "hub" and data.labels.tolist() == [0, 0, 1, 1, 99, 99]
