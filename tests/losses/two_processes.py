"""Running a loss on one process and on two (torch.distributed.run, gloo), for the tests that compare them.

A worker script is run once alone and once as two ranks; each writes a JSON record (rank 0 only) to the path it is
given. Workers call ``start()`` first (the world size, this rank, and its half of a batch of ``n``) and ``stop()``
last."""
import json
import os
import pathlib
import subprocess
import sys

import torch
import torch.distributed as dist


def one_and_two_processes(worker: str, tmp_path: pathlib.Path, port: int) -> tuple[dict, dict]:
    """The records the worker (a file beside this one) writes alone and as two ranks."""
    script = pathlib.Path(__file__).with_name(worker)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    records = []
    for prefix, name in (([sys.executable], "one.json"),
                         ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(port)], "two.json")):
        done = subprocess.run(prefix + [str(script), str(tmp_path / name)], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        records.append(json.loads((tmp_path / name).read_text()))
    one, two = records
    assert (one["world"], two["world"]) == (1, 2)
    return one, two


def start(n: int) -> tuple[int, int, torch.Tensor]:
    """Join the process group when there is one; the world size, this rank and the indices of its share of n rows."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    share = n // world
    return world, rank, torch.arange(rank * share, (rank + 1) * share)


def stop(world: int, rank: int, out: str, record: dict) -> None:
    """Rank 0 writes the record; the process group is left."""
    if rank == 0:
        with open(out, "w") as handle:
            json.dump({"world": world, **record}, handle)
    if world > 1:
        dist.destroy_process_group()
