"""Train a tiny model with lib.train.fit and write its per-epoch losses (run by test_distributed.py).

Launched as one process (``python distributed_worker.py OUT``) or several (``torchrun --nproc_per_node 2
distributed_worker.py OUT``); the global batch is the same, so the losses must agree.
"""
import json
import sys

import torch
from torch import nn

from lib.data import ImageData
from lib.train import TrainConfig, fit, seed_everything


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 4,
                     list("abcd"), "synthetic", "train")


def main(out: str) -> None:
    seed_everything(0, threads=1)
    # no BatchNorm: under data parallelism its batch statistics are per process, so only BN-free
    # models give the single-process loss exactly
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 4))
    result = fit(model, data(64, 0), data(32, 1), TrainConfig(epochs=2, batch_size=16, lr=0.05), seed=0,
                 run_dir=out + ".ckpt", progress=False)
    # a model with buffers (BatchNorm) and a test set smaller than one evaluation batch: the second process
    # has nothing to evaluate, which must not leave it waiting for the first
    bn_model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(8, 4))
    fit(bn_model, data(64, 0), data(8, 1), TrainConfig(epochs=1, batch_size=16, lr=0.05), seed=0, progress=False)
    # DANN through the unlabelled stream, at weight 0 as well: every parameter must take part in each backward
    # (DistributedDataParallel stops at the second step otherwise)
    from lib.losses import DANNLoss
    from lib.models import ResNetCIFAR
    from lib.nn import DANN, DomainDiscriminator

    dann_losses = []
    for weight in (1.0, 0.0):
        seed_everything(0, threads=1)
        dann = DANN(ResNetCIFAR(8, num_classes=4), DomainDiscriminator(64, hidden=16, dropout=0.0))
        run = fit(dann, data(64, 0), data(16, 1), TrainConfig(epochs=1, batch_size=16, lr=0.05), seed=0,
                  criterion=DANNLoss(weight=weight), unlabeled=data(48, 2), progress=False)
        dann_losses.append(run["metrics"]["train_loss"])
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        with open(out, "w") as handle:
            json.dump({"history": result["history"], "metrics": result["metrics"], "dann_losses": dann_losses,
                       "world": dist.get_world_size() if dist.is_initialized() else 1}, handle)


if __name__ == "__main__":
    main(sys.argv[1])
