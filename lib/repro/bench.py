"""A shared bench: reuse another chapter's committed runs only after proving it is the same experiment.

A chapter that adds one arm to a bench another chapter already trained (same backbone, data, recipe and
seeds) trains its new arm and the shared control, then compares against the committed results in three steps:

1. ``same_setup``: the resolved parameters are equal except ``arms`` (and the record of overrides, and the
   parameters that only each chapter's own methods read, which the chapter names), and the data files and
   subset indices the shared arm reads have the same sha256 digests;
2. ``same_control``: the freshly trained runs of the shared arm(s) are bit-identical, seed by seed, to the
   committed ones (``test_acc`` and ``train_loss`` compared with ``==``). On the same CPU and thread count
   the book's runs are deterministic, so equality shows that code, data order and augmentation draws are
   the same; on another machine the bits differ and the check fails, and the chapter trains the arms itself;
3. ``borrow``: only then the reference's records of the other arms are returned, marked with
   ``borrowed_from`` (chapter and commit), to be paired with the new runs by seed.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
from dataclasses import dataclass, field

from .store import REPO_ROOT

IGNORED_PARAMETERS = ("arms", "overrides")
COMPARED_METRICS = ("test_acc", "train_loss")


@dataclass
class BenchCheck:
    """Outcome of one comparison: ``ok`` and, when not, the reasons (each naming the value that differs)."""

    name: str
    ok: bool
    reasons: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name}: {'identical' if self.ok else 'DIFFERENT'}" + "".join(f"\n  - {r}" for r in self.reasons)


def committed_results(slug: str, scale: str = "reduced", root: pathlib.Path = REPO_ROOT) -> dict:
    """The committed ``papers/<slug>/results/<scale>.json`` as it is in ``HEAD`` (never the nightly redirect of
    ``Chapter``, never a working copy a later run has overwritten; outside a git checkout, the file itself).

    Results written beside the committed ones but never committed (smoke results, a user's own runs) are not a
    reference: a chapter that borrowed from them would depend on which other chapter ran first.
    """
    rel = pathlib.PurePosixPath("papers", slug, "results", f"{scale}.json")
    if not (root / ".git").exists():
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(f"no committed results for chapter {slug!r} at scale {scale!r}: {path}")
        return json.loads(path.read_text())
    shown = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        state = "exist but are not committed" if (root / rel).is_file() else "do not exist"
        raise FileNotFoundError(f"no committed results for chapter {slug!r} at scale {scale!r}: {rel} {state} "
                                f"in HEAD")
    return json.loads(shown.stdout)


def bench_parameters(parameters: dict, arm_parameters: tuple[str, ...] = ()) -> dict:
    """The parameters that define the bench: everything except the arms trained (and the overrides record)
    and ``arm_parameters``, the parameters only the chapter's own methods read (see ``same_setup``)."""
    return {k: v for k, v in parameters.items() if k not in (*IGNORED_PARAMETERS, *arm_parameters)}


def same_setup(parameters: dict, data: dict, reference: dict, arm_parameters: tuple[str, ...] = (),
               splits: tuple[str, ...] | None = None) -> BenchCheck:
    """Step 1: parameters equal except ``arms``; data files and subset indices with the same digests.

    ``parameters`` is ``Parameters.as_dict()``, ``data`` the ``{dataset: {split: source}}`` given to
    ``Chapter.report``; ``reference`` a results dict (``committed_results``).

    Two chapters on one bench that test different methods (a loss bench: ISDA's ``lambda0`` in one, label
    smoothing's mass in the other) have parameters that only their own arms read. ``arm_parameters`` names
    them; they are left out on both sides, and every other parameter that one side has and the other lacks is
    a difference. ``splits`` names the data splits the shared arm reads (default: every split of either side),
    so that a split only the other arms use (a noisy-label copy, a low-data subset) is not compared. What this
    step leaves out, step 2 covers: the shared arm's runs must still be bit-identical.
    """
    unknown = [k for k in arm_parameters if k in IGNORED_PARAMETERS]
    if unknown:
        raise ValueError(f"arm_parameters {unknown} are always ignored; name only the methods' own parameters")
    reasons = []
    mine = bench_parameters(parameters, arm_parameters)
    theirs = bench_parameters(reference["parameters"], arm_parameters)
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, "<absent>") != theirs.get(key, "<absent>"):
            reasons.append(f"parameter {key}: {mine.get(key, '<absent>')!r} here, "
                           f"{theirs.get(key, '<absent>')!r} in {reference['chapter']}")
    digests = ("files_sha256", "indices_sha256", "rows")
    for dataset in sorted(set(data) | set(reference.get("data", {}))):
        names = set(data.get(dataset, {})) | set(reference.get("data", {}).get(dataset, {}))
        for split in sorted(names if splits is None else set(splits)):
            a = data.get(dataset, {}).get(split, {})
            b = reference.get("data", {}).get(dataset, {}).get(split, {})
            if not a or not b:
                reasons.append(f"data {dataset}/{split}: {'absent' if not a else 'present'} here, "
                               f"{'absent' if not b else 'present'} in {reference['chapter']}")
                continue
            for key in digests:
                if a.get(key) != b.get(key):
                    reasons.append(f"data {dataset}/{split} {key}: {a.get(key)!r} here, {b.get(key)!r} in "
                                   f"{reference['chapter']}")
    return BenchCheck("same setup (parameters except arms, data digests)", not reasons, reasons)


