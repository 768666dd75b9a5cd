"""lib.train.fit: determinism, paired data order, resume equals an uninterrupted run, non-finite stop."""
import pytest
import torch
from torch import nn

from lib.data import ImageData
from lib.train import NonFiniteLossError, TrainConfig, epoch_generator, fit, seed_everything


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 4
    return ImageData(images, labels, list("abcd"), "synthetic", "train")


def _model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


def _run(config, seed=0, run_dir=None):
    seed_everything(seed, threads=1)
    return fit(_model(), _data(), _data(32, seed=1), config, seed=seed, run_dir=run_dir, progress=False)


CONFIG = TrainConfig(epochs=3, batch_size=16, lr=0.05)


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b, c = _run(CONFIG), _run(CONFIG), _run(CONFIG, seed=1)
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert a["metrics"] == b["metrics"]
    assert a["metrics"]["train_loss"] != c["metrics"]["train_loss"]


def test_history_has_per_epoch_metrics_and_timings():
    out = _run(CONFIG)
    assert [h["epoch"] for h in out["history"]] == [1, 2, 3]
    assert all(h["images_per_s"] > 0 and h["epoch_time_s"] > 0 for h in out["history"])
    assert 0 <= out["metrics"]["test_acc"] <= 100 and out["wall_time_s"] > 0


def test_data_order_depends_on_seed_and_epoch_only():
    a = torch.randperm(10, generator=epoch_generator(3, 1))
    b = torch.randperm(10, generator=epoch_generator(3, 1))
    assert torch.equal(a, b) and not torch.equal(a, torch.randperm(10, generator=epoch_generator(3, 2)))


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    reference = _run(CONFIG, run_dir=tmp_path / "whole")
    # interrupted run: the first call trains 2 epochs of the 3-epoch schedule (a crash after epoch 2)
    short = TrainConfig(**{**CONFIG.__dict__, "epochs": 3})
    seed_everything(0, threads=1)
    import lib.train as train_module

    original = train_module.evaluate
    calls = {"n": 0}

    def crash_after_two_epochs(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    train_module.evaluate = crash_after_two_epochs
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(_model(), _data(), _data(32, seed=1), short, seed=0, run_dir=tmp_path / "cut", progress=False)
    finally:
        train_module.evaluate = original
    resumed = _run(short, run_dir=tmp_path / "cut")
    assert resumed["resumed_from_epoch"] == 2
    assert resumed["metrics"] == reference["metrics"]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in reference["history"]]


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    _run(TrainConfig(epochs=1, batch_size=16), run_dir=tmp_path)
    with pytest.raises(ValueError, match="another configuration"):
        _run(TrainConfig(epochs=1, batch_size=32), run_dir=tmp_path)


def test_non_finite_loss_names_run_epoch_and_step():
    with pytest.raises(NonFiniteLossError, match=r"arm-x \(seed 0\).*epoch 0, step \d"):
        seed_everything(0, threads=1)
        fit(_model(), _data(), _data(32), TrainConfig(epochs=1, batch_size=16, lr=1e30), seed=0, label="arm-x",
            progress=False)


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", -1), ("eval_every", 1.5)])
def test_bad_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{"epochs": 1, field: value})
