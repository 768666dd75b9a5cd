"""Chapter.run / parameters / report: failed runs reported end to end, parameters refused before any work,
results of different chapters kept apart, arms that were not run named, workers that die with their parent."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import yaml
from torch import nn

from lib.data import ImageData
from lib.repro import Chapter, ParameterError
from lib.repro.store import StorageError
from lib.train import TrainConfig, fit, seed_everything

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _toy_chapter(root: pathlib.Path, slug: str = "toy", constraints: dict | None = None) -> Chapter:
    folder = root / "papers" / slug
    folder.mkdir(parents=True)
    presets = {"smoke": {"seeds": 3, "epochs": 2, "lr": 0.05, "arms": ["a", "b"]}}
    if constraints:
        presets["constraints"] = constraints
    (folder / "scales.yaml").write_text(yaml.safe_dump(presets))
    (folder / "claims.yaml").write_text(yaml.safe_dump({"claims": [
        {"id": "a-beats-b", "text": "t", "kind": "statistical", "paper": {}, "arms": ["a", "b"], "metric": "test_acc",
         "scales": ["smoke"]}]}))
    return Chapter(slug, root=root)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    return _toy_chapter(tmp_path)


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 4,
                     list("abcd"), "synthetic", "train")


def train_toy(arm, seed, run_dir, lr=0.05):
    seed_everything(seed, threads=1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 4))
    return fit(model, _data(32, 0), _data(16, 1), TrainConfig(epochs=2, batch_size=8, lr=lr), seed=seed,
               run_dir=run_dir, progress=False, label=f"{arm} seed {seed}")


def test_a_nan_seed_is_reported_and_the_cells_after_run_see_complete_records(toy, capsys):
    params = toy.parameters({"scale": "smoke"}, before=set())

    def run_one(arm, seed, run_dir):   # one seed of arm a diverges to NaN, as with -p lr 1e30
        return train_toy(arm, seed, run_dir, lr=1e30 if (arm, seed) == ("a", 1) else 0.05)

    runs = toy.run(["a", "b"], params.seed_list, run_one, params, workers=1)
    printed = capsys.readouterr().out
    assert "1 of 6 runs failed" in printed and "a seed 1 (seed 1): loss is nan" in printed
    # what the notebooks read after chapter.run exists on every record they get
    assert all("history" in r and "train_images_per_s" in r and "test_acc" in r["metrics"] for r in runs)
    assert len(runs) == 5
    report = toy.report(params, runs)
    assert [r["status"] for r in report["runs"]].count("failed") == 1
    assert report["failed_runs"] == ["a seed 1: a seed 1 (seed 1): loss is nan at epoch 0, step 1; the run is stopped"]
    (claim,) = report["claims"]
    assert claim["failed_seeds"] == {"a": [1], "b": []} and claim["seeds_used"] == {"a": 2, "b": 3}
    assert "a 2 of 3" in claim["summary"] and "1 run(s) failed" in claim["summary"]
    stored = json.loads(toy.results_path("smoke").read_text())
    assert stored["failed_runs"] == report["failed_runs"]


def test_claims_on_arms_that_were_not_run_say_so(toy):
    params = toy.parameters({"scale": "smoke", "arms": ["a"]}, before=set())
    runs = toy.run(["a"], params.seed_list, lambda arm, seed, d: {"metrics": {"test_acc": 50.0 + seed}}, params,
                   workers=1)
    (claim,) = toy.report(params, runs)["claims"]
    assert claim["verdict"] == "not-tested-at-this-scale"
    assert "arm(s) b were not run" in claim["summary"]


def test_results_of_two_chapters_sharing_repro_results_dir_stay_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    one, two = _toy_chapter(tmp_path, "one"), _toy_chapter(tmp_path, "two")
    assert one.results_path("smoke") != two.results_path("smoke")
    assert one.results_path("smoke") == tmp_path / "results" / "one" / "smoke.json"


def test_relative_results_and_runs_dirs_mean_the_callers_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS_DIR", "out/results")
    monkeypatch.setenv("REPRO_RUNS_DIR", "out/runs")
    monkeypatch.setenv("PWD", str(tmp_path))
    chapter = _toy_chapter(tmp_path)
    monkeypatch.chdir(chapter.dir)   # the kernel's directory
    params = chapter.parameters({"scale": "smoke"}, before=set())
    assert chapter.results_path("smoke") == tmp_path / "out" / "results" / "toy" / "smoke.json"
    assert str(chapter.runs_root(params)).startswith(str(tmp_path / "out" / "runs" / "toy"))


@pytest.mark.parametrize("given, words", [
    ({"epochs": 0}, ["epochs=0", "at least 1"]),
    ({"epochs": 2.5}, ["epochs=2.5", "whole number"]),
    ({"lr": 0.0}, ["lr=0.0", "above 0"]),
    ({"arms": ["a", "zz"]}, ["'zz'", "accepted: a, b"]),
    ({"arms": []}, ["arms=[]", "at least 1"]),
    ({"seeds": 0}, ["seeds", "0"]),
])
def test_bad_parameters_are_refused_naming_the_value_and_the_accepted_ones(tmp_path, monkeypatch, given, words):
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    chapter = _toy_chapter(tmp_path, constraints={"arms": {"choices": ["a", "b"]}})
    with pytest.raises(ParameterError) as info:
        chapter.parameters({"scale": "smoke", **given}, before=set())
    assert all(w in str(info.value) for w in words), str(info.value)


@pytest.mark.parametrize("slug", sorted(p.parent.name for p in (ROOT / "papers").glob("*/scales.yaml")))
def test_every_preset_satisfies_its_chapters_constraints_and_bad_values_are_refused(slug, tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    chapter = Chapter(slug)
    assert chapter.constraints, f"{slug}: scales.yaml declares no constraints"
    for scale in chapter.presets:
        chapter.parameters({"scale": scale}, before=set())
    preset = chapter.presets["smoke"]
    bad = [("epochs", 0)] if "epochs" in preset else []
    bad += [(k, ["no-such-arm"]) for k in ("arms", "samplers") if k in preset]
    bad += [("dataset", "mnist")] if "dataset" in preset else []
    bad += [("sweep_seeds", 0)] if "sweep_seeds" in preset else []
    for name, value in bad:
        with pytest.raises(ParameterError, match=repr(value).replace("[", r"\[").replace("]", r"\]")[:14]):
            chapter.parameters({"scale": "smoke", name: value}, before=set())


def test_an_unwritable_results_dir_is_found_before_anything_runs(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "a-file" / "results"))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    chapter = _toy_chapter(tmp_path)
    with pytest.raises(StorageError, match="results directory .* is not writable"):
        chapter.parameters({"scale": "smoke"}, before=set())


def test_two_processes_running_the_same_chapter_both_succeed(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import json, pathlib, sys
        sys.path.insert(0, {str(ROOT / "tests" / "reliability")!r})
        from test_reliability_chapter import _toy_chapter, train_toy
        from lib.repro import Chapter
        chapter = Chapter("toy", root=pathlib.Path({str(tmp_path)!r}))
        params = chapter.parameters({{"scale": "smoke"}}, before=set())
        runs = chapter.run(["a", "b"], [0, 1], train_toy, params, workers=1)
        pathlib.Path(sys.argv[1]).write_text(json.dumps([r["metrics"] for r in runs]))
    """))
    _toy_chapter(tmp_path)
    env = {**os.environ, "REPRO_RUNS_DIR": str(tmp_path / "runs"), "REPRO_RESULTS_DIR": str(tmp_path / "results"),
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"out{i}.json")], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    one, two = (json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2))
    assert one == two and len(one) == 4


