"""ImageNet-1k and ImageNet-LT through their cards, streamed: fake copies in the hub's Parquet layout (JPEG bytes with
their file names, the hub's features) and as an ImageFolder tree, the official split-list format, and the errors
for a missing folder, a wrong schema and a checksum mismatch. Three synsets, a few JPEGs each."""
import numpy as np
import pytest
import torch

from fakes import (BOOK_CARDS, card_copy, encoded, flip_a_byte, hub_record, random_image, sha256, sha256sums,
                   write_parquet)
from lib.data import ChecksumError, DataSchemaError, MissingDataError, load_card
from lib.data.streaming import eval_transform, open_imagenet_lt, open_images

SYNSETS = load_card("imagenet1k", BOOK_CARDS).extra["synsets"][:3]
PER_CLASS = {"train": 3, "validation": 2}


def _file_name(split, synset, k):
    return f"{synset}_{k}.JPEG" if split == "train" else f"ILSVRC2012_val_{synset[-4:]}{k:04d}.JPEG"


def _images(rng, n):
    return [encoded(random_image(rng, 20 + 2 * i, 28)) for i in range(n)]


@pytest.fixture
def imagenet(tmp_path, monkeypatch):
    """Two copies of the same fake ImageNet (train 3 classes x 3, validation x 2): `parquet/` in the hub's layout with
    the hub client's download records, `tree/` as an ImageFolder tree with SHA256SUMS; the card copies keep the book's
    cards but for row counts and the three synsets."""
    import datasets

    rng = np.random.default_rng(0)
    parquet, tree = tmp_path / "parquet", tmp_path / "tree"
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=1000)})
    files = []
    for split, k in PER_CLASS.items():
        rows = {"image": [], "label": []}
        for label, synset in enumerate(SYNSETS):
            for i, data in enumerate(_images(rng, k)):
                rows["image"].append({"bytes": data, "path": _file_name(split, synset, i)})
                rows["label"].append(label)
                rel = f"{'train' if split == 'train' else 'val'}/{synset}/{_file_name(split, synset, i)}"
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                (tree / rel).write_bytes(data)
                files.append(rel)
        rel = f"data/{split}-00000-of-00001.parquet"
        write_parquet(parquet / rel, rows, features)
        hub_record(parquet, rel)
    sha256sums(tree, files)
    card_copy("imagenet1k", tmp_path / "cards", synsets=SYNSETS,
              splits={s: {"rows": 3 * k, "files": [f"**/{s}-*.parquet"]} for s, k in PER_CLASS.items()})
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", tmp_path / "cards")
    monkeypatch.delenv("REPRO_DATA", raising=False)
    return parquet, tree


def test_the_parquet_copy_and_the_imagefolder_tree_give_the_same_images_and_labels(imagenet):
    parquet, tree = imagenet
    a = open_images("imagenet1k", "train", folder=parquet, transform=eval_transform(16, 16))
    b = open_images("imagenet1k", "train", folder=tree, transform=eval_transform(16, 16))
    assert (a.info["layout"], b.info["layout"]) == ("parquet", "imagefolder")
    assert a.labels.tolist() == b.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert b.classes == SYNSETS and len(a.classes) == 1000
    for row in range(len(a)):
        (x, y), (u, v) = a[row], b[row]
        assert x.dtype == torch.uint8 and x.shape == (3, 16, 16) and torch.equal(x, u) and int(y) == int(v)
    assert torch.allclose(a.channel_stats()[0], torch.tensor([0.485, 0.456, 0.406]))


def test_missing_folder_wrong_classes_and_wrong_schema_are_clear_errors(imagenet, tmp_path):
    import datasets
    import shutil

    parquet, tree = imagenet
    with pytest.raises(MissingDataError, match=r"imagenet1k: the folder .*absent does not exist"):
        open_images("imagenet1k", "train", folder=tmp_path / "absent")
    shutil.rmtree(tree / "train" / SYNSETS[2])
    with pytest.raises(DataSchemaError, match=r"class folders .* are not the card's 3 synsets: 1 missing \(first: "
                                              rf"\['{SYNSETS[2]}'\]\)"):
        open_images("imagenet1k", "train", folder=tree)
    rel = "data/train-00000-of-00001.parquet"
    write_parquet(parquet / rel, {"jpg": [{"bytes": encoded(random_image(np.random.default_rng(1))), "path": "x"}],
                                  "cls": [0]},
                  datasets.Features({"jpg": datasets.Image(), "cls": datasets.Value("int64")}))
    hub_record(parquet, rel)
    with pytest.raises(DataSchemaError, match=r"columns \['image', 'label'\] missing; found \['jpg', 'cls'\]"):
        open_images("imagenet1k", "train", folder=parquet)


def test_checksum_mismatches_stop_before_training(imagenet):
    parquet, tree = imagenet
    shard = parquet / "data" / "validation-00000-of-00001.parquet"
    expected = sha256(shard)
    flip_a_byte(shard)
    with pytest.raises(ChecksumError, match=f"sha256 {sha256(shard)} but the hub's download record .* expects {expected}"):
        open_images("imagenet1k", "validation", folder=parquet)
    # a tree file is checked when it is read: the dataset opens, the bad image raises where it is decoded
    jpeg = tree / "val" / SYNSETS[1] / _file_name("validation", SYNSETS[1], 0)
    flip_a_byte(jpeg)
    data = open_images("imagenet1k", "validation", folder=tree)
    data[0]
    with pytest.raises(ChecksumError, match=f"checksum mismatch for {jpeg}: sha256 {sha256(jpeg)} but .*SHA256SUMS"):
        data[2]
    (tree / "SHA256SUMS").unlink()
    with pytest.raises(ChecksumError, match=r"no checksum for 6 of 6 files .*SHA256SUMS must list every file"):
        open_images("imagenet1k", "validation", folder=tree)


