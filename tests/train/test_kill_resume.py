"""SIGKILL during epoch k, run again: it resumes from the last checkpoint and ends with identical numbers."""
import json
import os
import pathlib
import signal
import subprocess
import sys

WORKER = pathlib.Path(__file__).with_name("killable_worker.py")


def _run(run_dir, out, kill_at=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("KILL_AT", None)
    if kill_at:
        env["KILL_AT"] = kill_at
    return subprocess.run([sys.executable, str(WORKER), str(run_dir), str(out)], env=env, capture_output=True,
                          text=True, timeout=120)


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    whole = _run(tmp_path / "whole", tmp_path / "whole.json")
    assert whole.returncode == 0, whole.stderr
    killed = _run(tmp_path / "cut", tmp_path / "cut.json", kill_at="2:1")   # during the third epoch
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "cut.json").exists()
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    resumed = _run(tmp_path / "cut", tmp_path / "cut.json")
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads((tmp_path / "whole.json").read_text()), json.loads((tmp_path / "cut.json").read_text())
    assert b["resumed_from_epoch"] == 2
    assert a["metrics"] == b["metrics"]
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
