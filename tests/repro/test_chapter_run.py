"""Chapter.run: paired order, resume of finished runs, failed runs recorded, parallel workers equal serial."""
import os

import pytest
import torch
import yaml
from torch import nn

from lib.data import ImageData
from lib.repro import Chapter
from lib.train import TrainConfig, fit, seed_everything


@pytest.fixture
def chapter(tmp_path, monkeypatch):
    folder = tmp_path / "papers" / "toy"
    folder.mkdir(parents=True)
    (folder / "scales.yaml").write_text(yaml.safe_dump({"smoke": {"seeds": 2, "epochs": 2}}))
    (folder / "claims.yaml").write_text(yaml.safe_dump({"claims": [
        {"id": "a-beats-b", "text": "t", "kind": "statistical", "paper": {}, "arms": ["a", "b"], "metric": "acc"}]}))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    return Chapter("toy", root=tmp_path)


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 4,
                     list("abcd"), "synthetic", "train")


def train_toy(arm, seed, run_dir):
    seed_everything(seed)
    width = 4 if arm == "a" else 6
    model = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(width, 4))
    out = fit(model, _data(32, 0), _data(16, 1), TrainConfig(epochs=2, batch_size=8), seed=seed, run_dir=run_dir,
              progress=False)
    return {**out, "threads": torch.get_num_threads()}


def test_parallel_workers_give_the_serial_numbers_in_seed_arm_order(chapter, monkeypatch):
    params = chapter.parameters({"scale": "smoke"}, before=set())
    monkeypatch.setenv("REPRO_THREADS", "1")
    serial = chapter.run(["a", "b"], [0, 1, 2], train_toy, params, workers=1)
    monkeypatch.setenv("REPRO_RUNS_DIR", os.environ["REPRO_RUNS_DIR"] + "-parallel")
    monkeypatch.delenv("REPRO_THREADS")
    workers = max(2, len(os.sched_getaffinity(0)))   # one thread each, like the serial reference
    parallel = chapter.run(["a", "b"], [0, 1, 2], train_toy, params, workers=workers)
    assert [(r["seed"], r["arm"]) for r in parallel] == [(s, a) for s in (0, 1, 2) for a in ("a", "b")]
    assert [r["metrics"] for r in parallel] == [r["metrics"] for r in serial]
    assert all(r["threads"] == 1 for r in parallel)


def test_the_last_run_left_trains_with_the_thread_count_of_its_siblings(chapter, monkeypatch):
    # an execution interrupted with one run left resumes it in a worker, not in the kernel with every CPU: a run's
    # numbers must not depend on whether it was resumed alone (bit-identity across chapters needs the threads)
    params = chapter.parameters({"scale": "smoke"}, before=set())
    monkeypatch.setattr("lib.repro.chapter._cpus", lambda: 2)
    first = chapter.run(["a", "b"], [0, 1], train_toy, params, workers=2)
    record = chapter.runs_root(params) / "b" / "seed-1" / "record.json"
    record.unlink()
    again = chapter.run(["a", "b"], [0, 1], train_toy, params, workers=2)
    assert [r["threads"] for r in again] == [1, 1, 1, 1]
    assert [r["metrics"] for r in again] == [r["metrics"] for r in first]


def test_finished_runs_are_read_back_not_rerun(chapter):
    params = chapter.parameters({"scale": "smoke"}, before=set())
    first = chapter.run(["a", "b"], [0, 1], train_toy, params, workers=1)

    def must_not_run(*args):
        raise AssertionError("a finished run was trained again")

    assert chapter.run(["a", "b"], [0, 1], must_not_run, params, workers=2) == first


def test_non_finite_run_is_recorded_failed_and_reported(chapter):
    params = chapter.parameters({"scale": "smoke"}, before=set())

    def diverge(arm, seed, run_dir):
        if arm == "a" and seed == 1:
            raise FloatingPointError("a (seed 1): loss is nan at epoch 0, step 3")
        return {"metrics": {"acc": 50.0 + seed + (arm == "a")}}

    runs = chapter.run(["a", "b"], [0, 1, 2], diverge, params, workers=1)
    assert [(r["arm"], r["seed"]) for r in runs] == [("a", 0), ("b", 0), ("b", 1), ("a", 2), ("b", 2)]
    assert [(r["arm"], r["seed"], r["status"]) for r in chapter.failed_runs.values()] == [("a", 1, "failed")]
    report = chapter.report(params, runs)
    assert report["failed_runs"] == ["a seed 1: a (seed 1): loss is nan at epoch 0, step 3"]
    assert [r["status"] for r in report["runs"]].count("failed") == 1
    assert chapter.results_path("smoke").is_file()
