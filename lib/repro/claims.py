"""Claims written before a run (``papers/<slug>/claims.yaml``) and the verdicts reached on them (method v2).

Kinds of claim:

* ``statistical`` — treatment arm better than control arm on a per-run metric over several seeds (superiority);
  with ``control_metric`` the control side reads another metric, so a claim can compare two measurements of the
  same runs (``arms: [ce, ce]``, ``metric: test_acc_high_div``, ``control_metric: test_acc_low_div``: one model's
  accuracy on two test subsets, paired by seed);
* ``non-inferiority`` — treatment not worse than control by more than ``margin`` (a negative number in the
  claimed direction's units: the claim is effect > margin);
* ``equivalence`` — treatment and control (or one arm and a reported mean ± std over runs, ``reference``) differ
  by less than ``margin`` either way (TOST);
* ``cost`` — exact measurements (parameters, FLOPs) checked against thresholds from the paper's table;
* ``construction`` — a check that holds by construction (equal cost by design, an identity): measured and shown,
  never a verdict and never counted;
* ``not-tested`` — a claim this book cannot test at any of its CPU scales, with the reason.

Every claim names its ``source``: ``paper`` (where the paper states it, with its numbers) or ``book`` (an extension:
shown, never counted among the paper's claims).

The three testable kinds are judged together per chapter (``judge_chapter``): a two-sided t-test of the effect in
the claimed direction against its null value (0, or the margin), Holm–Bonferroni across the chapter's testable
claims at the judged scale, and the interval at the adjusted level 1 − α·p/p_Holm, which excludes the null value
exactly when the adjusted p-value is below α. The verdict is read from that interval [lo, hi] and the paper's effect
Δp (in the claimed direction):

* ``reproduced`` — lo > null ("smaller than claimed" when hi < Δp, "larger than claimed" when lo > Δp);
* ``contradicted`` — hi < null;
* ``smaller-than-claimed`` — the interval covers the null value but hi < Δp: no effect detected, and the paper's
  effect is excluded at this scale;
* ``inconclusive`` — covers both ("this scale could not tell" when the MDE exceeds Δp);
* ``not-tested-at-this-scale`` — the claim is judged at another scale, or its regime gate (a pre-registered check
  that the control arm trained to a plateau) failed or was not measured — whatever the p-value.

Equivalence: ``reproduced`` when the interval lies inside (−margin, +margin), ``contradicted`` when it lies
entirely outside, otherwise ``inconclusive``.
"""
from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field

import yaml

from .stats import DIRECTIONS, TESTS, EffectTest, effect_test, equivalence, holm, reference_test

METHOD = "v2"
VERDICTS = ("reproduced", "contradicted", "smaller-than-claimed", "inconclusive", "not-tested-at-this-scale")
KINDS = ("statistical", "non-inferiority", "equivalence", "cost", "construction", "not-tested")
TESTABLE = ("statistical", "non-inferiority", "equivalence")
SOURCES = ("paper", "book")
SCALES = ("smoke", "reduced", "full")
COST_QUANTITIES = ("params", "flops")
GATE_KINDS = ("plateau", "early-stopping", "min-train-acc")
CONSTRUCTION = "construction"        # the verdict field of a construction check: it is not a verdict
UNDER_TRAINED = "under-trained at this scale"
NOT_MEASURED = "regime gate not measured at this scale"


class ClaimsError(ValueError):
    """claims.yaml does not follow the schema."""


