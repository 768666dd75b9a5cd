"""Worker for test_ols_distributed: each of two ranks sees half of every batch; rank 0's state is what fit saves."""
import json
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
from lib.losses import OnlineLabelSmoothing  # noqa: E402
from tests.losses.fixed_logits import Fixed  # noqa: E402


def main(out):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    torch.manual_seed(0)
    logits, y = torch.randn(8, 3) * 3, torch.arange(8) % 3
    share = 8 // world
    idx = torch.arange(rank * share, (rank + 1) * share)
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
    if rank == 0:
        with open(out, "w") as handle:
            json.dump({"world": world, "straight": straight.soft.tolist(), "resumed": resumed.soft.tolist()}, handle)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
