"""ADE20K (SceneParse150) through its card, streamed with masks: a fake release tree (JPEG images, PNG annotations,
SHA256SUMS) and a fake copy of the hub's Parquet conversion give the same images and targets ("other" -> 255,
value k -> class k - 1); joint transforms; the hub path; errors for a missing folder, a wrong schema and checksums."""
import numpy as np
import pytest
import torch

from fakes import card_copy, encoded, flip_a_byte, hub_record, random_image, sha256, sha256sums, write_parquet
from lib.data import ChecksumError, DataSchemaError, MissingDataError
from lib.data.segmentation import IGNORE_INDEX
from lib.data.streaming import open_ade20k, segmentation_eval_transform, segmentation_train_transform


def _mask(i):
    mask = np.zeros((12, 16), dtype=np.uint8)        # 0 = "other"
    mask[:, 4:8], mask[:, 8:12], mask[:, 12:] = 1, 2 + i, 150
    return mask


@pytest.fixture
def ade(tmp_path, monkeypatch):
    import datasets

    rng = np.random.default_rng(0)
    tree, parquet = tmp_path / "ADEChallengeData2016", tmp_path / "hub-copy"
    rows = {"image": [], "annotation": [], "scene_category": []}
    files = []
    for i in range(2):
        image, annotation = encoded(random_image(rng, 12, 16)), encoded(_mask(i), "PNG")
        for rel, data in ((f"images/training/ADE_train_{i + 1:08d}.jpg", image),
                          (f"annotations/training/ADE_train_{i + 1:08d}.png", annotation)):
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_bytes(data)
            files.append(rel)
        rows["image"].append({"bytes": image, "path": None})
        rows["annotation"].append({"bytes": annotation, "path": None})
        rows["scene_category"].append(i)
    sha256sums(tree, files)
    rel = "scene_parsing/train/0000.parquet"
    write_parquet(parquet / rel, rows, datasets.Features({"image": datasets.Image(), "annotation": datasets.Image(),
                                                          "scene_category": datasets.ClassLabel(num_classes=1055)}))
    hub_record(parquet, rel)
    card_copy("ade20k", tmp_path / "cards", splits={"train": {"rows": 2, "files": ["scene_parsing/train/*.parquet"]}})
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", tmp_path / "cards")
    monkeypatch.delenv("REPRO_DATA", raising=False)
    return tree, parquet


def test_the_release_tree_and_the_parquet_copy_give_the_same_images_and_remapped_masks(ade):
    tree, parquet = ade
    a, b = open_ade20k("train", folder=tree), open_ade20k("train", folder=parquet)
    assert (a.info["layout"], b.info["layout"]) == ("release", "parquet") and len(a.classes) == 150
    for i in range(2):
        (x, m), (u, v) = a[i], b[i]
        assert x.shape == (3, 12, 16) and x.dtype == torch.uint8 and torch.equal(x, u) and torch.equal(m, v)
        assert m.dtype == torch.int64
        assert m[0].tolist() == [IGNORE_INDEX] * 4 + [0] * 4 + [1 + i] * 4 + [149] * 4
    assert a.labels is None and a.dense


def test_joint_transforms_move_image_and_mask_together_and_pad_as_ignored(ade):
    tree, _ = ade
    data = open_ade20k("train", folder=tree, transform=segmentation_eval_transform(20))
    image, mask = data[0]
    assert image.shape == (3, 20, 20) and mask.shape == (20, 20)
    assert (mask[:2] == IGNORE_INDEX).all() and (image[:, :2] == 0).all()   # padding rows above the centred frame
    train = data.with_transform(segmentation_train_transform(crop=8, scale=(0.5, 1.0)))
    (x1, m1), (x2, m2) = train[(0, 7)], train[(0, 7)]
    assert x1.shape == (3, 8, 8) and torch.equal(x1, x2) and torch.equal(m1, m2)    # the draw seed fixes the crop
    assert set(m1.unique().tolist()) <= {IGNORE_INDEX, 0, 1, 149}