@dataclass
class Claim:
    id: str
    text: str
    kind: str
    paper: dict                     # where the paper states it: table/section, metric, values, verified
    source: str = "paper"           # paper | book
    arms: list[str] = field(default_factory=list)      # [treatment, control]; equivalence to a reference: [arm]
    metric: str | None = None
    control_metric: str | None = None   # the control arm's metric, when it is not ``metric`` (see the module docstring)
    direction: str = "greater"
    test: str = "paired"
    alpha: float = 0.05
    min_effect: float = 0.0         # v1 field; v2 tests superiority against 0 and margins with kind non-inferiority
    margin: float | None = None     # non-inferiority: effect > margin (≤ 0); equivalence: |effect| < margin (> 0)
    reference: dict | None = None   # equivalence to a reported result: {mean, std, runs}
    claimed_effect: float | None = None                 # the paper's effect in the metric's units (signed)
    scales: list[str] = field(default_factory=lambda: ["reduced", "full"])
    gate: dict | None = None        # the regime gate, resolved from the chapter's ``gates`` by name
    setting: dict = field(default_factory=dict)         # {"paper": ..., "<scale>": ...}: the settings compared
    checks: list[dict] = field(default_factory=list)    # cost/construction: [{quantity, max_extra_fraction, of}]
    reason: str | None = None                           # not-tested claims

    @property
    def testable(self) -> bool:
        return self.kind in TESTABLE

    @property
    def counted(self) -> bool:
        """Counted among the paper's claims on the dashboard."""
        return self.source == "paper" and self.kind != "construction"

    @property
    def against(self) -> str:
        """What the effect is tested against, as the tables and summaries print it."""
        if self.kind == "equivalence":
            return f"margin ±{self.margin:g}"
        if self.kind == "non-inferiority":
            return f"margin {self.margin:+g}"
        return "0"

    @property
    def metrics(self) -> tuple[str | None, str | None]:
        """The metric read for the treatment arm and the one read for the control arm."""
        return self.metric, self.control_metric or self.metric

    @property
    def null(self) -> float:
        """The value the effect is tested against: 0, or the non-inferiority margin."""
        return float(self.margin) if self.kind == "non-inferiority" else 0.0

    @property
    def claimed_in_direction(self) -> float | None:
        """The paper's effect in the claimed direction (positive when the paper agrees with the claim)."""
        if self.claimed_effect is None:
            return None
        return float(self.claimed_effect) * (1.0 if self.direction == "greater" else -1.0)


def _require(entry: dict, key: str, where: str):
    if key not in entry:
        raise ClaimsError(f"{where}: missing required key {key!r}")
    return entry[key]


def _resolve_gate(gate, gates: dict, here: str) -> dict | None:
    if gate is None:
        return None
    if isinstance(gate, str):
        if gate not in gates:
            raise ClaimsError(f"{here}: unknown gate {gate!r}; defined: {', '.join(sorted(gates)) or 'none'}")
        spec = {"id": gate, **gates[gate]}
    elif isinstance(gate, dict):
        spec = dict(gate)
        spec.setdefault("id", "gate")
    else:
        raise ClaimsError(f"{here}: 'gate' must be a gate name or a mapping, got {gate!r}")
    if spec.get("kind") not in GATE_KINDS:
        raise ClaimsError(f"{here}: unknown gate kind {spec.get('kind')!r}; accepted: {', '.join(GATE_KINDS)}")
    if not spec.get("rule"):
        raise ClaimsError(f"{here}: gate {spec['id']!r} needs a 'rule' stating the check in words")
    if spec["kind"] == "plateau":
        for key in ("arm", "max_change", "seeds"):
            _require(spec, key, f"{here}: gate {spec['id']!r}")
    if spec["kind"] == "early-stopping":
        for key in ("arm", "cap_parameter"):
            _require(spec, key, f"{here}: gate {spec['id']!r}")
    if spec["kind"] == "min-train-acc":
        for key in ("arm", "threshold"):
            _require(spec, key, f"{here}: gate {spec['id']!r}")
    return spec


