"""Worker for test_bias_loss_under_two_processes: each of two ranks sees half of every batch; the mean of the ranks'
losses (what DDP's averaged gradient follows) must equal one process's loss on the whole batch."""
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
from lib.losses import BiasLoss  # noqa: E402
from tests.losses.test_bias_loss import Stand  # noqa: E402
from tests.losses.two_processes import start, stop  # noqa: E402


def main(out):
    world, rank, idx = start(8)
    torch.manual_seed(0)
    # the smallest and largest variances of each batch sit on different ranks
    batches = [torch.randn(8, 4, 2, 2) * torch.linspace(0.5, 3.0, 8)[:, None, None, None] * (1 + b) for b in range(3)]
    y = torch.arange(8) % 3
    criterion, losses = BiasLoss(), []
    for features in batches:
        torch.manual_seed(1)
        loss, _ = criterion(Stand(features), idx, y[idx], 0.0)
        loss = loss.detach()
        if world > 1:
            dist.all_reduce(loss)
            loss /= world
        losses.append(loss.item())
    stop(world, rank, out, {"losses": losses, "running_min": float(criterion.running_min)})


if __name__ == "__main__":
    main(sys.argv[1])
