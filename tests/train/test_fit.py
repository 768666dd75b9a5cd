"""lib.train.fit: determinism, paired data order, resume equals an uninterrupted run, non-finite stop."""
import pytest
import torch
from torch import nn

from lib.train import NonFiniteLossError, TrainConfig, epoch_generator, fit, seed_everything
from tiny import tiny_data as _data, tiny_model as _model


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


def test_resume_after_interruption_equals_uninterrupted(tmp_path, interrupt_at_evaluation):
    reference = _run(CONFIG, run_dir=tmp_path / "whole")
    # interrupted run: the first call trains 2 epochs of the 3-epoch schedule (a crash after epoch 2)
    short = TrainConfig(**{**CONFIG.__dict__, "epochs": 3})
    seed_everything(0, threads=1)
    interrupt_at_evaluation(3)
    with pytest.raises(KeyboardInterrupt):
        fit(_model(), _data(), _data(32, seed=1), short, seed=0, run_dir=tmp_path / "cut", progress=False)
    interrupt_at_evaluation.restore()
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


# --- hooks: criterion, sampler, augment, evaluator -------------------------------------------------------------


class _CountingCE(nn.Module):
    """Cross-entropy that counts its calls in a buffer and records the progress values it was given."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.progress = []

    def forward(self, model, x, labels, progress):
        self.calls += 1
        self.progress.append(progress)
        logits = model(x)
        return nn.functional.cross_entropy(logits, labels), logits


def test_default_criterion_equals_an_explicit_cross_entropy_criterion():
    a = _run(CONFIG)
    seed_everything(0, threads=1)
    b = fit(_model(), _data(), _data(32, seed=1), CONFIG, seed=0, progress=False, criterion=_CountingCE())
    assert a["metrics"] == b["metrics"]


def test_criterion_gets_progress_and_its_buffers_survive_resume(tmp_path):
    whole = _CountingCE()
    seed_everything(0, threads=1)
    fit(_model(), _data(), _data(32, seed=1), CONFIG, seed=0, progress=False, criterion=whole)
    steps = 3 * (64 // 16)
    assert whole.calls.item() == steps
    assert whole.progress == [k / steps for k in range(steps)]   # fraction of training done, in [0, 1)
    seed_everything(0, threads=1)
    fit(_model(), _data(), _data(32, seed=1), TrainConfig(**{**CONFIG.__dict__}), seed=0, progress=False,
        criterion=_CountingCE(), run_dir=tmp_path)
    resumed = _CountingCE()   # a fresh criterion: its count must come back from the checkpoint
    seed_everything(0, threads=1)
    fit(_model(), _data(), _data(32, seed=1), CONFIG, seed=0, progress=False, criterion=resumed, run_dir=tmp_path)
    assert resumed.calls.item() == steps and resumed.progress == []


class _ClassZeroSampler:
    """Draws 32 indices per epoch, only from class 0, with the epoch's generator."""

    def __init__(self, labels):
        self.pool = torch.nonzero(labels == 0).flatten()

    def __len__(self):
        return 32

    def __call__(self, generator, epoch):
        return self.pool[torch.randint(len(self.pool), (32,), generator=generator)]


def test_sampler_sets_the_epoch_length_and_the_examples_seen():
    seen = []

    def augment(images, labels, generator):
        seen.append(labels.clone())
        return images, labels

    seed_everything(0, threads=1)
    out = fit(_model(), _data(), _data(32, seed=1), CONFIG, seed=0, progress=False,
              sampler=_ClassZeroSampler(_data().labels), augment=augment)
    assert len(seen) == 3 * (32 // 16)              # steps per epoch come from len(sampler)
    assert all((labels == 0).all() for labels in seen)
    assert out["train_images_per_s"] > 0


def test_augment_replaces_crop_flip_and_may_change_labels():
    def relabel(images, labels, generator):
        return images, torch.zeros_like(labels)

    seed_everything(0, threads=1)
    out = fit(_model(), _data(), _data(32, seed=1), TrainConfig(epochs=3, batch_size=16, lr=0.5), seed=0,
              progress=False, augment=relabel)
    assert out["metrics"]["train_acc"] > 90          # every training label became 0: trivially learnt


def test_evaluator_metrics_are_returned_and_must_be_named_test():
    def evaluator(model, test, mean, std, accelerator, config):
        return {"test_examples": float(len(test)), "test_acc": 12.5}

    seed_everything(0, threads=1)
    out = fit(_model(), _data(), _data(32, seed=1), CONFIG, seed=0, progress=False, evaluator=evaluator)
    assert out["metrics"]["test_examples"] == 32 and out["metrics"]["test_acc"] == 12.5
    with pytest.raises(ValueError, match=r"named test_\*, got \['miou'\]"):
        fit(_model(), _data(), _data(32, seed=1), CONFIG, seed=0, progress=False,
            evaluator=lambda *args: {"miou": 1.0})


def test_dense_labels_train_accuracy_ignores_void():
    """Masks as labels (segmentation): train_acc counts only labels in [0, classes); 255 is void."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=g)
    masks = torch.zeros(32, 8, 8, dtype=torch.long)
    masks[:, :, 4:] = 255                               # half of every mask is void

    class Masks:
        def __init__(self, images, labels):
            self.images, self.labels = images, labels

        def __len__(self):
            return len(self.images)

        def channel_stats(self):
            return torch.full((3,), 0.5), torch.full((3,), 0.25)

    def criterion(model, x, labels, progress):
        logits = model(x)
        return nn.functional.cross_entropy(logits, labels, ignore_index=255), logits

    model = nn.Conv2d(3, 4, 1)
    nn.init.zeros_(model.weight)
    with torch.no_grad():
        model.bias.copy_(torch.tensor([10.0, 0, 0, 0]))   # predicts class 0 everywhere, and stays there
    seed_everything(0, threads=1)
    out = fit(model, Masks(images, masks), Masks(images, masks), TrainConfig(epochs=1, batch_size=16, lr=1e-6),
              seed=0, progress=False, criterion=criterion, augment=lambda i, l, g: (i, l),
              evaluator=lambda *args: {"test_none": 0.0})
    assert out["metrics"]["train_acc"] == 100.0       # all non-void pixels right; void pixels not counted
