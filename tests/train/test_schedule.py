"""TrainConfig.schedule_unit: the warm-up + cosine factor per step (default, unchanged) or held per epoch.

The learning rates are read from the optimizer at every step of a tiny fit (a global step pre-hook), 4 steps
per epoch (64 synthetic images, batch 16).
"""
import math

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from lib.train import SCHEDULE_UNITS, TrainConfig, fit, load_checkpoint, seed_everything
from tiny import tiny_data as _data, tiny_model as _model

STEPS_PER_EPOCH = 64 // 16


def _fit(config, run_dir=None):
    """(learning rate of every optimizer step, fit's result) of a tiny run."""
    rates = []
    handle = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: rates.append(optimizer.param_groups[0]["lr"]))
    try:
        seed_everything(0, threads=1)
        out = fit(_model(), _data(64, 0), _data(32, 1), config, seed=0, run_dir=run_dir, progress=False)
    finally:
        handle.remove()
    return rates, out


def _per_epoch(rates):
    return [rates[k:k + STEPS_PER_EPOCH] for k in range(0, len(rates), STEPS_PER_EPOCH)]


def test_epoch_unit_holds_the_official_cosine_for_a_whole_epoch():
    rates, out = _fit(TrainConfig(epochs=4, batch_size=16, lr=0.2, schedule_unit="epoch"))
    # 0.2 (1 + cos(pi e / 4)) / 2 for e = 0, 1, 2, 3, by hand
    expected = [0.2, 0.17071067811865476, 0.1, 0.029289321881345254]
    assert len(rates) == 4 * STEPS_PER_EPOCH
    for epoch, (got, want) in enumerate(zip(_per_epoch(rates), expected)):
        assert got == pytest.approx([want] * STEPS_PER_EPOCH, rel=1e-12, abs=1e-15), f"epoch {epoch}"
    # history[e]["lr"] is the rate after the epoch's last step: the next epoch's, 0 after the last
    assert [h["lr"] for h in out["history"]] == pytest.approx(expected[1:] + [0.0], rel=1e-12, abs=1e-15)


def test_epoch_unit_is_cosine_annealing_lr_stepped_after_each_epoch():
    epochs = 6
    rates, _ = _fit(TrainConfig(epochs=epochs, batch_size=16, lr=0.2, schedule_unit="epoch"))
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.2)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
    official = []
    for _ in range(epochs):
        official.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    assert [epoch[0] for epoch in _per_epoch(rates)] == pytest.approx(official, rel=1e-12, abs=1e-15)


def test_epoch_unit_with_warm_up_by_hand():
    rates, _ = _fit(TrainConfig(epochs=5, batch_size=16, lr=0.2, warmup_epochs=2, schedule_unit="epoch"))
    # warm-up (e + 1) / 2 for e = 0, 1; then (1 + cos(pi (e - 2) / 3)) / 2 for e = 2, 3, 4
    expected = [0.2 * f for f in (0.5, 1.0, 1.0, 0.75, 0.25)]
    for got, want in zip(_per_epoch(rates), expected):
        assert got == pytest.approx([want] * STEPS_PER_EPOCH, rel=1e-12)


@pytest.mark.parametrize("warmup_epochs", [0, 1])
def test_step_unit_is_the_default_and_the_per_step_schedule_is_unchanged(warmup_epochs):
    config = TrainConfig(epochs=3, batch_size=16, lr=0.05, warmup_epochs=warmup_epochs)
    assert config.schedule_unit == "step"
    rates, out = _fit(config)
    explicit_rates, explicit = _fit(TrainConfig(**{**config.__dict__, "schedule_unit": "step"}))
    total, warmup = 3 * STEPS_PER_EPOCH, warmup_epochs * STEPS_PER_EPOCH
    by_hand = [0.05 * ((s + 1) / warmup if s < warmup
                       else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))) for s in range(total)]
    assert rates == pytest.approx(by_hand, rel=1e-12)
    assert rates == explicit_rates and out["metrics"] == explicit["metrics"]
    assert len(set(rates[warmup:])) == total - warmup   # a new rate at every step after the warm-up


def test_bad_schedule_unit_is_refused_with_the_accepted_values():
    assert SCHEDULE_UNITS == ("step", "epoch")
    with pytest.raises(ValueError, match=r"schedule_unit 'batch' is not supported; accepted: step, epoch"):
        TrainConfig(epochs=1, schedule_unit="batch")


def test_epoch_unit_resumes_exactly(tmp_path, interrupt_at_evaluation):
    config = TrainConfig(epochs=3, batch_size=16, lr=0.2, schedule_unit="epoch")
    whole_rates, whole = _fit(config, run_dir=tmp_path / "whole")
    interrupt_at_evaluation(3)
    with pytest.raises(KeyboardInterrupt):
        _fit(config, run_dir=tmp_path / "cut")
    interrupt_at_evaluation.restore()
    resumed_rates, resumed = _fit(config, run_dir=tmp_path / "cut")
    assert resumed["resumed_from_epoch"] == 2
    assert resumed_rates == whole_rates[2 * STEPS_PER_EPOCH:]
    assert resumed["history"][-1]["train_loss"] == whole["history"][-1]["train_loss"]


def test_checkpoint_from_before_the_field_resumes_with_its_default_only(tmp_path):
    config = TrainConfig(epochs=1, batch_size=16)
    _fit(config, run_dir=tmp_path)
    checkpoint = tmp_path / "checkpoint.pt"
    state = load_checkpoint(checkpoint)
    del state["config"]["schedule_unit"]   # as written before TrainConfig had the field
    torch.save(state, checkpoint)
    rates, out = _fit(config, run_dir=tmp_path)
    assert out["resumed_from_epoch"] == 1 and rates == []   # finished: nothing trained again
    with pytest.raises(ValueError, match="another configuration"):
        _fit(TrainConfig(epochs=1, batch_size=16, schedule_unit="epoch"), run_dir=tmp_path)
