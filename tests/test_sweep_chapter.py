"""A seed sweep of a real chapter end to end: ``ci/sweep.py isda --scale smoke --launcher local`` (submitit's
local executor, one job per run, the gate runs as a second stage, a resumed run skipped) writes the results
file a plain ``ci/run_chapter.py`` execution writes: the same runs in the same directories, the same per-seed
numbers, the same gates and verdicts. Only times, speeds and latencies may differ.

Planning alone is checked on the same chapter in seconds. The end-to-end test is marked ``sweep`` (about two
minutes on two busy cores: every job starts a process and loads the chapter's data); ``pytest -m "not sweep"``
leaves it out, ``pytest -m sweep`` runs it alone.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLUG = "isda"
pytestmark = pytest.mark.skipif(not os.environ.get("REPRO_DATA"), reason="REPRO_DATA is not set")
TIMING = {"wall_time_s", "train_time_s", "train_images_per_s", "epoch_time_s", "images_per_s", "environment"}


def _env(base: pathlib.Path) -> dict:
    return {**os.environ, "REPRO_RUNS_DIR": str(base / "runs"), "REPRO_RESULTS_DIR": str(base / "results"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _numbers(value):
    """``value`` without the fields that measure time or the machine."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _run_dirs(runs: pathlib.Path) -> list[str]:
    return sorted(str(p.parent.relative_to(runs)) for p in runs.rglob("record.json"))


def test_planning_a_real_chapter_lists_its_preset_runs_and_trains_nothing(tmp_path, monkeypatch):
    from lib.repro import Chapter, resolve_parameters
    from lib.repro.sweep import plan

    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    chapter = Chapter(SLUG)
    params = resolve_parameters(chapter.presets, {"scale": "smoke"}, chapter.constraints)
    first = plan(SLUG, {"scale": "smoke"})
    root = chapter.runs_root(params)
    assert (first.done, first.section) == (False, "runs")
    assert [(j["arm"], j["seed"], j["run_dir"]) for j in first.jobs] == \
        [(arm, seed, str(root / arm / f"seed-{seed}")) for seed in params.seed_list for arm in params["arms"]]
    assert not [p for p in (tmp_path / "runs").rglob("*") if p.is_file()], "planning trained or wrote a run"


@pytest.mark.sweep
def test_a_local_sweep_writes_the_plain_executions_results(tmp_path):
    plain, swept = tmp_path / "plain", tmp_path / "swept"
    done = subprocess.run([sys.executable, "ci/run_chapter.py", SLUG, "--scale", "smoke"], cwd=ROOT, env=_env(plain),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # an interrupted sweep: one run finished before it (the same key, so the same directory)
    main_root = next((plain / "runs").rglob("isda-small/seed-0/record.json")).parents[2]   # not the gate runs' root
    first = main_root / "ce" / "seed-0"
    shutil.copytree(first, swept / "runs" / first.relative_to(plain / "runs"))

    done = subprocess.run([sys.executable, "ci/sweep.py", SLUG, "--scale", "smoke", "--launcher", "local"], cwd=ROOT,
                          env=_env(swept), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stage 1 (runs): 3 job(s) on local" in done.stdout   # the finished run is not planned again
    assert "stage 2 (gate_runs): 2 job(s) on local" in done.stdout
    assert "5 run(s) trained in 2 stage(s)" in done.stdout
    jobs = list((swept / "runs" / "sweeps" / SLUG / "smoke").glob("*_result.pkl"))
    assert len(jobs) == 5, "one submitit job per trained run"

    # planning listed exactly the runs a plain execution trains: the same run directories
    assert _run_dirs(swept / "runs") == _run_dirs(plain / "runs")
    ours, theirs = (json.loads((base / "results" / SLUG / "smoke.json").read_text()) for base in (swept, plain))
    for key in ("runs", "gate_runs", "gate_measurements", "gates", "claims", "failed_runs", "parameters",
                "gate_parameters", "code_key", "data"):
        assert _numbers(ours[key]) == _numbers(theirs[key]), key
    assert {(r["arm"], r["seed"]) for r in ours["runs"]} == {(a, 0) for a in ("ce", "isda", "ce-small", "isda-small")}
    assert all(isinstance(r["metrics"]["test_loss"], float) for r in ours["runs"])   # exact floats, not rounded
    assert {arm: {k: c[k] for k in ("params", "flops")} for arm, c in ours["costs"].items()} == \
        {arm: {k: c[k] for k in ("params", "flops")} for arm, c in theirs["costs"].items()}