def parse_claims(data: dict, where: str = "claims.yaml") -> list[Claim]:
    """Validate the parsed YAML and return the claims; every error names the claim and the bad value.

    The header may define ``gates`` (name → gate spec, referenced by a claim's ``gate``) and ``setting``
    (``{paper: ..., reduced: ...}``, inherited by every claim that does not give its own)."""
    entries = _require(data, "claims", where)
    if not isinstance(entries, list) or not entries:
        raise ClaimsError(f"{where}: 'claims' must be a non-empty list")
    gates = data.get("gates") or {}
    setting = data.get("setting") or {}
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
        entry = {**entry, "gate": _resolve_gate(entry.get("gate"), gates, here),
                 "setting": {**setting, **(entry.get("setting") or {})}}
        claim = Claim(**entry)
        if claim.kind not in KINDS:
            raise ClaimsError(f"{here}: unknown kind {claim.kind!r}; accepted: {', '.join(KINDS)}")
        if claim.source not in SOURCES:
            raise ClaimsError(f"{here}: unknown source {claim.source!r}; accepted: {', '.join(SOURCES)}")
        bad_scales = set(claim.scales) - set(SCALES)
        if bad_scales:
            raise ClaimsError(f"{here}: unknown scales {sorted(bad_scales)}; accepted: {', '.join(SCALES)}")
        one_arm = claim.kind == "equivalence" and claim.reference is not None
        if claim.kind in ("statistical", "non-inferiority", "equivalence", "cost") and len(claim.arms) != (1 if one_arm else 2):
            raise ClaimsError(f"{here}: 'arms' must be " + ("[arm] (equivalence to a reference)" if one_arm
                                                            else "[treatment, control]") + f", got {claim.arms!r}")
        if claim.testable:
            if not claim.metric:
                raise ClaimsError(f"{here}: {claim.kind} claims need 'metric'")
            if claim.test not in TESTS:
                raise ClaimsError(f"{here}: unknown test {claim.test!r}; accepted: {', '.join(TESTS)}")
            if claim.direction not in DIRECTIONS:
                raise ClaimsError(f"{here}: unknown direction {claim.direction!r}; accepted: {', '.join(DIRECTIONS)}")
            if not 0 < claim.alpha < 0.5:
                raise ClaimsError(f"{here}: alpha must be in (0, 0.5), got {claim.alpha!r}")
            if claim.control_metric is not None and (not isinstance(claim.control_metric, str)
                                                     or not claim.control_metric):
                raise ClaimsError(f"{here}: control_metric must be a metric name, got {claim.control_metric!r}")
            if len(claim.arms) == 2 and claim.arms[0] == claim.arms[1] and claim.metrics[0] == claim.metrics[1]:
                raise ClaimsError(f"{here}: arms {claim.arms!r} compare an arm with itself on one metric; name the "
                                  f"control's metric with control_metric (got {claim.control_metric!r})")
            if claim.control_metric is not None and claim.kind == "equivalence" and claim.reference is not None:
                raise ClaimsError(f"{here}: control_metric needs a control arm, not a reference")
            if claim.min_effect:
                raise ClaimsError(f"{here}: min_effect {claim.min_effect!r} is not a v2 rule; a claim tested against "
                                  "a margin is kind non-inferiority with 'margin'")
        if claim.kind == "non-inferiority" and (claim.margin is None or claim.margin > 0):
            raise ClaimsError(f"{here}: non-inferiority claims need 'margin' ≤ 0 (effect > margin), got {claim.margin!r}")
        if claim.kind == "equivalence":
            if claim.margin is None or not claim.margin > 0:
                raise ClaimsError(f"{here}: equivalence claims need 'margin' > 0, got {claim.margin!r}")
            if claim.reference is not None:
                for key in ("mean", "std", "runs"):
                    _require(claim.reference, key, f"{here}: reference")
        if claim.kind == "cost" or (claim.kind == "construction" and claim.checks):
            if not claim.checks:
                raise ClaimsError(f"{here}: cost claims need 'checks'")
            if len(claim.arms) != 2:
                raise ClaimsError(f"{here}: 'arms' must be [treatment, control], got {claim.arms!r}")
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


# ---------------------------------------------------------------------------------------------------------------
# regime gates
# ---------------------------------------------------------------------------------------------------------------

def _ok_runs(runs: list[dict], arm: str) -> list[dict]:
    return sorted((r for r in runs if r["arm"] == arm and r.get("status", "ok") == "ok"), key=lambda r: r["seed"])


def measure_gates(claims: list[Claim], runs: list[dict], parameters: dict | None = None) -> dict[str, dict]:
    """Gate measurements that the recorded runs already contain: ``early-stopping`` (each run's ``epochs_run``
    against the cap named by ``cap_parameter``) and ``min-train-acc`` (each run's ``train_acc``). A ``plateau``
    gate needs runs at twice the epochs, which the chapter records itself (``results["gates"]``)."""
    out: dict[str, dict] = {}
    parameters = parameters or {}
    for claim in claims:
        spec = claim.gate
        if not spec or spec["id"] in out:
            continue
        arm_runs = _ok_runs(runs, spec["arm"])
        if spec["kind"] == "early-stopping" and spec["cap_parameter"] in parameters and arm_runs \
                and all("epochs_run" in r["metrics"] for r in arm_runs):
            out[spec["id"]] = {"kind": "early-stopping", "arm": spec["arm"], "cap": parameters[spec["cap_parameter"]],
                               "epochs_run": [r["metrics"]["epochs_run"] for r in arm_runs],
                               "seeds": [r["seed"] for r in arm_runs]}
        if spec["kind"] == "min-train-acc" and arm_runs and all("train_acc" in r["metrics"] for r in arm_runs):
            out[spec["id"]] = {"kind": "min-train-acc", "arm": spec["arm"],
                               "train_acc": [r["metrics"]["train_acc"] for r in arm_runs],
                               "seeds": [r["seed"] for r in arm_runs]}
    return out