# --- ImageNet-LT ---------------------------------------------------------------------------------------------------

def _line(split, synset, k, label):
    return f"{'train' if split == 'train' else 'val'}/{synset}/{_file_name(split, synset, k)} {label}\n"


LISTS = {"train": [_line("train", s, k, c) for c, s in enumerate(SYNSETS) for k in range(3 - c)],   # 3, 2, 1 images
         "val": [_line("train", s, 2, c) for c, s in enumerate(SYNSETS)],
         "test": [_line("validation", s, 1, c) for c, s in enumerate(SYNSETS)]}


def _lists(folder, cards, texts=LISTS):
    """Official-format lists over the fake ImageNet (train a long tail, val one training image per class, test one
    validation image per class) and a card copy that pins them (the train list by its git blob id, as the real card)."""
    from lib.data.images import git_blob_sha1

    folder.mkdir(exist_ok=True)
    for split, lines in texts.items():
        (folder / f"ImageNet_LT_{split}.txt").write_text("".join(lines))
    card_copy("imagenet_lt", cards,
              splits={s: {"rows": len(lines), "files": [f"ImageNet_LT_{s}.txt"]} for s, lines in texts.items()},
              sha256={f"ImageNet_LT_{s}.txt": sha256(folder / f"ImageNet_LT_{s}.txt") for s in ("val", "test")},
              git_sha1={"ImageNet_LT_train.txt": git_blob_sha1(folder / "ImageNet_LT_train.txt")})


def test_imagenet_lt_lists_select_the_same_rows_from_a_tree_and_from_parquet(imagenet, tmp_path):
    parquet, tree = imagenet
    _lists(tmp_path / "lists", tmp_path / "cards")
    for split, labels in {"train": [0, 0, 0, 1, 1, 2], "val": [0, 1, 2], "test": [0, 1, 2]}.items():
        a = open_imagenet_lt(split, lists=tmp_path / "lists", images=tree, transform=eval_transform(8, 8))
        b = open_imagenet_lt(split, lists=tmp_path / "lists", images=parquet, transform=eval_transform(8, 8))
        assert a.labels.tolist() == b.labels.tolist() == labels and (a.name, a.split) == ("imagenet_lt", split)
        assert all(torch.equal(a[i][0], b[i][0]) for i in range(len(a)))
    test = open_imagenet_lt("test", lists=tmp_path / "lists", images=tree)
    assert test.source.files[int(test.rows[1])] == f"val/{SYNSETS[1]}/{_file_name('validation', SYNSETS[1], 1)}"


def test_imagenet_lt_errors_name_the_list_line_the_digest_and_what_is_missing(imagenet, tmp_path):
    from lib.data.images import git_blob_sha1

    parquet, tree = imagenet
    lists = tmp_path / "lists"
    _lists(lists, tmp_path / "cards")
    train = lists / "ImageNet_LT_train.txt"
    expected = git_blob_sha1(train)
    relabelled = {**LISTS, "train": LISTS["train"][:-1] + [LISTS["train"][-1].replace(" 2\n", " 1\n")]}
    train.write_text("".join(relabelled["train"]))
    with pytest.raises(ChecksumError, match=f"git-sha1 {git_blob_sha1(train)} but the data card imagenet_lt.md "
                                            f"expects {expected}"):
        open_imagenet_lt("train", lists=lists, images=tree)
    _lists(lists, tmp_path / "cards", relabelled)            # a list pinned as it is, whose last label is wrong
    with pytest.raises(DataSchemaError, match=rf"1 listed labels differ .*{SYNSETS[2]}_0.JPEG' listed 1, the copy says 2"):
        open_imagenet_lt("train", lists=lists, images=tree)
    (tree / "val" / SYNSETS[0] / _file_name("validation", SYNSETS[0], 1)).unlink()
    sha256sums(tree, [p.relative_to(tree).as_posix() for p in sorted(tree.rglob("*.JPEG"))])
    card_copy("imagenet1k", tmp_path / "cards", synsets=SYNSETS,
              splits={"train": {"rows": 9, "files": ["**/train-*.parquet"]},
                      "validation": {"rows": 5, "files": ["**/validation-*.parquet"]}})
    with pytest.raises(MissingDataError, match=r"1 listed images are not in the ImageNet-1k copy \(first: 'val/"):
        open_imagenet_lt("test", lists=lists, images=tree)
    with pytest.raises(MissingDataError, match="split lists have no hub copy"):
        open_imagenet_lt("test", images=tree)


def test_a_bad_layout_or_label_column_is_refused_before_any_file_is_looked_at(tmp_path):
    absent = tmp_path / "absent"                         # a folder check would raise MissingDataError instead
    with pytest.raises(ValueError, match=r"imagenet1k/train: unknown layout 'release'; accepted: parquet, imagefolder"):
        open_images("imagenet1k", "train", folder=absent, layout="release")
    with pytest.raises(ValueError, match=r"label column 'image' is not a ClassLabel .*accepted: label"):
        open_images("imagenet1k", "train", folder=absent, label="image")
