"""TrainConfig.precision: fp32 is the plain loop bit for bit; bf16 autocasts the forward pass, keeps the loss fp32."""
import contextlib

import pytest
import torch
from torch import nn

import lib.train as train_module
from lib.data import ImageData
from lib.train import TrainConfig, fit, seed_everything


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 4,
                     list("abcd"), "synthetic", "train")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 4)
        self.dtypes = []

    def forward(self, x):
        h = self.conv(x)
        self.dtypes.append(h.dtype)
        return self.head(torch.relu(self.bn(h)).mean((2, 3)))


def _run(precision, **kwargs):
    seed_everything(0, 1)
    model = Net()
    out = fit(model, _data(32, 0), _data(16, 1), TrainConfig(epochs=2, batch_size=8, precision=precision, **kwargs),
              seed=0, progress=False)
    return model, out


def test_fp32_is_the_loop_without_autocast_bit_for_bit(monkeypatch):
    _, default = _run("fp32")
    monkeypatch.setattr(train_module, "training_autocast", lambda precision, device: contextlib.nullcontext())
    _, plain = _run("fp32")
    assert default["metrics"] == plain["metrics"]
    assert [h["train_loss"] for h in default["history"]] == [h["train_loss"] for h in plain["history"]]


def test_bf16_autocasts_the_training_forward_and_keeps_weights_and_evaluation_fp32():
    model, out = _run("bf16")
    fp32_model, fp32 = _run("fp32")
    assert torch.bfloat16 in model.dtypes and model.dtypes[-1] == torch.float32   # training bf16, evaluation fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert out["metrics"] != fp32["metrics"] and all(v == v for v in out["metrics"].values())
    assert abs(out["metrics"]["train_loss"] - fp32["metrics"]["train_loss"]) < 0.1


def test_an_unknown_precision_names_the_accepted_ones():
    with pytest.raises(ValueError, match="precision 'fp8' is not supported; accepted: fp32, bf16, fp16"):
        TrainConfig(epochs=1, precision="fp8")