def plateau_measurement(runs: list[dict], doubled_runs: list[dict], arm: str, metric: str, epochs: int,
                        doubled_epochs: int) -> dict:
    """The record a ``plateau`` gate reads (to store under ``results["gates"][<gate id>]``): ``arm``'s ``metric``
    at the preset's ``epochs`` and at ``doubled_epochs``, over the seeds present in both sets of runs."""
    at = {r["seed"]: r["metrics"][metric] for r in _ok_runs(runs, arm)}
    doubled = {r["seed"]: r["metrics"][metric] for r in _ok_runs(doubled_runs, arm)}
    seeds = sorted(set(at) & set(doubled))
    return {"kind": "plateau", "arm": arm, "metric": metric, "seeds": seeds, "epochs": epochs,
            "values": [at[s] for s in seeds], "doubled_epochs": doubled_epochs,
            "doubled_values": [doubled[s] for s in seeds]}


def check_gate(spec: dict | None, measured: dict | None) -> dict:
    """``{"id", "rule", "status": passed | failed | not-measured | none, "detail"}`` for one claim's gate."""
    if spec is None:
        return {"id": None, "rule": None, "status": "none", "detail": "no regime gate"}
    base = {"id": spec["id"], "kind": spec["kind"], "rule": spec["rule"]}
    if not measured:
        return {**base, "status": "not-measured", "detail": NOT_MEASURED}
    if spec["kind"] == "plateau":
        values, doubled = measured.get("values") or [], measured.get("doubled_values") or []
        epochs, doubled_epochs = measured.get("epochs"), measured.get("doubled_epochs")
        if min(len(values), len(doubled)) < spec["seeds"] or not epochs or doubled_epochs != 2 * epochs:
            return {**base, "status": "not-measured", "measured": measured,
                    "detail": f"{NOT_MEASURED} (needs {spec['seeds']} seeds at {epochs} and {2 * (epochs or 0)} epochs)"}
        change = sum(doubled) / len(doubled) - sum(values) / len(values)
        ok = abs(change) <= spec["max_change"]
        detail = (f"{spec['arm']}: mean {'+' if change >= 0 else ''}{change:.2f} points from {epochs} to "
                  f"{doubled_epochs} epochs over {len(doubled)} seeds (limit ±{spec['max_change']})")
        return {**base, "status": "passed" if ok else "failed", "change": change, "measured": measured, "detail": detail}
    if spec["kind"] == "early-stopping":
        epochs_run, cap = measured.get("epochs_run") or [], measured.get("cap")
        if not epochs_run or cap is None:
            return {**base, "status": "not-measured", "detail": NOT_MEASURED, "measured": measured}
        stopped = sum(1 for e in epochs_run if e < cap)
        ok = stopped == len(epochs_run)
        detail = f"{spec['arm']}: early stopping before the cap of {cap} epochs in {stopped} of {len(epochs_run)} runs"
        return {**base, "status": "passed" if ok else "failed", "measured": measured, "detail": detail}
    accs = measured.get("train_acc") or []
    if not accs:
        return {**base, "status": "not-measured", "detail": NOT_MEASURED, "measured": measured}
    ok = min(accs) >= spec["threshold"]
    detail = f"{spec['arm']}: lowest train accuracy {min(accs):.2f} (threshold {spec['threshold']})"
    return {**base, "status": "passed" if ok else "failed", "measured": measured, "detail": detail}


# ---------------------------------------------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------------------------------------------

def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or x != x else f"{x:+.{digits}f}"


