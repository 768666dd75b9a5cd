"""Worker for test_ols_distributed: each of two ranks sees half of every batch; rank 0's state is what fit saves."""
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
from lib.losses import OnlineLabelSmoothing  # noqa: E402
from tests.losses.fixed_logits import Fixed  # noqa: E402
from tests.losses.two_processes import start, stop  # noqa: E402


def main(out):
    world, rank, idx = start(8)
    torch.manual_seed(0)
    logits, y = torch.randn(8, 3) * 3, torch.arange(8) % 3
    straight = OnlineLabelSmoothing(3, epochs=2)
    straight(Fixed(logits), idx, y[idx], 0.0)
    straight(Fixed(logits), idx, y[idx], 0.5)
    first = OnlineLabelSmoothing(3, epochs=2)
    first(Fixed(logits), idx, y[idx], 0.0)
    state = [first.state_dict() if rank == 0 else None]             # fit: rank 0 saves, every rank loads
    if world > 1:
        dist.broadcast_object_list(state, 0)
    resumed = OnlineLabelSmoothing(3, epochs=2)
    resumed.load_state_dict(state[0])
    resumed(Fixed(logits), idx, y[idx], 0.5)
    stop(world, rank, out, {"straight": straight.soft.tolist(), "resumed": resumed.soft.tolist()})


if __name__ == "__main__":
    main(sys.argv[1])
