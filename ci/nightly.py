"""Nightly re-execution with drift detection: ``make nightly [ARGS="--only <slug> --force"]``.

For every chapter whose inputs changed since its last green nightly:

1. papermill executes it at reduced scale into ``_build/nightly/<slug>.ipynb`` under a time limit, with
   results and run checkpoints redirected into ``_build/nightly/`` (``REPRO_RESULTS_DIR``,
   ``REPRO_RUNS_DIR``), so the committed reference is never touched;
2. the fresh ``results/reduced.json`` is compared with the committed one: every verdict must be equal and
   every arm's mean metric must lie within the tolerance of ``book/method.md`` (Drift);
3. nbval (``--nbval-lax``) re-executes the committed notebook against the fresh runs (finished runs are
   read back, not retrained) and compares its checked cells with the committed outputs.

It writes ``_build/nightly/report.md`` and ``report.json`` and exits non-zero on any failure or drift.
The skip key hashes the chapter's code cells, ``claims.yaml``, ``scales.yaml``, every ``lib/`` file
and ``requirements.lock``: a change to ``lib/`` re-runs every chapter.

Every child (papermill, its kernel, the kernel's training workers, nbval) runs in its own process group and
is killed as a whole tree on a time-out, on Ctrl-C and on SIGTERM, so nothing keeps training afterwards.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

from scipy import stats

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "nightly"
METRICS = ("test_acc",)


def chapters() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)


def input_key(slug: str) -> str:
    """Hash of everything a chapter's reduced results depend on (besides the data, checked by sha256)."""
    digest = hashlib.sha256()
    folder = ROOT / "papers" / slug
    cells = json.loads((folder / f"{slug}.ipynb").read_text())["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            digest.update("".join(cell["source"]).encode())
    paths = [folder / "claims.yaml", folder / "scales.yaml", ROOT / "requirements.lock"]
    paths += sorted((ROOT / "lib").rglob("*.py"))
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tolerance(values: list[float]) -> float:
    """Allowed |fresh mean − reference mean| for a metric with per-seed reference ``values``.

    The 99 % two-sided band for the difference of two means of n seeds with the reference's spread:
    t(0.995, n−1) · s · sqrt(2/n). On the machine that made the reference the runs are bit-identical and
    the difference is 0; elsewhere floating-point order changes numbers within seed noise.
    """
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return float(stats.t.ppf(0.995, n - 1) * sd * math.sqrt(2 / n))


def compare(reference: dict, fresh: dict) -> list[dict]:
    """Drifts between two results files: verdict changes and metric means outside tolerance."""
    drifts = []
    ref_verdicts = {c["id"]: c["verdict"] for c in reference["claims"]}
    new_verdicts = {c["id"]: c["verdict"] for c in fresh["claims"]}
    for cid in sorted(set(ref_verdicts) | set(new_verdicts)):
        if ref_verdicts.get(cid) != new_verdicts.get(cid):
            drifts.append({"what": f"verdict of {cid}", "reference": ref_verdicts.get(cid), "fresh": new_verdicts.get(cid)})
    arms = sorted({r["arm"] for r in reference["runs"]})
    for metric in METRICS:
        for arm in arms:
            ref = [r["metrics"][metric] for r in reference["runs"] if r["arm"] == arm and r["status"] == "ok"]
            new = [r["metrics"][metric] for r in fresh["runs"] if r["arm"] == arm and r["status"] == "ok"]
            if not ref:
                continue
            if not new:
                drifts.append({"what": f"{metric} of {arm}", "reference": sum(ref) / len(ref), "fresh": None})
                continue
            ref_mean, new_mean, tol = sum(ref) / len(ref), sum(new) / len(new), tolerance(ref)
            if abs(new_mean - ref_mean) > tol + 1e-9:
                drifts.append({"what": f"mean {metric} of {arm}", "reference": ref_mean, "fresh": new_mean,
                               "tolerance": tol})
    return drifts


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), read from /proc; kernels started by
    papermill are in their own session, so a process group alone does not reach them."""
    children: dict[int, list[int]] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM ``process`` and every descendant (and its process group), then SIGKILL what is left."""
    pids = [process.pid, *descendants(process.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [p for p in [process.pid, *descendants(process.pid), *pids] if _alive(p)]
        for pid in dict.fromkeys(pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            process.poll()
            time.sleep(0.1)
    process.wait()


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def run_tree(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(command, capture_output=True, text=True)`` in a new session; on a time-out or an
    interruption the whole process tree is killed (``kill_tree``) before the exception propagates."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, **kwargs)
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:   # TimeoutExpired, KeyboardInterrupt, SystemExit from SIGTERM
        kill_tree(process)
        raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def run_chapter(slug: str, timeout: int, reuse_runs: bool = False) -> dict:
    folder = ROOT / "papers" / slug
    out_dir = OUT / slug
    if not reuse_runs:  # a nightly re-derives every number: no finished run of an earlier night is reused
        shutil.rmtree(out_dir / "runs", ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "REPRO_RESULTS_DIR": str(out_dir / "results"), "REPRO_RUNS_DIR": str(out_dir / "runs")}
    tick = time.perf_counter()
    record = {"chapter": slug, "status": "ok", "drifts": []}
    command = [sys.executable, "-m", "papermill", str(folder / f"{slug}.ipynb"), str(out_dir / f"{slug}.ipynb"),
               "-p", "scale", "reduced", "--cwd", str(folder), "-k", "python3", "--no-progress-bar"]
    try:
        done = run_tree(command, timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**record, "status": "timeout", "detail": f"over the {timeout} s limit (process tree killed)",
                "wall_time_s": time.perf_counter() - tick}
    record["execute_s"] = time.perf_counter() - tick
    if done.returncode != 0:
        return {**record, "status": "failed", "detail": done.stderr[-2000:], "wall_time_s": record["execute_s"]}
    reference = json.loads((folder / "results" / "reduced.json").read_text())
    fresh = json.loads((out_dir / "results" / slug / "reduced.json").read_text())
    record["drifts"] = compare(reference, fresh)
    sanitize = out_dir / "sanitize.cfg"
    sanitize.write_text((ROOT / "ci" / "nbval" / "common.cfg").read_text())
    try:
        nbval = run_tree([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-sanitize-with", str(sanitize), str(folder / f"{slug}.ipynb")],
                         timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {**record, "status": "timeout", "detail": f"nbval over the {timeout} s limit (process tree killed)",
                "wall_time_s": time.perf_counter() - tick}
    if nbval.returncode != 0:
        record["drifts"].append({"what": "nbval checked cells", "reference": "committed outputs",
                                 "fresh": nbval.stdout[-1500:]})
    record["status"] = "drift" if record["drifts"] else "ok"
    record["wall_time_s"] = time.perf_counter() - tick
    return record


def write_report(records: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (OUT / "report.json").write_text(json.dumps({"created": stamp, "chapters": records}, indent=1) + "\n")
    lines = [f"# Nightly report ({stamp})", "", "| chapter | status | wall time (s) | drifted |", "| --- | --- | --- | --- |"]
    for r in records:
        lines.append(f"| {r['chapter']} | {r['status']} | {r.get('wall_time_s', 0):.0f} | {len(r.get('drifts', []))} |")
    for r in records:
        if r.get("drifts") or r.get("detail"):
            lines += ["", f"## {r['chapter']}: {r['status']}", ""]
            lines += [f"- {d['what']}: reference {d['reference']!r}, fresh {d['fresh']!r}"
                      + (f" (tolerance {d['tolerance']:.3f})" if "tolerance" in d else "") for d in r.get("drifts", [])]
            if r.get("detail"):
                lines += ["", "```", r["detail"], "```"]
    (OUT / "report.md").write_text("\n".join(lines) + "\n")


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="SLUG", help="chapters to consider (default: all)")
    parser.add_argument("--force", action="store_true", help="re-run even when the inputs are unchanged")
    parser.add_argument("--timeout", type=int, default=45 * 60, help="seconds per chapter (default 2700)")
    parser.add_argument("--reuse-runs", action="store_true",
                        help="read back the finished runs of the previous nightly instead of retraining "
                             "(re-checks the comparison, e.g. after editing a reference)")
    args = parser.parse_args(argv)
    for name in ("REPRO_DATA", "REPRO_CACHE"):   # relative paths: this command's directory, not the kernel's
        if os.environ.get(name) and not os.path.isabs(os.environ[name]):
            os.environ[name] = str(pathlib.Path(os.environ[name]).expanduser().resolve())
    previous = signal.signal(signal.SIGTERM, _terminate) if threading_main() else None
    try:
        return _run(args, parser)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args, parser) -> int:
    known = chapters()
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        parser.error(f"unknown chapter(s) {', '.join(unknown)}; accepted: {', '.join(known)}")
    state_path = OUT / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    records = []
    for slug in args.only or known:
        key = input_key(slug)
        if not args.force and state.get(slug) == key:
            print(f"{slug}: skipped (inputs unchanged since the last green nightly)", flush=True)
            records.append({"chapter": slug, "status": "skipped", "drifts": []})
            continue
        print(f"{slug}: executing at reduced scale ...", flush=True)
        record = run_chapter(slug, args.timeout, args.reuse_runs)
        print(f"{slug}: {record['status']} in {record.get('wall_time_s', 0):.0f} s", flush=True)
        records.append(record)
        if record["status"] == "ok":
            state[slug] = key
        else:
            state.pop(slug, None)
        OUT.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state, indent=1) + "\n")
    write_report(records)
    print(f"report: {(OUT / 'report.md').relative_to(ROOT)}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