def _values(claim: Claim, runs: list[dict]) -> tuple[list[float], list[float]] | None:
    """Per-seed metric values of the claim's arms (paired: seeds present in both), failed runs left out; the control
    side reads ``control_metric`` when the claim names one."""
    if claim.kind == "equivalence" and claim.reference is not None:
        return [r["metrics"][claim.metric] for r in _ok_runs(runs, claim.arms[0])], []
    (treatment, control), (metric, control_metric) = claim.arms, claim.metrics
    a = {r["seed"]: r["metrics"][metric] for r in _ok_runs(runs, treatment)}
    b = {r["seed"]: r["metrics"][control_metric] for r in _ok_runs(runs, control)}
    if claim.test == "paired":
        seeds = sorted(set(a) & set(b))
        return [a[s] for s in seeds], [b[s] for s in seeds]
    return list(a.values()), list(b.values())


def _test(claim: Claim, a: list[float], b: list[float]) -> tuple[EffectTest, float]:
    """The claim's test and the p-value that enters Holm's family."""
    if claim.kind == "equivalence":
        r = (reference_test(a, **{k: claim.reference[k] for k in ("mean", "std", "runs")}) if claim.reference is not None
             else effect_test(a, b, test=claim.test, direction=claim.direction))
        r = equivalence(r, claim.margin)
        return r, r.p_tost
    r = effect_test(a, b, test=claim.test, direction=claim.direction, null=claim.null)
    return r, r.p_two_sided


def outcome(claim: Claim, lo: float, hi: float, mde: float | None) -> tuple[str, str | None]:
    """The verdict word and its annotation from the interval [lo, hi] of the effect in the claimed direction."""
    if claim.kind == "equivalence":
        m = claim.margin
        if -m < lo and hi < m:
            return "reproduced", None
        if lo >= m or hi <= -m:
            return "contradicted", None
        return "inconclusive", None
    null, paper = claim.null, claim.claimed_in_direction
    paper = paper if paper is not None and paper > null else None
    if lo > null:
        if paper is not None and hi < paper:
            return "reproduced", "smaller than claimed"
        if paper is not None and lo > paper:
            return "reproduced", "larger than claimed"
        return "reproduced", None
    if hi < null:
        return "contradicted", None
    if paper is not None and hi < paper:
        return "smaller-than-claimed", "no effect detected, and the paper's effect is excluded at this scale"
    if paper is not None and mde is not None and mde == mde and mde > paper - null:
        return "inconclusive", "this scale could not tell"
    return "inconclusive", "no effect detected"


def _base(claim: Claim) -> dict:
    return {"id": claim.id, "text": claim.text, "kind": claim.kind, "source": claim.source, "counted": claim.counted,
            "paper": claim.paper, "claimed_effect": claim.claimed_effect}


def judge_chapter(claims: list[Claim], scale: str, runs: list[dict], costs: dict[str, dict] | None = None,
                  gates: dict[str, dict] | None = None) -> list[dict]:
    """The v2 verdicts on a chapter's claims, in the claims' order (JSON-ready dicts).

    ``runs``: dicts with arm, seed, status and metrics; ``costs``: arm → measured params/FLOPs; ``gates``: gate id →
    measurement (``measure_gates`` and the chapter's own plateau runs). Holm's family is every testable claim
    judged at ``scale`` with at least two successful seeds per arm, paper and book claims alike.
    """
    gates = gates or {}
    out: list[dict | None] = [None] * len(claims)
    family: list[tuple[int, Claim, EffectTest, float]] = []
    for i, claim in enumerate(claims):
        base = _base(claim)
        if claim.kind == "not-tested":
            out[i] = {**base, "verdict": "not-tested-at-this-scale", "summary": claim.reason}
        elif claim.kind in ("cost", "construction"):
            out[i] = {**base, **_judge_cost(claim, costs or {})}
        elif scale not in claim.scales:
            out[i] = {**base, "verdict": "not-tested-at-this-scale",
                      "summary": f"judged at {', '.join(claim.scales)} scale only; this is a {scale} run"}
        else:
            a, b = _values(claim, runs)
            if len(a) < 2 or (claim.reference is None and len(b) < 2):
                out[i] = {**base, "verdict": "inconclusive", "summary": f"too few successful seeds ({len(a)}, {len(b)})"}
            else:
                result, p = _test(claim, a, b)
                family.append((i, claim, result, p))
    adjusted = holm([p for *_, p in family])
    m = sum(1 for p in adjusted if p == p)
    for (i, claim, result, p), p_adj in zip(family, adjusted):
        out[i] = _statistical_verdict(claim, result, p, p_adj, m, check_gate(claim.gate, gates.get((claim.gate or {}).get("id"))))
    return out


