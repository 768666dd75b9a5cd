"""Re-judging a chapter on its committed runs: the records of ``results/<scale>.json`` stand in for training.

When the verdict rules change (not the training), a chapter is re-executed with
``REPRO_REUSE_RESULTS=<results file>`` (``make rejudge PAPER=<slug>``): ``Chapter.run`` takes each (arm, seed)
whose parameters equal the stored ones from that file instead of training it, so every cell after the runs —
tables, figures, verdicts — is recomputed from the same numbers under the current rules, in seconds. The results
file then says which runs were reused and from which commit (``reused_runs``); a run not in the file is trained.
The reused records keep their own ``environment`` (the stack that trained them).
"""
from __future__ import annotations

import json
import os
import pathlib

ENV = "REPRO_REUSE_RESULTS"
IGNORED = ("threads", "overrides")   # how a run was scheduled, not what it computed


def _comparable(parameters: dict) -> dict:
    return {k: v for k, v in parameters.items() if k not in IGNORED}


def previous_verdicts(results: dict) -> dict:
    """The verdicts a results file held before its latest re-judgement (``judged.previous``), or, for a file
    judged only once, its current ones: ``{"method", "verdicts": {claim id: verdict}}``."""
    judged = results.get("judged") or {}
    return judged.get("previous") or {"method": judged.get("method", "v1"),
                                      "verdicts": {c["id"]: c.get("verdict") for c in results.get("claims") or []}}


class ReuseError(ValueError):
    """The results file named by REPRO_REUSE_RESULTS cannot stand in for this execution's runs."""


def reusable_records(parameters: dict, section: str = "runs") -> tuple[dict[tuple[int, str], dict], dict | None]:
    """({(seed, arm): record}, provenance) from ``$REPRO_REUSE_RESULTS``, or ({}, None) when it is not set.

    ``parameters`` is ``Parameters.as_dict()`` of this execution; the stored file must have been made with the
    same values (seeds may differ: only the stored seeds are reused). A mismatch is an error naming the values.
    ``section`` ``"gate_runs"`` reads the regime-gate runs (``Chapter.plateau_gates``), stored with their own
    ``gate_parameters``; a file without them has nothing to reuse there, and those runs are trained.
    """
    path = os.environ.get(ENV)
    if not path:
        return {}, None
    path = pathlib.Path(path).resolve()
    if not path.is_file():
        raise ReuseError(f"{ENV}={path} does not exist; name a committed results file, e.g. "
                         "papers/<slug>/results/reduced.json")
    stored = json.loads(path.read_text())
    if section != "runs":
        if not stored.get("gate_parameters"):
            return {}, None
        stored = {**stored, "parameters": stored["gate_parameters"], "runs": stored.get(section) or []}
    want, have = _comparable(parameters), _comparable(stored.get("parameters") or {})
    want.pop("seeds", None)
    have.pop("seeds", None)
    if want != have:
        differ = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise ReuseError(f"{ENV}={path} was made with other parameters; differing: "
                         + ", ".join(f"{k} (stored {have.get(k)!r}, now {want.get(k)!r})" for k in differ))
    records = {(r["seed"], r["arm"]): {**r, "reused": True} for r in stored.get("runs") or []}
    judged = stored.get("judged") or {}
    previous = previous_verdicts(stored)
    provenance = {"file": str(path), "git_commit": judged.get("runs_commit") or stored.get("git_commit"),
                  "created": stored.get("created"), "code_key": stored.get("code_key"), "runs": len(records),
                  "previous": previous}
    return records, provenance