def same_control(runs: list[dict], reference: dict, arms: list[str] | tuple[str, ...] = ("none",),
                 metrics: tuple[str, ...] = COMPARED_METRICS) -> BenchCheck:
    """Step 2: every fresh run of ``arms`` equals the reference's run of the same arm and seed on ``metrics``."""
    theirs = {(r["arm"], r["seed"]): r for r in reference["runs"] if r.get("status", "ok") == "ok"}
    reasons, compared = [], 0
    for run in runs:
        if run["arm"] not in arms:
            continue
        key = (run["arm"], run["seed"])
        if run.get("status", "ok") != "ok":
            reasons.append(f"{run['arm']} seed {run['seed']}: failed here")
            continue
        if key not in theirs:
            reasons.append(f"{run['arm']} seed {run['seed']}: no such run in {reference['chapter']}")
            continue
        differs = [f"{metric}: {run['metrics'][metric]!r} here, {theirs[key]['metrics'][metric]!r} in "
                   f"{reference['chapter']}" for metric in metrics
                   if run["metrics"][metric] != theirs[key]["metrics"][metric]]
        if differs:
            threads = [sorted({seg.get("threads") for seg in r.get("segments") or []}) for r in (run, theirs[key])]
            hint = (f" (trained with {threads[0]} threads here, {threads[1]} there: bit-identity needs the same "
                    "thread count)" if threads[0] != threads[1] else "")
            reasons.append(f"{run['arm']} seed {run['seed']} " + "; ".join(differs) + hint)
        compared += 1
    if compared == 0 and not reasons:
        reasons.append(f"no runs of {list(arms)} to compare")
    return BenchCheck(f"same control ({', '.join(arms)} runs bit-identical on {', '.join(metrics)})", not reasons,
                      reasons, {"runs_compared": compared})


def borrow(reference: dict, arms: list[str], seeds: list[int]) -> list[dict]:
    """Step 3: the reference's successful records of ``arms`` for ``seeds``, copied and marked ``borrowed_from``.

    Raises ``KeyError`` naming the missing (arm, seed) pairs, so that pairing never silently drops a seed.
    """
    theirs = {(r["arm"], r["seed"]): r for r in reference["runs"] if r.get("status", "ok") == "ok"}
    missing = [(a, s) for a in arms for s in seeds if (a, s) not in theirs]
    if missing:
        raise KeyError(f"{reference['chapter']} has no successful runs for {missing}")
    origin = {"chapter": reference["chapter"], "scale": reference["scale"], "commit": reference.get("git_commit")}
    return [{**theirs[a, s], "borrowed_from": origin} for s in seeds for a in arms]
