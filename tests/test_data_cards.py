"""Data cards agree with themselves, with the local mirror ($REPRO_DATA) and with the paper catalogue."""
from __future__ import annotations

import os
import pathlib

import pytest
import yaml

from fakes import sha256
from lib.data.cards import (
    CARDS_DIR,
    REQUIRED_KEYS,
    DataCard,
    UnknownDatasetError,
    card_names,
    is_pattern,
    load_card,
    parse_front_matter,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = card_names()
EXPECTED = {"cifar10", "mnist", "fashion_mnist", "sst2", "usps", "omniglot", "omniglot_oneshot", "planetoid", "camvid",
            "cifar100", "imagenet1k", "imagenet_lt", "ade20k"}
IN_MIRROR = [n for n in NAMES if load_card(n).extra.get("offline_mirror", True) is not False]
NOT_DATA = {"CARD.md", "README.md"}


def mirror() -> pathlib.Path:
    value = os.environ.get("REPRO_DATA")
    if not value:
        pytest.skip("REPRO_DATA is not set: no local mirror to compare against")
    path = pathlib.Path(value).expanduser()
    if not path.is_dir():
        pytest.skip(f"REPRO_DATA={value} is not a directory")
    return path


def mirror_files(folder: pathlib.Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and p.name not in NOT_DATA and "__pycache__" not in p.parts}


def test_cards_dir_is_repo_data_cards():
    assert CARDS_DIR == ROOT / "data_cards"
    assert set(NAMES) >= EXPECTED, f"missing cards: {sorted(EXPECTED - set(NAMES))}"


@pytest.mark.parametrize("name", NAMES)
def test_card_parses_with_required_keys(name):
    meta, body = parse_front_matter((CARDS_DIR / f"{name}.md").read_text(encoding="utf-8"))
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    assert not missing, f"{name}: missing keys {missing}"
    card = load_card(name)
    assert isinstance(card, DataCard)
    assert card.name == name and card.path == CARDS_DIR / f"{name}.md"
    assert card.body.strip(), f"{name}: empty datasheet body"
    assert card.format in ("parquet", "raw")
    # every listed file is pinned (sha256 or git blob id; patterns name hub shards verified beside the copy), and
    # parquet datasets list only parquet files in their splits
    for split, spec in card.splits.items():
        for rel in spec["files"]:
            assert is_pattern(rel) or card.expected_checksum(rel) is not None, f"{name}/{split}: {rel} unpinned"
            if card.format == "parquet":
                assert rel.endswith(".parquet"), f"{name}/{split}: {rel}"
    held = card.extra.get("offline_mirror", True)
    if held is not True:   # a dataset the offline mirror lacks says how to get it
        assert card.extra.get("access"), f"{name}: a card of a dataset outside the offline mirror needs 'access'"
    if card.features is not None:
        labels = [v for v in card.features.values() if str(v).startswith("ClassLabel")]
        if labels and card.label_names is not None:
            assert labels[0] == f"ClassLabel({len(card.label_names)})"


def test_card_names_match_mirror_folders():
    root = mirror()
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    assert IN_MIRROR == folders


def _held_files(card: DataCard) -> set[str]:
    """The card's pinned files the offline mirror holds: all but those of the splits it lacks."""
    lacking = {rel for split, spec in card.splits.items() if not card.in_offline_mirror(split) for rel in spec["files"]}
    return set(card.sha256) - lacking


@pytest.mark.parametrize("name", IN_MIRROR)
def test_sha256_matches_mirror(name):
    folder = mirror() / name
    if not folder.is_dir():
        pytest.fail(f"card {name} has no mirror folder {folder}")
    card = load_card(name)
    held = _held_files(card)
    assert held == mirror_files(folder), "the card must hash every data file of the mirror folder"
    for rel in held:
        assert sha256(folder / rel) == card.sha256[rel], f"{name}/{rel}: sha256 differs from the card"


@pytest.mark.parametrize("name", IN_MIRROR)
def test_rows_match_parquet(name):
    pq = pytest.importorskip("pyarrow.parquet")
    folder = mirror() / name
    card = load_card(name)
    if card.format != "parquet":
        pytest.skip(f"{name} is not a parquet dataset")
    for split, spec in card.splits.items():
        rows = sum(pq.ParquetFile(folder / rel).metadata.num_rows for rel in spec["files"])
        assert rows == spec["rows"], f"{name}/{split}: parquet has {rows} rows, card says {spec['rows']}"


@pytest.mark.parametrize("name", IN_MIRROR)
def test_features_match_parquet_metadata(name):
    pq = pytest.importorskip("pyarrow.parquet")
    import json

    folder = mirror() / name
    card = load_card(name)
    if card.format != "parquet":
        pytest.skip(f"{name} is not a parquet dataset")
    for spec in card.splits.values():
        for rel in spec["files"]:
            meta = pq.ParquetFile(folder / rel).schema_arrow.metadata or {}
            hf = json.loads(meta[b"huggingface"])["info"]["features"]
            assert list(hf) == list(card.features), f"{name}/{rel}: columns differ"
            for col, feat in hf.items():
                if feat["_type"] == "ClassLabel":
                    assert feat["names"] == card.label_names
                    assert card.features[col] == f"ClassLabel({len(feat['names'])})"
                elif feat["_type"] == "Value":
                    assert card.features[col] == f"Value({feat['dtype']})"
                else:
                    assert card.features[col] == feat["_type"]


def test_unknown_name_lists_accepted_names():
    with pytest.raises(UnknownDatasetError) as info:
        load_card("imagenet21k")
    message = str(info.value)
    assert "imagenet21k" in message
    for name in NAMES:
        assert name in message
    assert isinstance(info.value, ValueError)


def test_missing_key_is_reported(tmp_path):
    text = (CARDS_DIR / "mnist.md").read_text(encoding="utf-8")
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("license:"))
    (tmp_path / "mnist.md").write_text(broken, encoding="utf-8")
    with pytest.raises(ValueError, match=r"mnist.*'license'"):
        load_card("mnist", tmp_path)