WORKER_SCRIPT = """
import os, pathlib, signal, sys, time
from lib.repro import Chapter
root = pathlib.Path(sys.argv[1])
chapter = Chapter("toy", root=root)
params = chapter.parameters({"scale": "smoke"}, before=set())
def run_one(arm, seed, run_dir):
    (root / f"pid-{arm}-{seed}").write_text(str(os.getpid()))
    if sys.argv[2] == "term" and seed == 1:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(120 if sys.argv[2] == "sleep" else 0)
    return {"metrics": {"test_acc": 1.0}}
chapter.run(["a"], [0, 1], run_one, params, workers=2)
"""


def _alive(pid: int) -> bool:
    """The nightly's own liveness check (a zombie counts as dead)."""
    return _NIGHTLY._alive(pid)


def _load_nightly():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nightly", pathlib.Path(__file__).resolve().parents[2] / "ci" / "nightly.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NIGHTLY = _load_nightly()


def _start_workers(tmp_path, mode):
    _toy_chapter(tmp_path)
    env = {**os.environ, "REPRO_RUNS_DIR": str(tmp_path / "runs"), "REPRO_RESULTS_DIR": str(tmp_path / "results")}
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(tmp_path), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_training_workers_die_when_their_parent_is_killed(tmp_path):
    parent = _start_workers(tmp_path, "sleep")
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("pid-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    pids = [int(p.read_text()) for p in tmp_path.glob("pid-*")]
    assert len(pids) == 2, parent.stderr.read() if parent.poll() is not None else "workers did not start"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in pids if _alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "orphaned training workers kept running"


def test_a_worker_killed_by_sigterm_stops_the_chapter_with_its_name_instead_of_hanging(tmp_path):
    parent = _start_workers(tmp_path, "term")
    try:
        _, err = parent.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        parent.kill()
        pytest.fail("Chapter.run hung after a worker was killed")
    assert parent.returncode != 0
    assert "a seed 1 was killed by signal 15" in err and "execute the chapter again to resume" in err


def test_an_unreadable_run_record_names_the_file_and_the_remedy(toy):
    params = toy.parameters({"scale": "smoke"}, before=set())
    toy.run(["a"], [0], lambda arm, seed, d: {"metrics": {"test_acc": 1.0}}, params, workers=1)
    record = toy.runs_root(params) / "a" / "seed-0" / "record.json"
    record.write_text('{"arm": "a", "se')   # cut short
    with pytest.raises(RuntimeError, match=rf"run record {record} cannot be read.*delete it"):
        toy.run(["a"], [0], lambda arm, seed, d: {"metrics": {"test_acc": 1.0}}, params, workers=1)


def test_declarative_rules_name_the_accepted_values():
    from lib.repro.chapter import check_constraint

    check_constraint("depth", 20, {"congruent": {"modulus": 6, "remainder": 2}})
    with pytest.raises(ParameterError, match=r"depth=10 .* 6n \+ 2 \(8, 14, 20"):
        check_constraint("depth", 10, {"congruent": {"modulus": 6, "remainder": 2}})
    with pytest.raises(ParameterError, match="at most 5000"):
        check_constraint("train_per_class", 6000, {"min": 1, "max": 5000})
    with pytest.raises(ParameterError, match=r"size=\[96\] must have 2 elements"):
        check_constraint("size", [96], {"length": 2})
    with pytest.raises(ParameterError, match=r"size\[1\]=4 is out of range; accepted: at least 8"):
        check_constraint("size", [96, 4], {"length": 2, "each": {"min": 8}})
    with pytest.raises(ParameterError, match="unknown rule"):
        check_constraint("x", 1, {"minimum": 1})