def _statistical_verdict(claim: Claim, r: EffectTest, p: float, p_adj: float, m: int, gate: dict) -> dict:
    alpha = claim.alpha
    if p == p and p_adj == p_adj:
        # the level at which the raw test decides as the adjusted one: p < level  <=>  p_adj < alpha
        level = alpha * p / p_adj if p > 0 else alpha / m
    else:
        level = alpha
    lo, hi = r.interval(1 - level)
    lo95, hi95 = r.interval(1 - alpha)
    mde = r.mde(level) if claim.kind != "equivalence" else None
    word, note = outcome(claim, lo, hi, mde) if lo == lo else ("inconclusive", "no spread between seeds")
    paper = claim.claimed_in_direction
    stats = {"test": r.test, "direction": claim.direction, "n_treatment": r.n_treatment, "n_control": r.n_control,
             "mean_treatment": r.mean_treatment, "mean_control": r.mean_control, "diff": r.diff,
             "effect": r.effect, "null": claim.null, "margin": claim.margin, "se": r.se, "df": r.df,
             "ci_low": lo, "ci_high": hi, "ci_level": 1 - level, "ci95_low": lo95, "ci95_high": hi95,
             "p_raw": p, "p_adjusted": p_adj, "holm_family": m, "alpha": alpha, "mde": mde, "power": 0.8,
             "paper_effect": paper}
    stats = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in stats.items()}
    level_text = f"{100 * (1 - level):.4g}% CI"
    against = claim.against
    summary = (f"effect {_fmt(r.effect)} [{_fmt(lo)}, {_fmt(hi)}] (Holm-adjusted {level_text}, against {against}), "
               f"p = {p:.3g}, adjusted p = {p_adj:.3g} (family of {m}), n = {r.n_treatment}/{r.n_control}; "
               f"MDE {'n/a' if mde is None else f'{mde:.2f}'} vs paper {_fmt(paper)}")
    if note:
        summary += f"; {note}"
    if word == "smaller-than-claimed":
        here = claim.setting.get("reduced") or claim.setting.get("this scale")
        there = claim.setting.get("paper")
        if there or here:
            summary += f" (paper: {there or 'its setting'}; here: {here or 'this scale'})"
    verdict = word
    if gate["status"] in ("failed", "not-measured"):
        verdict = "not-tested-at-this-scale"
        reason = UNDER_TRAINED if gate["status"] == "failed" else NOT_MEASURED
        detail = "" if gate["detail"] == reason else f" ({gate['detail']})"
        summary = f"{reason}{detail}; the statistics alone would give {word}: {summary}"
    control_metric = {"control_metric": claim.control_metric} if claim.control_metric else {}
    return {**_base(claim), "verdict": verdict, "outcome": word, "annotation": note, "summary": summary,
            "metric": claim.metric, **control_metric, "arms": claim.arms, "test": claim.test,
            "direction": claim.direction, "alpha": claim.alpha, "min_effect": claim.min_effect, "margin": claim.margin,
            "gate": gate, "method": METHOD, "stats": stats}


def judge(claim: Claim, scale: str, runs: list[dict], costs: dict[str, dict] | None = None,
          gates: dict[str, dict] | None = None) -> dict:
    """The verdict on one claim judged alone (a Holm family of one); chapters use ``judge_chapter``."""
    return judge_chapter([claim], scale, runs, costs, gates)[0]


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
        parts.append(f"{q}: {100 * extra:+.2f}% of {reference} (limit {100 * check['max_extra_fraction']:+.1f}%)"
                     f" {'pass' if ok else 'FAIL'}")
    passed = all(r["pass"] for r in results)
    if claim.kind == "construction":
        return {"verdict": CONSTRUCTION, "passed": passed, "summary": "construction check: " + "; ".join(parts),
                "arms": claim.arms, "checks": results}
    return {"verdict": "reproduced" if passed else "contradicted", "passed": passed, "summary": "; ".join(parts),
            "arms": claim.arms, "checks": results}
