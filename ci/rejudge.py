"""Re-judge a chapter's committed results under the current verdict rules, without retraining.

Reads ``papers/<slug>/results/<scale>.json`` (its stored per-run records, costs, parameters and any recorded
regime-gate measurements, ``"gates"``) and ``papers/<slug>/claims.yaml``, judges every claim with
``lib.repro.judge_chapter`` and writes the verdicts back into the results file. The runs are kept as they are;
``"judged"`` records which rules and which commit produced the verdicts, beside the commit that produced the runs,
and the verdicts the file held before (by claim id).

Gate measurements that the runs already contain (early stopping, train accuracy) are taken from the runs; a
``plateau`` gate needs runs at twice the epochs, which only the chapter can record, so without them the claims it
gates stay ``not-tested-at-this-scale`` ("regime gate not measured at this scale").

Usage: ``python ci/rejudge.py [SLUG ...] [--all] [--scale reduced] [--check]``; ``--check`` writes nothing and
exits 1 when a results file's verdicts differ from a fresh judgement.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.repro.claims import METHOD, judge_chapter, load_claims, measure_gates  # noqa: E402
from lib.repro.reuse import previous_verdicts  # noqa: E402
from lib.repro.store import write_json_atomic  # noqa: E402

JUDGING_FILES = ("lib/repro/claims.py", "lib/repro/stats.py", "ci/rejudge.py")


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip()


def judged_by(slug: str) -> dict:
    """The commit whose rules judged, and whether the judging files or the claims differed from it."""
    paths = [*JUDGING_FILES, f"papers/{slug}/claims.yaml"]
    dirty = [line[3:] for line in _git("status", "--porcelain", "--", *paths).splitlines()]
    claims = (ROOT / "papers" / slug / "claims.yaml").read_bytes()
    return {"method": METHOD, "commit": _git("rev-parse", "HEAD") or None, "dirty_paths": dirty,
            "claims_sha256": hashlib.sha256(claims).hexdigest()}


def rejudge(slug: str, scale: str = "reduced", root: pathlib.Path = ROOT) -> tuple[dict, list[dict]]:
    """(new results dict, list of {id, before, after}) for one chapter; writes nothing."""
    path = root / "papers" / slug / "results" / f"{scale}.json"
    results = json.loads(path.read_text())
    _, claims = load_claims(root / "papers" / slug / "claims.yaml")
    runs = results.get("runs") or []
    gates = {**measure_gates(claims, runs, results.get("parameters") or {}), **(results.get("gates") or {})}
    verdicts = judge_chapter(claims, results.get("scale", scale), runs, results.get("costs") or {}, gates)
    previous = previous_verdicts(results)
    before = {c["id"]: c.get("verdict") for c in results.get("claims") or []}
    changes = [{"id": v["id"], "before": before.get(v["id"]), "after": v["verdict"]} for v in verdicts]
    new = dict(results)
    new["claims"] = verdicts
    new["gate_measurements"] = gates
    new["judged"] = {**judged_by(slug), "runs_commit": results.get("git_commit"), "previous": previous}
    return new, changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slugs", nargs="*", help="chapters to re-judge")
    parser.add_argument("--all", action="store_true", help="every chapter with a results file at --scale")
    parser.add_argument("--scale", default="reduced")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args(argv)
    slugs = args.slugs
    if args.all:
        slugs = sorted(p.parent.parent.name for p in (ROOT / "papers").glob(f"*/results/{args.scale}.json"))
    if not slugs:
        parser.error("name chapters or pass --all")
    differ = False
    for slug in slugs:
        new, changes = rejudge(slug, args.scale)
        path = ROOT / "papers" / slug / "results" / f"{args.scale}.json"
        changed = [c for c in changes if c["before"] != c["after"]]
        if args.check:
            differ |= bool(changed)
        else:
            write_json_atomic(path, new)
        print(f"{slug}: {len(changes)} claims, {len(changed)} verdicts changed")
        for c in changes:
            mark = "  " if c["before"] == c["after"] else "* "
            print(f"  {mark}{c['id']}: {c['before']} -> {c['after']}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
