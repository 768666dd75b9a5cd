"""fit on streamed data (lib.data.streaming) and resuming in the middle of an epoch.

The streamed path is the same loop: on images that need no transform it gives the in-memory path's numbers; its
results do not depend on the number of decoding workers; a run stopped mid-epoch or at an epoch's end and resumed
ends where the uninterrupted run ends, bit for bit, streamed or in memory, with every recipe option's state
(optimizer, schedule, weight average, accumulation, augmentation draws) restored."""
import pytest
import torch

from fakes import imagenet_tree
from lib.data import ImageData
from lib.data.streaming import IMAGENET_MEAN, IMAGENET_STD, eval_transform, open_images, train_transform
from lib.train import TrainConfig, fit, seed_everything
from tiny import tiny_data, tiny_model, weights_digest

CONFIG = TrainConfig(epochs=2, batch_size=8, lr=0.05, augment=False)     # 24 training images: 3 steps per epoch


@pytest.fixture
def tree(tmp_path, monkeypatch):
    folder = imagenet_tree(tmp_path, {"train": 8, "validation": 2}, size=(8, 8), vary=False)
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", tmp_path / "cards")
    monkeypatch.delenv("REPRO_DATA", raising=False)
    return folder


def _run(train, test, config=CONFIG, run_dir=None, stop_at=None, **kwargs):
    """(model, fit's result); ``stop_at=n`` interrupts the n-th training forward pass (KeyboardInterrupt)."""
    seed_everything(0, threads=1)
    model = tiny_model()
    if stop_at is not None:
        calls = {"n": 0}

        def hook(module, args):
            if module.training:
                calls["n"] += 1
                if calls["n"] == stop_at:
                    raise KeyboardInterrupt

        model.register_forward_pre_hook(hook)
    return model, fit(model, train, test, config, seed=0, run_dir=run_dir, progress=False, **kwargs)


def _same(a, b):
    assert weights_digest(a[0]) == weights_digest(b[0]) and a[1]["metrics"] == b[1]["metrics"]
    assert [h["train_loss"] for h in a[1]["history"]] == [h["train_loss"] for h in b[1]["history"]]


class _Decoded(ImageData):
    def channel_stats(self):    # the streamed set's stated statistics, so that both paths normalise alike
        return torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)


def _decoded(data):
    images = torch.stack([data[i][0] for i in range(len(data))])
    return _Decoded(images, data.labels.clone(), data.classes, data.name, data.split)


def test_streamed_data_without_a_transform_gives_the_in_memory_numbers(tree):
    train, test = open_images("imagenet1k", "train", folder=tree), open_images("imagenet1k", "validation", folder=tree)
    streamed = _run(train, test, workers=0)
    in_memory = _run(_decoded(train), _decoded(test))
    _same(streamed, in_memory)
    assert streamed[1]["history"][-1]["test_acc"] == in_memory[1]["history"][-1]["test_acc"]


def test_the_numbers_do_not_depend_on_the_number_of_decoding_workers(tree):
    train = open_images("imagenet1k", "train", folder=tree, transform=train_transform(8, scale=(0.25, 1.0)))
    test = open_images("imagenet1k", "validation", folder=tree, transform=eval_transform(8, 8))
    _same(_run(train, test, workers=0), _run(train, test, workers=2))


def test_a_streamed_run_resumed_mid_epoch_or_at_an_epoch_end_equals_the_uninterrupted_run(tree, tmp_path,
                                                                                      interrupt_at_evaluation):
    train = open_images("imagenet1k", "train", folder=tree, transform=train_transform(8, scale=(0.25, 1.0)))
    test = open_images("imagenet1k", "validation", folder=tree, transform=eval_transform(8, 8))
    whole = _run(train, test, workers=0)
    with pytest.raises(KeyboardInterrupt):                 # stopped at epoch 1, step 1 (the 5th step)
        _run(train, test, run_dir=tmp_path / "mid", stop_at=5, checkpoint_every=1, workers=0)
    resumed = _run(train, test, run_dir=tmp_path / "mid", checkpoint_every=1, workers=0)
    assert resumed[1]["resumed_from_epoch"] == 1 and resumed[1]["segments"][-1]["first_step"] == 1
    _same(resumed, whole)
    interrupt_at_evaluation(1)                             # stopped after epoch 0's training, before its checkpoint
    with pytest.raises(KeyboardInterrupt):
        _run(train, test, run_dir=tmp_path / "end", checkpoint_every=2, workers=0)
    interrupt_at_evaluation.restore()
    resumed = _run(train, test, run_dir=tmp_path / "end", checkpoint_every=2, workers=0)
    assert resumed[1]["resumed_from_epoch"] == 0 and resumed[1]["segments"][-1]["first_step"] == 2
    _same(resumed, whole)


def test_an_in_memory_run_with_every_recipe_option_resumes_mid_epoch_exactly(tmp_path):
    config = TrainConfig(epochs=3, batch_size=16, lr=0.02, optimizer="rmsprop_tf", nesterov=False, warmup_epochs=1,
                         schedule="multistep", lr_milestones=(2,), ema_decay=0.9, accumulate=2, label_smoothing=0.1)
    train, test = tiny_data(64, 0), tiny_data(32, 1)                          # crop + flip: draws from the epoch
    whole = _run(train, test, config)
    for stop_at, every in ((6, 1), (11, 3)):                   # micro-batches: forward calls 2 per step
        run_dir = tmp_path / f"run-{stop_at}"
        with pytest.raises(KeyboardInterrupt):
            _run(train, test, config, run_dir=run_dir, stop_at=stop_at, checkpoint_every=every)
        resumed = _run(train, test, config, run_dir=run_dir, checkpoint_every=every)
        _same(resumed, whole)


def test_a_streamed_set_refuses_the_in_memory_augmentation_and_a_bad_checkpoint_interval(tree):
    train = open_images("imagenet1k", "train", folder=tree)
    with pytest.raises(ValueError, match=r"brings its own transform .* set TrainConfig\(augment=False\)"):
        _run(train, train, TrainConfig(epochs=1, batch_size=8))
    with pytest.raises(ValueError, match="checkpoint_every must be a positive number of steps or None, got 0"):
        _run(train, train, checkpoint_every=0)