def test_parse_front_matter_requires_delimiters():
    meta, body = parse_front_matter("---\na: 1\n---\n\n# Title\n")
    assert meta == {"a": 1} and body == "# Title\n"
    with pytest.raises(ValueError):
        parse_front_matter("# no front matter\n")
    with pytest.raises(ValueError):
        parse_front_matter("---\na: 1\n")


def test_catalogue_ids_unique_and_complete():
    entries = yaml.safe_load((ROOT / "papers" / "catalogue.yaml").read_text(encoding="utf-8"))
    assert isinstance(entries, list) and len(entries) == 122
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == 122, "duplicate paper ids"
    for e in entries:
        for key in ("id", "title", "arxiv", "tier", "group"):
            assert e.get(key), f"{e.get('id')}: missing {key}"
        assert e["tier"] in {"A", "B", "C", "S"}
        assert isinstance(e["arxiv"], str)


def test_optional_keys_are_checked(tmp_path):
    text = (CARDS_DIR / "cifar100.md").read_text(encoding="utf-8")
    for old, new, message in [
        ("offline_mirror: false", "offline_mirror: [validation]", "'offline_mirror' must be true, false or a list"),
        ("label_column: fine_label", "label_column: img", "label_column 'img' is not a ClassLabel feature"),
        ("sha256: null", "sha256: {cifar100/train.parquet: abc}", "sha256 of 'cifar100/train.parquet' is not 64"),
        ("files: [cifar100/test-*.parquet]", "files: [cifar100/test.parquet]",
         "file 'cifar100/test.parquet' of split 'test' has no sha256 \\(or git_sha1\\) entry"),
    ]:
        assert old in text
        (tmp_path / "cifar100.md").write_text(text.replace(old, new), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_card("cifar100", tmp_path)


def test_imagenet_synsets_are_the_sorted_1000_and_name_the_tree_folders():
    card = load_card("imagenet1k")
    synsets = card.extra["synsets"]
    assert len(synsets) == 1000 and synsets == sorted(synsets) and synsets[0] == "n01440764"
    assert card.extra["imagefolder"] == {"train": "train", "validation": "val"}
    assert card.extra["access"].startswith("gated")


def test_ade20k_names_150_classes_and_imagenet_lt_pins_its_three_lists():
    assert len(load_card("ade20k").label_names) == 150
    lt = load_card("imagenet_lt")
    assert [lt.expected_checksum(f"ImageNet_LT_{s}.txt")[0] for s in ("train", "val", "test")] == \
        ["git-sha1", "sha256", "sha256"]
    assert {s: spec["rows"] for s, spec in lt.splits.items()} == {"train": 115846, "val": 20000, "test": 50000}
