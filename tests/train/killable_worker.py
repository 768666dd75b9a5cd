"""A tiny training run that SIGKILLs itself at a given (epoch, step) when KILL_AT="epoch:step" is set.

Used by test_kill_resume.py: the kill is a real SIGKILL (no cleanup, no exception handlers), delivered
during the epoch at a deterministic point.
"""
import json
import os
import signal
import sys

import torch
from torch import nn

from lib.data import ImageData
from lib.train import TrainConfig, fit, seed_everything

STEPS_PER_EPOCH = 4


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 4,
                     list("abcd"), "synthetic", "train")


def main(run_dir: str, out: str) -> None:
    seed_everything(0, threads=1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4))
    kill_at = os.environ.get("KILL_AT")
    if kill_at:
        epoch, step = map(int, kill_at.split(":"))
        calls = {"n": 0}

        def hook(module, args):
            if module.training:
                calls["n"] += 1
                if calls["n"] == epoch * STEPS_PER_EPOCH + step + 1:
                    os.kill(os.getpid(), signal.SIGKILL)

        model.register_forward_pre_hook(hook)
    result = fit(model, data(16 * STEPS_PER_EPOCH, 0), data(32, 1), TrainConfig(epochs=4, batch_size=16, lr=0.05),
                 seed=0, run_dir=run_dir, progress=False)
    with open(out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
