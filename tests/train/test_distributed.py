"""Two CPU processes (gloo) and one process at the same global batch give the same losses."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")


def _run(command, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command + [str(WORKER), str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_two_processes_match_one_process(tmp_path):
    one = _run([sys.executable], tmp_path / "one.json")
    two = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"],
               tmp_path / "two.json")
    assert (one["world"], two["world"]) == (1, 2)
    for a, b in zip(one["history"], two["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["train_acc"] == pytest.approx(b["train_acc"], abs=1e-9)
    assert one["metrics"]["test_loss"] == pytest.approx(two["metrics"]["test_loss"], abs=1e-5)
    assert len(two["dann_losses"]) == 2 and all(v == v for v in two["dann_losses"])   # DANN ran, weight 0 too
    # only the main process writes the checkpoint
    assert (tmp_path / "two.json.ckpt" / "checkpoint.pt").is_file()
