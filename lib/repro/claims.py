"""Claims written before a run (``papers/<slug>/claims.yaml``) and the verdicts reached on them.

Three kinds of claim:

* ``statistical`` — treatment arm vs control arm on a per-run metric, several seeds, a one-sided
  paired or Welch t-test at level ``alpha`` (``reproduced`` when significant in the claimed direction,
  ``contradicted`` when significant against it, otherwise ``inconclusive``), judged only at the scales
  listed in ``scales`` (elsewhere ``not-tested-at-this-scale``);
* ``cost`` — exact, deterministic measurements (parameters, FLOPs) checked against thresholds fixed
  from the paper's table: pass → ``reproduced``, fail → ``contradicted``;
* ``not-tested`` — a claim this book cannot test at any of its CPU scales, with the reason.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import yaml

from .stats import DIRECTIONS, TESTS, Comparison, compare

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not-tested-at-this-scale")
KINDS = ("statistical", "cost", "not-tested")
SCALES = ("smoke", "reduced", "full")
COST_QUANTITIES = ("params", "flops")


class ClaimsError(ValueError):
    """claims.yaml does not follow the schema."""


@dataclass
class Claim:
    id: str
    text: str
    kind: str
    paper: dict                     # where the paper states it: table/section, metric, values
    arms: list[str] = field(default_factory=list)      # [treatment, control]
    metric: str | None = None
    direction: str = "greater"
    test: str = "paired"
    alpha: float = 0.05
    min_effect: float = 0.0
    claimed_effect: float | None = None                 # the paper's effect in the metric's units
    scales: list[str] = field(default_factory=lambda: ["reduced", "full"])
    checks: list[dict] = field(default_factory=list)    # cost claims: [{quantity, max_extra_fraction, of}]
    reason: str | None = None                           # not-tested claims


def _require(entry: dict, key: str, where: str):
    if key not in entry:
        raise ClaimsError(f"{where}: missing required key {key!r}")
    return entry[key]


def parse_claims(data: dict, where: str = "claims.yaml") -> list[Claim]:
    """Validate the parsed YAML and return the claims; every error names the claim and the bad value."""
    entries = _require(data, "claims", where)
    if not isinstance(entries, list) or not entries:
        raise ClaimsError(f"{where}: 'claims' must be a non-empty list")
    known = set(Claim.__dataclass_fields__)
    claims, seen = [], set()
    for i, entry in enumerate(entries):
        cid = entry.get("id", f"#{i}")
        here = f"{where}: claim {cid!r}"
        unknown = set(entry) - known
        if unknown:
            raise ClaimsError(f"{here}: unknown keys {sorted(unknown)}; accepted: {', '.join(sorted(known))}")
        for key in ("id", "text", "kind", "paper"):
            _require(entry, key, here)
        if cid in seen:
            raise ClaimsError(f"{here}: duplicate id")
        seen.add(cid)
        claim = Claim(**entry)
        if claim.kind not in KINDS:
            raise ClaimsError(f"{here}: unknown kind {claim.kind!r}; accepted: {', '.join(KINDS)}")
        bad_scales = set(claim.scales) - set(SCALES)
        if bad_scales:
            raise ClaimsError(f"{here}: unknown scales {sorted(bad_scales)}; accepted: {', '.join(SCALES)}")
        if claim.kind in ("statistical", "cost") and len(claim.arms) != 2:
            raise ClaimsError(f"{here}: 'arms' must be [treatment, control], got {claim.arms!r}")
        if claim.kind == "statistical":
            if not claim.metric:
                raise ClaimsError(f"{here}: statistical claims need 'metric'")
            if claim.test not in TESTS:
                raise ClaimsError(f"{here}: unknown test {claim.test!r}; accepted: {', '.join(TESTS)}")
            if claim.direction not in DIRECTIONS:
                raise ClaimsError(f"{here}: unknown direction {claim.direction!r}; accepted: {', '.join(DIRECTIONS)}")
            if not 0 < claim.alpha < 0.5:
                raise ClaimsError(f"{here}: alpha must be in (0, 0.5), got {claim.alpha!r}")
        if claim.kind == "cost":
            if not claim.checks:
                raise ClaimsError(f"{here}: cost claims need 'checks'")
            for check in claim.checks:
                if check.get("quantity") not in COST_QUANTITIES:
                    raise ClaimsError(f"{here}: unknown cost quantity {check.get('quantity')!r}; "
                                      f"accepted: {', '.join(COST_QUANTITIES)}")
                for key in ("max_extra_fraction", "of"):
                    _require(check, key, here)
        if claim.kind == "not-tested" and not claim.reason:
            raise ClaimsError(f"{here}: not-tested claims need a 'reason'")
        claims.append(claim)
    return claims


def load_claims(path: str | pathlib.Path) -> tuple[dict, list[Claim]]:
    """Read ``claims.yaml``: returns (header without the claims, claims)."""
    path = pathlib.Path(path)
    data = yaml.safe_load(path.read_text())
    claims = parse_claims(data, where=str(path.name))
    header = {k: v for k, v in data.items() if k != "claims"}
    return header, claims


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or x != x else f"{x:+.{digits}f}"


def judge(claim: Claim, scale: str, runs: list[dict], costs: dict[str, dict] | None = None) -> dict:
    """The verdict on ``claim`` from the successful ``runs`` (dicts with arm, seed, metrics) at ``scale``.

    Returns a JSON-ready dict: id, text, kind, verdict, summary and the numbers behind it.
    """
    base = {"id": claim.id, "text": claim.text, "kind": claim.kind, "paper": claim.paper,
            "claimed_effect": claim.claimed_effect}
    if claim.kind == "not-tested":
        return {**base, "verdict": "not-tested-at-this-scale", "summary": claim.reason}
    if claim.kind == "cost":
        return {**base, **_judge_cost(claim, costs or {})}
    if scale not in claim.scales:
        return {**base, "verdict": "not-tested-at-this-scale",
                "summary": f"judged at {', '.join(claim.scales)} scale only; this is a {scale} run"}
    treatment, control = claim.arms
    by_arm = {arm: {r["seed"]: r["metrics"][claim.metric] for r in runs
                    if r["arm"] == arm and r.get("status", "ok") == "ok"} for arm in claim.arms}
    if claim.test == "paired":
        seeds = sorted(set(by_arm[treatment]) & set(by_arm[control]))
        a, b = [by_arm[treatment][s] for s in seeds], [by_arm[control][s] for s in seeds]
    else:
        a, b = list(by_arm[treatment].values()), list(by_arm[control].values())
    if min(len(a), len(b)) < 2:
        return {**base, "verdict": "inconclusive", "summary": f"too few successful seeds ({len(a)}, {len(b)})"}
    c: Comparison = compare(a, b, test=claim.test, direction=claim.direction, alpha=claim.alpha,
                            min_effect=claim.min_effect)
    if c.p_claimed < claim.alpha:
        verdict = "reproduced"
    elif c.p_opposite < claim.alpha:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    claimed = f"{claim.claimed_effect:+.2f}" if claim.claimed_effect is not None else "n/a"
    summary = (f"Δ = {_fmt(c.diff)} (95% CI [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]), "
               f"p = {c.p_claimed:.3g}, n = {c.n_treatment}; MDE {abs(c.mde):.2f} vs claimed {claimed}")
    return {**base, "verdict": verdict, "summary": summary, "metric": claim.metric, "arms": claim.arms,
            "test": claim.test, "direction": claim.direction, "alpha": claim.alpha, "min_effect": claim.min_effect,
            "stats": c.as_dict()}


def _judge_cost(claim: Claim, costs: dict[str, dict]) -> dict:
    treatment, control = claim.arms
    results, parts = [], []
    for check in claim.checks:
        q, reference = check["quantity"], check["of"]
        missing = [a for a in (treatment, control, reference) if a not in costs]
        if missing:
            raise KeyError(f"cost claim {claim.id!r}: no measured costs for arms {missing}; measured: {sorted(costs)}")
        extra = (costs[treatment][q] - costs[control][q]) / costs[reference][q]
        ok = extra <= check["max_extra_fraction"]
        results.append({"quantity": q, "treatment": costs[treatment][q], "control": costs[control][q],
                        "reference": costs[reference][q], "extra_fraction": extra,
                        "max_extra_fraction": check["max_extra_fraction"], "pass": bool(ok)})
        parts.append(f"{q}: +{100 * extra:.2f}% of {reference} (limit {100 * check['max_extra_fraction']:.1f}%)"
                     f" {'pass' if ok else 'FAIL'}")
    verdict = "reproduced" if all(r["pass"] for r in results) else "contradicted"
    return {"verdict": verdict, "summary": "; ".join(parts), "arms": claim.arms, "checks": results}