def test_errors_for_a_missing_folder_missing_annotations_a_wrong_schema_and_bad_checksums(ade, tmp_path):
    import datasets

    tree, parquet = ade
    with pytest.raises(MissingDataError, match=r"ade20k: the folder .*nowhere does not exist"):
        open_ade20k("train", folder=tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"ade20k/train: unknown layout 'imagefolder'; accepted: parquet, release"):
        open_ade20k("train", folder=tmp_path / "nowhere", layout="imagefolder")   # before the folder is looked at
    png = tree / "annotations" / "training" / "ADE_train_00000002.png"
    flip_a_byte(png)
    data = open_ade20k("train", folder=tree)
    with pytest.raises(ChecksumError, match=f"checksum mismatch for {png}: sha256 {sha256(png)}"):
        data[1]
    png.unlink()
    with pytest.raises(MissingDataError, match=r"1 annotations missing .*annotations/training/ADE_train_00000002.png"):
        open_ade20k("train", folder=tree)
    rel = "scene_parsing/train/0000.parquet"
    write_parquet(parquet / rel, {"image": [{"bytes": encoded(random_image(np.random.default_rng(1))), "path": None}]},
                  datasets.Features({"image": datasets.Image()}))
    with pytest.raises(ChecksumError, match="checksum mismatch .*0000.parquet: sha256 .* download record"):
        open_ade20k("train", folder=parquet)
    hub_record(parquet, rel)
    with pytest.raises(DataSchemaError, match=r"columns \['annotation'\] missing; found \['image'\]"):
        open_ade20k("train", folder=parquet)


def test_without_a_folder_the_hubs_parquet_conversion_is_loaded(ade, monkeypatch):
    import datasets

    import lib.data.images as images

    _, parquet = ade
    local = datasets.load_dataset("parquet", split="train", data_files=str(parquet / "scene_parsing/train/0000.parquet"))
    calls = []
    monkeypatch.setattr(images, "_check_hub_reachable", lambda card: None)
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, **kw: calls.append((path, name, kw)) or local)
    data = open_ade20k("train")
    assert calls == [("scene_parse_150", "scene_parsing", {"split": "train", "revision": "refs/convert/parquet"})]
    assert data.info["origin"] == "hub" and data[1][1][0, 8].item() == 2


def test_a_segmentation_model_trains_and_is_evaluated_on_the_streamed_set(ade, tmp_path):
    from torch import nn

    from fakes import card_copy
    from lib.measure.segmentation import segmentation_criterion, segmentation_evaluator
    from lib.train import TrainConfig, fit, seed_everything

    tree, _ = ade
    for kind in ("images", "annotations"):              # the two frames serve as the validation split too
        (tree / kind / "validation").symlink_to(tree / kind / "training", target_is_directory=True)
    sums = (tree / "SHA256SUMS").read_text()
    (tree / "SHA256SUMS").write_text(sums + sums.replace("/training/", "/validation/"))
    card_copy("ade20k", tmp_path / "cards", splits={"train": {"rows": 2, "files": ["scene_parsing/train/*.parquet"]},
                                                    "validation": {"rows": 2, "files": ["x/*.parquet"]}})
    train = open_ade20k("train", folder=tree, transform=segmentation_train_transform(crop=8, scale=(0.5, 1.0)))
    test = open_ade20k("validation", folder=tree, transform=segmentation_eval_transform(16))
    seed_everything(0, threads=1)
    model = nn.Conv2d(3, 150, 1)
    out = fit(model, train, test, TrainConfig(epochs=2, batch_size=2, lr=0.1, augment=False), seed=0,
              criterion=segmentation_criterion(), evaluator=segmentation_evaluator(train.classes), workers=0,
              progress=False)
    assert 0 <= out["metrics"]["test_miou"] <= 100 and out["metrics"]["test_loss"] > 0
    assert len(out["history"]) == 2
