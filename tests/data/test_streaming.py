"""lib.data.streaming's pipeline: the standard transforms, batches that depend on (seed, epoch, position) only (the
same for any number of workers or processes, a resumed epoch sees the rest of the same batches), and a transform
that leaves the global random state alone. Data: a fake ImageFolder tree of small JPEGs."""
import pytest
import torch

from fakes import imagenet_tree
from lib.data.streaming import (epoch_batches, eval_transform, make_loader, open_images, sample_seed,
                                train_transform)
from lib.train import epoch_generator


@pytest.fixture
def tree(tmp_path, monkeypatch):
    folder = imagenet_tree(tmp_path, {"train": 4})
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", tmp_path / "cards")
    monkeypatch.delenv("REPRO_DATA", raising=False)
    return folder


def test_the_standard_imagenet_transforms():
    from PIL import Image
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as TF

    image = Image.new("RGB", (400, 300), (10, 20, 30))
    image.paste((200, 100, 0), (150, 100, 250, 200))
    out = eval_transform()(image)
    assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
    assert torch.equal(out, TF.pil_to_tensor(TF.center_crop(TF.resize(image, 256), 224)))
    crop, flip, _ = train_transform().transforms
    assert isinstance(crop, v2.RandomResizedCrop) and crop.size == (224, 224) and crop.scale == (0.08, 1.0)
    assert crop.ratio == pytest.approx((3 / 4, 4 / 3)) and isinstance(flip, v2.RandomHorizontalFlip) and flip.p == 0.5
    assert train_transform()(image).shape == (3, 224, 224)


def test_batches_follow_the_epoch_order_and_split_across_processes_like_fit():
    order = torch.randperm(12, generator=epoch_generator(3, 1))
    whole = epoch_batches(order, 4, seed=3, epoch=1)
    assert [[row for row, _ in batch] for batch in whole] == order.view(3, 4).tolist()
    assert [seed for batch in whole for _, seed in batch] == [sample_seed(3, 1, p) for p in range(12)]
    halves = [epoch_batches(order, 4, seed=3, epoch=1, rank=r, world=2) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == whole
    assert epoch_batches(order, 4, seed=3, epoch=1, start_step=2) == whole[2:]
    assert sample_seed(3, 1, 0) != sample_seed(3, 2, 0) != sample_seed(4, 1, 0)


def test_a_sample_is_the_same_whichever_worker_or_process_decodes_it(tree):
    data = open_images("imagenet1k", "train", folder=tree, transform=train_transform(8, scale=(0.2, 1.0)))
    order = torch.randperm(len(data), generator=epoch_generator(0, 0))
    batches = epoch_batches(order, 4, seed=0, epoch=0)
    serial = list(make_loader(data, batches, workers=0))
    parallel = list(make_loader(data, batches, workers=2))
    assert len(serial) == 3 and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                                    for a, b in zip(serial, parallel))
    images, labels = serial[0]
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.uint8
    assert labels.tolist() == data.labels[order[:4]].tolist()
    by_rank = [list(make_loader(data, epoch_batches(order, 4, seed=0, epoch=0, rank=r, world=2), workers=0))
               for r in (0, 1)]
    assert all(torch.equal(torch.cat([a[0], b[0]]), s[0]) for a, b, s in zip(*by_rank, serial))
    other_epoch = list(make_loader(data, epoch_batches(order, 4, seed=0, epoch=1), workers=0))
    assert not torch.equal(other_epoch[0][0], serial[0][0])          # same rows, new crops


def test_decoding_leaves_the_global_random_state_alone(tree):
    data = open_images("imagenet1k", "train", folder=tree, transform=train_transform(8))
    torch.manual_seed(5)
    before = torch.get_rng_state()
    data[(0, 123)]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(data[(0, 123)][0], data[(0, 123)][0]) and not torch.equal(data[(0, 123)][0], data[(0, 124)][0])


def test_subset_and_with_transform_keep_rows_labels_and_source(tree):
    data = open_images("imagenet1k", "train", folder=tree)
    sub = data.subset([5, 0, 7])
    assert sub.labels.tolist() == data.labels[[5, 0, 7]].tolist() and len(sub) == 3
    assert torch.equal(sub[1][0], data[0][0]) and sub.info["rows"] == 3
    view = sub.with_transform(eval_transform(8, 8))
    assert view[0][0].shape == (3, 8, 8) and sub.transform is None and view.rows is sub.rows
