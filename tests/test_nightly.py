"""ci/nightly.py: the drift rule, the skip key, and the exit status on drift."""
import copy
import importlib.util
import json
import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("nightly", ROOT / "ci" / "nightly.py")
nightly = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nightly)


def _results(values_by_arm, verdict="inconclusive"):
    runs = [{"arm": arm, "seed": i, "status": "ok", "metrics": {"test_acc": v}}
            for arm, values in values_by_arm.items() for i, v in enumerate(values)]
    return {"claims": [{"id": "c", "verdict": verdict}], "runs": runs}


REF = _results({"a": [30.0, 31.0, 29.5, 30.5, 30.2], "b": [28.0, 28.4, 27.9, 28.8, 28.1]})


def test_identical_results_do_not_drift():
    assert nightly.compare(REF, copy.deepcopy(REF)) == []


def test_a_changed_verdict_drifts():
    fresh = copy.deepcopy(REF)
    fresh["claims"][0]["verdict"] = "reproduced"
    assert [d["what"] for d in nightly.compare(REF, fresh)] == ["verdict of c"]


def test_metric_drift_beyond_the_tolerance_and_not_within_it():
    tol = nightly.tolerance([r["metrics"]["test_acc"] for r in REF["runs"] if r["arm"] == "a"])
    assert 0 < tol < 5
    for shift, drifted in ((0.5 * tol, False), (1.5 * tol, True)):
        fresh = copy.deepcopy(REF)
        for r in fresh["runs"]:
            if r["arm"] == "a":
                r["metrics"]["test_acc"] += shift
        assert bool(nightly.compare(REF, fresh)) is drifted


def test_failed_runs_are_a_drift():
    fresh = copy.deepcopy(REF)
    for r in fresh["runs"]:
        if r["arm"] == "b":
            r["status"] = "failed"
    assert [d["what"] for d in nightly.compare(REF, fresh)] == ["test_acc of b"]


def test_skip_key_changes_with_lib_claims_notebook_code_and_lock(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    for part in ("lib", "papers/coord-attention"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("results", "__pycache__"))
    shutil.copy(ROOT / "requirements.lock", root / "requirements.lock")
    monkeypatch.setattr(nightly, "ROOT", root)
    key = nightly.input_key("coord-attention")
    assert nightly.input_key("coord-attention") == key
    edits = [root / "lib" / "train" / "__init__.py", root / "papers/coord-attention/claims.yaml", root / "requirements.lock"]
    for path in edits:
        original = path.read_text()
        path.write_text(original + "\n# one-line change\n")
        assert nightly.input_key("coord-attention") != key, path
        path.write_text(original)
    notebook = root / "papers/coord-attention/coord-attention.ipynb"
    nb = json.loads(notebook.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = "".join(code["source"]) + "\n"
    notebook.write_text(json.dumps(nb))
    assert nightly.input_key("coord-attention") != key


def test_unknown_chapter_is_refused(capsys):
    with pytest.raises(SystemExit):
        nightly.main(["--only", "no-such-chapter"])
    err = capsys.readouterr().err     # the accepted chapters are listed (the list grows with the book)
    assert "unknown chapter(s) no-such-chapter; accepted: " in err and ", isda, " in err


TREE = """
import os, subprocess, sys, time
# a child in its own session (as jupyter_client starts a kernel), which forks a worker of its own
child = subprocess.Popen([sys.executable, "-c", "import os, subprocess, sys, time; "
                          "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
                          "open(sys.argv[1], 'w').write(f'{os.getpid()} {w.pid}'); time.sleep(120)", sys.argv[1]],
                         start_new_session=True)
time.sleep(120)
"""


def _alive(pid):
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def test_a_timeout_kills_the_whole_process_tree(tmp_path):
    import subprocess
    import sys
    import time

    pids_file = tmp_path / "pids"
    with pytest.raises(subprocess.TimeoutExpired):
        nightly.run_tree([sys.executable, "-c", TREE, str(pids_file)], timeout=4)
    pids = [int(p) for p in pids_file.read_text().split()]
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for pid in left:
        os.kill(pid, 9)
    assert not left, "the kernel or its workers survived the nightly's time-out"


def test_fresh_results_are_read_where_the_chapter_writes_them(tmp_path, monkeypatch):
    import subprocess

    from lib.repro import Chapter

    monkeypatch.setattr(nightly, "OUT", tmp_path / "nightly")
    reference = json.loads((ROOT / "papers" / "coord-attention" / "results" / "reduced.json").read_text())

    def fake_run_tree(command, timeout, env=None, **kwargs):   # papermill writes through Chapter.results_path
        if "papermill" in command:
            monkeypatch.setenv("REPRO_RESULTS_DIR", env["REPRO_RESULTS_DIR"])
            path = Chapter("coord-attention").results_path("reduced")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(reference))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(nightly, "run_tree", fake_run_tree)
    record = nightly.run_chapter("coord-attention", timeout=60)
    assert record["status"] == "ok", record


def test_a_timed_out_chapter_is_reported_as_such(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setattr(nightly, "OUT", tmp_path / "nightly")

    def too_slow(command, timeout, **kwargs):
        raise subprocess.TimeoutExpired(command, timeout)

    monkeypatch.setattr(nightly, "run_tree", too_slow)
    record = nightly.run_chapter("coord-attention", timeout=40)
    assert record["status"] == "timeout" and "process tree killed" in record["detail"]
