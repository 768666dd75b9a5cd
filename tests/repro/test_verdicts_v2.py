"""Verdict rules v2: two-sided tests and matching intervals, Holm across a chapter, the five outcomes, margins
(non-inferiority, TOST equivalence), the regime gate, provenance and construction checks."""
import json
import math
import pathlib

import numpy as np
import pytest
from scipy import stats

from lib.repro import ClaimsError, compare, judge, judge_chapter, load_claims, measure_gates, parse_claims
from lib.repro.claims import NOT_MEASURED, UNDER_TRAINED, check_gate, outcome, plateau_measurement
from lib.repro.stats import effect_test, equivalence, holm, mde_two_sided, reference_test
from lib.repro.tables import claims_table, print_verdicts, verdict_table

ROOT = pathlib.Path(__file__).resolve().parents[2]
A = [71.2, 70.8, 72.0, 71.5, 70.9]
B = [70.1, 70.5, 71.2, 70.0, 70.6]


def _claims(*entries, **header):
    base = {"text": "t", "kind": "statistical", "paper": {}, "arms": ["a", "b"], "metric": "acc"}
    return parse_claims({**header, "claims": [{**base, "id": f"c{i}", **e} for i, e in enumerate(entries)]})


def _runs(values_a, values_b, arms=("a", "b")):
    return [{"arm": arm, "seed": i, "status": "ok", "metrics": {"acc": float(v)}}
            for arm, values in zip(arms, (values_a, values_b)) for i, v in enumerate(values)]


# --- the tests equal scipy's ------------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", ["greater", "less"])
def test_two_sided_tests_and_intervals_equal_scipy(direction):
    sign = 1 if direction == "greater" else -1
    x, y = (A, B) if direction == "greater" else (B, A)
    r = effect_test(A, B, test="paired", direction=direction)
    ref = stats.ttest_rel(x, y)
    assert r.p_two_sided == pytest.approx(ref.pvalue)
    assert r.interval(0.95) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert r.interval(0.99) == pytest.approx(tuple(ref.confidence_interval(0.99)))
    assert r.effect == pytest.approx(sign * (np.mean(A) - np.mean(B)))
    w = effect_test(A, B, test="welch", direction=direction)
    ref = stats.ttest_ind(x, y, equal_var=False)
    assert w.p_two_sided == pytest.approx(ref.pvalue) and w.df == pytest.approx(ref.df)
    assert w.interval(0.9) == pytest.approx(tuple(ref.confidence_interval(0.9)))


def test_null_value_shifts_the_test_not_the_interval():
    r0 = effect_test(A, B, test="paired")
    r1 = effect_test(A, B, test="paired", null=-1.0)
    assert r1.interval() == pytest.approx(r0.interval())
    d = np.subtract(A, B)
    assert r1.p_two_sided == pytest.approx(stats.ttest_1samp(d, -1.0).pvalue)


def test_mde_gives_eighty_percent_two_sided_power_by_simulation():
    rng = np.random.default_rng(1)
    n, se, level = 6, 0.5, 0.05
    mde = mde_two_sided(se, n - 1, level)
    sd = se * math.sqrt(n)
    trials = rng.normal(mde, sd, (40000, n))
    t = trials.mean(1) / (trials.std(1, ddof=1) / math.sqrt(n))
    crit = stats.t.ppf(1 - level / 2, n - 1)
    # the simulated sd varies around sd, so the noncentral-t power (fixed se) is only approached
    assert 0.72 < np.mean(np.abs(t) > crit) < 0.86
    assert mde_two_sided(2 * se, n - 1, level) == pytest.approx(2 * mde)
    assert mde_two_sided(se, n - 1, 0.01) > mde


# --- Holm ---------------------------------------------------------------------------------------------------------

def test_holm_on_a_hand_computed_example():
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])      # capped at 1
    out = holm([0.02, float("nan"), 0.01])                   # NaN is not in the family
    assert out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02) and math.isnan(out[1])


def test_holm_turns_a_lone_significant_claim_inconclusive_in_a_family():
    rng = np.random.default_rng(3)
    base = rng.normal(70, 1, 6)
    noise = np.array([0.9, 0.0, 1.4, 0.2, 1.1, 0.3])          # p about 0.04 on its own
    claims = _claims({"arms": ["a", "b"]}, {"arms": ["c", "d"]}, {"arms": ["e", "f"]})
    runs = (_runs(base + noise, base) + _runs(base, base + rng.normal(0, 1, 6), ("c", "d"))
            + _runs(base, base + rng.normal(0, 1, 6), ("e", "f")))
    alone = judge(claims[0], "reduced", runs)
    assert alone["stats"]["p_raw"] < 0.05 and alone["verdict"] == "reproduced"
    together = judge_chapter(claims, "reduced", runs)
    ps = [v["stats"]["p_raw"] for v in together]
    assert [v["stats"]["p_adjusted"] for v in together] == pytest.approx(holm(ps))
    first = together[0]
    assert first["stats"]["p_adjusted"] > 0.05 and first["verdict"] in ("inconclusive", "smaller-than-claimed")
    assert first["stats"]["ci_low"] <= 0 <= first["stats"]["ci_high"]       # the shown interval agrees
    assert first["stats"]["holm_family"] == 3


# --- property: the verdict never disagrees with the interval shown beside it ---------------------------------------

def _agrees(v):
    s = v["stats"]
    lo, hi, null, paper = s["ci_low"], s["ci_high"], s["null"], s["paper_effect"]
    word = v["verdict"]
    decided = s["p_adjusted"] < s["alpha"]
    if v["kind"] == "equivalence":
        m = s["margin"]
        inside = -m < lo and hi < m
        return (word == "reproduced") == inside == decided and (word != "contradicted" or lo >= m or hi <= -m)
    paper = paper if paper is not None and paper > null else None
    if (word in ("reproduced", "contradicted")) != decided:
        return False
    return {"reproduced": lo > null, "contradicted": hi < null,
            "smaller-than-claimed": lo <= null <= hi and paper is not None and hi < paper,
            "inconclusive": lo <= null <= hi and (paper is None or hi >= paper)}[word]


def test_property_interval_and_verdict_agree_on_random_inputs():
    rng = np.random.default_rng(2026)
    seen = set()
    for case in range(400):
        m = int(rng.integers(1, 6))
        entries, runs = [], []
        for j in range(m):
            kind = rng.choice(["statistical", "statistical", "non-inferiority", "equivalence"])
            test = rng.choice(["paired", "welch"])
            direction = rng.choice(["greater", "less"])
            n = int(rng.integers(2, 9))
            entry = {"kind": str(kind), "test": str(test), "direction": str(direction), "arms": [f"t{j}", f"c{j}"]}
            if rng.random() < 0.7:
                entry["claimed_effect"] = float(rng.choice([-1, 1]) * rng.uniform(0, 3))
            if kind == "non-inferiority":
                entry["margin"] = -float(rng.uniform(0, 2))
            if kind == "equivalence":
                entry["margin"] = float(rng.uniform(0.1, 2))
            entries.append(entry)
            control = rng.normal(70, rng.uniform(0.1, 2), n)
            treatment = control * (test == "paired") + rng.normal(0, rng.uniform(0.1, 2), n) \
                + (test == "welch") * rng.normal(70, 1, n) + rng.normal(0, 1.5)
            runs += _runs(treatment, control, (f"t{j}", f"c{j}"))
        verdicts = judge_chapter(_claims(*entries), "reduced", runs)
        for v in verdicts:
            s = v["stats"]
            assert _agrees(v), (case, v["kind"], v["verdict"], s)
            # the shown interval is the t-interval at the stated level, recomputed from the runs with scipy
            a = [r["metrics"]["acc"] for r in runs if r["arm"] == v["arms"][0]]
            b = [r["metrics"]["acc"] for r in runs if r["arm"] == v["arms"][1]]
            x, y = (a, b) if v["direction"] == "greater" else (b, a)
            ref = stats.ttest_rel(x, y) if v["test"] == "paired" else stats.ttest_ind(x, y, equal_var=False)
            assert (s["ci_low"], s["ci_high"]) == pytest.approx(tuple(ref.confidence_interval(s["ci_level"])))
            assert f"[{s['ci_low']:+.2f}, {s['ci_high']:+.2f}]" in v["summary"]
            seen.add(v["verdict"])
    assert seen >= {"reproduced", "contradicted", "smaller-than-claimed", "inconclusive"}


# --- outcomes on the book's own numbers -----------------------------------------------------------------------------

def test_tau_norm_numbers_give_smaller_than_claimed():
    claim = _claims({"claimed_effect": 5.0})[0]
    assert outcome(claim, -0.36, 0.54, 0.49)[0] == "smaller-than-claimed"
    assert outcome(claim, -0.36, 5.4, 0.49)[0] == "inconclusive"           # covers the paper's effect too
    assert outcome(claim, -0.36, 5.4, 6.0) == ("inconclusive", "this scale could not tell")
    assert outcome(claim, 0.2, 0.54, 0.49) == ("reproduced", "smaller than claimed")
    assert outcome(claim, 5.2, 6.0, 0.49) == ("reproduced", "larger than claimed")
    assert outcome(claim, -1.0, -0.1, 0.49)[0] == "contradicted"
    # the committed decoupling runs, judged alone: the chapter's tau-norm claim at imbalance 100
    header, claims = load_claims(ROOT / "papers" / "decoupling-lt" / "claims.yaml")
    results = json.loads((ROOT / "papers" / "decoupling-lt" / "results" / "reduced.json").read_text())
    tau = next(c for c in claims if c.id == "tau-beats-joint-if100")
    tau.gate = None
    v = judge(tau, "reduced", results["runs"])
    assert v["verdict"] == "smaller-than-claimed"
    # judged alone (a family of one), its interval is the unadjusted 95 % one the chapter's results file records
    stored = next(c for c in results["claims"] if c["id"] == "tau-beats-joint-if100")["stats"]
    assert v["stats"]["ci_low"] == pytest.approx(stored["ci95_low"]) and v["stats"]["ci_high"] == pytest.approx(stored["ci95_high"])
    assert v["stats"]["ci_high"] < tau.claimed_effect


def test_non_inferiority_contradicted_branch_tests_against_the_margin():
    b = np.array([80.0, 81.0, 79.5, 80.5, 80.2])
    a = b + np.array([-0.80, -0.90, -0.85, -0.88, -0.87])        # mean difference -0.86
    assert np.mean(a - b) == pytest.approx(-0.86)
    assert compare(a, b).p_opposite < 0.05                        # v1 would have said contradicted
    ni = _claims({"kind": "non-inferiority", "margin": -1.0})[0]
    v = judge(ni, "reduced", _runs(a, b))
    assert v["verdict"] != "contradicted" and v["verdict"] == "reproduced"
    assert v["stats"]["ci_low"] > -1.0 and v["stats"]["null"] == -1.0
    worse = judge(ni, "reduced", _runs(b - 1.8 + np.array([0.1, -0.1, 0.05, 0, -0.05]), b))
    assert worse["verdict"] == "contradicted" and worse["stats"]["ci_high"] < -1.0


def test_equivalence_tost_against_a_reference_and_between_arms():
    x = np.array([84.1, 84.6, 83.8, 84.4, 84.0, 84.7, 83.9, 84.3, 84.5, 83.6])
    r = reference_test(x, mean=84.4, std=0.5, runs=100)
    ref = stats.ttest_ind_from_stats(x.mean(), x.std(ddof=1), len(x), 84.4, 0.5, 100, equal_var=False)
    assert r.p_two_sided == pytest.approx(ref.pvalue)
    e = equivalence(r, 1.0)
    lo, hi = e.interval(1 - e.p_tost)                              # at level p_tost the interval touches a margin
    assert min(abs(lo + 1.0), abs(hi - 1.0)) == pytest.approx(0, abs=1e-9)
    claim = _claims({"kind": "equivalence", "margin": 1.0, "arms": ["a"], "test": "welch",
                     "reference": {"mean": 84.4, "std": 0.5, "runs": 100}})[0]
    runs = [{"arm": "a", "seed": i, "status": "ok", "metrics": {"acc": float(v)}} for i, v in enumerate(x)]
    assert judge(claim, "reduced", runs)["verdict"] == "reproduced"
    far = [{**r, "metrics": {"acc": r["metrics"]["acc"] - 3}} for r in runs]
    assert judge(claim, "reduced", far)["verdict"] == "contradicted"
    pair = _claims({"kind": "equivalence", "margin": 0.5})[0]
    assert judge(pair, "reduced", _runs(A, B))["verdict"] in ("contradicted", "inconclusive")
    assert judge(pair, "reduced", _runs(np.array(B) + 0.01 * np.arange(5), B))["verdict"] == "reproduced"


# --- the regime gate -----------------------------------------------------------------------------------------------

PLATEAU = {"kind": "plateau", "arm": "b", "metric": "acc", "max_change": 3.0, "seeds": 2,
           "rule": "control's mean at the preset's epochs within 3 points of its mean at twice the epochs, 2 seeds"}


def test_regime_gate_turns_a_significant_result_into_not_tested():
    claim = _claims({"gate": "plateau-b"}, gates={"plateau-b": PLATEAU})[0]
    runs = _runs(A, B)
    assert effect_test(A, B).p_two_sided < 0.05
    failing = {"plateau-b": {"epochs": 4, "values": [70.1, 70.5], "doubled_epochs": 8, "doubled_values": [75.0, 74.2]}}
    v = judge(claim, "reduced", runs, gates=failing)
    assert v["verdict"] == "not-tested-at-this-scale" and v["outcome"] == "reproduced"
    assert v["summary"].startswith(UNDER_TRAINED) and v["gate"]["status"] == "failed"
    missing = judge(claim, "reduced", runs)
    assert missing["verdict"] == "not-tested-at-this-scale" and missing["summary"].startswith(NOT_MEASURED)
    passing = {"plateau-b": {**failing["plateau-b"], "doubled_values": [71.0, 72.0]}}
    assert judge(claim, "reduced", runs, gates=passing)["verdict"] == "reproduced"
    doubled = [{**r, "metrics": {"acc": r["metrics"]["acc"] + 1.0}} for r in runs if r["seed"] < 2]
    built = plateau_measurement(runs, doubled, "b", "acc", 4, 8)
    assert built["seeds"] == [0, 1] and built["values"] == B[:2]
    assert judge(claim, "reduced", runs, gates={"plateau-b": built})["verdict"] == "reproduced"
    one_seed = {"plateau-b": {**passing["plateau-b"], "doubled_values": [71.0]}}
    assert judge(claim, "reduced", runs, gates=one_seed)["gate"]["status"] == "not-measured"
    not_doubled = {"plateau-b": {**passing["plateau-b"], "doubled_epochs": 6}}
    assert judge(claim, "reduced", runs, gates=not_doubled)["gate"]["status"] == "not-measured"


def test_early_stopping_and_train_accuracy_gates_are_measured_from_the_runs():
    spec = {"kind": "early-stopping", "arm": "b", "cap_parameter": "epochs",
            "rule": "early stopping before the epoch cap in every run of the control arm"}
    claim = _claims({"gate": "es"}, gates={"es": spec})[0]
    runs = _runs(A, B)
    for r in runs:
        r["metrics"]["epochs_run"] = 300
    gates = measure_gates([claim], runs, {"epochs": 1000})
    assert gates["es"]["epochs_run"] == [300] * 5
    assert judge(claim, "reduced", runs, gates=gates)["verdict"] == "reproduced"
    runs[-1]["metrics"]["epochs_run"] = 1000                       # one control run hit the cap
    gates = measure_gates([claim], runs, {"epochs": 1000})
    v = judge(claim, "reduced", runs, gates=gates)
    assert v["verdict"] == "not-tested-at-this-scale" and "4 of 5" in v["gate"]["detail"]
    acc = {"kind": "min-train-acc", "arm": "b", "threshold": 90.0, "rule": "train accuracy at least 90"}
    assert check_gate({"id": "g", **acc}, {"train_acc": [95.0, 89.0]})["status"] == "failed"
    assert check_gate({"id": "g", **acc}, {"train_acc": [95.0, 91.0]})["status"] == "passed"


# --- provenance, construction checks, schema -------------------------------------------------------------------------

def test_construction_checks_are_not_verdicts_and_book_claims_are_not_counted():
    cost = {"checks": [{"quantity": "params", "max_extra_fraction": 0.0, "of": "b"}]}
    claims = _claims({"kind": "construction", **cost}, {"kind": "cost", **cost, "source": "book"}, {})
    costs = {"a": {"params": 10}, "b": {"params": 10}}
    out = judge_chapter(claims, "reduced", _runs(A, B), costs)
    assert out[0]["verdict"] == "construction" and out[0]["passed"] and not out[0]["counted"]
    assert out[1]["verdict"] == "reproduced" and not out[1]["counted"] and out[1]["source"] == "book"
    assert out[2]["counted"] and out[2]["stats"]["holm_family"] == 1     # cost checks are not in Holm's family
    import contextlib
    import io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_verdicts(out)
    assert buffer.getvalue().splitlines() == ["claim c1: reproduced", "claim c2: reproduced"]
    assert list(verdict_table(out).index) == ["c1", "c2"]


def test_not_tested_and_other_scale_claims_stay_out_of_the_family():
    claims = _claims({}, {"scales": ["full"]}, {"kind": "not-tested", "reason": "needs ImageNet", "arms": []})
    out = judge_chapter(claims, "reduced", _runs(A, B))
    assert out[0]["stats"]["holm_family"] == 1
    assert [v["verdict"] for v in out[1:]] == ["not-tested-at-this-scale"] * 2


@pytest.mark.parametrize("bad,match", [
    ({"kind": "non-inferiority", "margin": 0.5}, "margin"),
    ({"kind": "non-inferiority"}, "margin"),
    ({"kind": "equivalence"}, "margin"),
    ({"source": "blog"}, "unknown source"),
    ({"gate": "nope"}, "unknown gate"),
    ({"gate": {"kind": "plateau", "arm": "b", "max_change": 3, "seeds": 2}}, "rule"),
    ({"gate": {"kind": "vibes", "rule": "x"}}, "unknown gate kind"),
])
def test_v2_schema_errors_name_the_bad_value(bad, match):
    with pytest.raises(ClaimsError, match=match):
        _claims(bad)


def test_control_metric_compares_two_measurements_of_the_same_runs_paired_by_seed():
    high, low = [80.2, 79.1, 81.0, 80.4, 79.8], [60.5, 61.2, 59.9, 60.8, 61.0]
    runs = [{"arm": "ce", "seed": i, "status": "ok", "metrics": {"hi": h, "lo": lo_, "acc": 70.0}}
            for i, (h, lo_) in enumerate(zip(high, low))]
    claim, = _claims({"arms": ["ce", "ce"], "metric": "hi", "control_metric": "lo"})
    out = judge(claim, "reduced", runs)
    expected = effect_test(high, low, test="paired", direction="greater")
    assert out["verdict"] == "reproduced" and out["control_metric"] == "lo"
    assert out["stats"]["effect"] == pytest.approx(expected.effect)
    assert out["stats"]["ci_low"] == pytest.approx(expected.interval(0.95)[0])
    assert out["stats"]["mean_treatment"] == pytest.approx(np.mean(high))
    assert out["stats"]["mean_control"] == pytest.approx(np.mean(low))
    assert "hi vs lo" in claims_table([claim]).loc["c0", "compared"]
    from lib.repro.tables import pairing_table
    assert pairing_table([claim], runs).loc["c0", "arms"] == "ce hi vs ce lo"
    # without it, the claim reads the same metric on both sides, as before
    plain, = _claims({})
    assert "control_metric" not in judge(plain, "reduced", _runs(A, B))


@pytest.mark.parametrize("bad,match", [
    ({"arms": ["ce", "ce"]}, "compare an arm with itself"),
    ({"arms": ["ce", "ce"], "control_metric": "acc"}, "compare an arm with itself"),
    ({"control_metric": ""}, "control_metric must be a metric name"),
    ({"kind": "equivalence", "margin": 1.0, "arms": ["a"], "reference": {"mean": 1, "std": 1, "runs": 3},
      "control_metric": "lo"}, "needs a control arm"),
])
def test_control_metric_errors_name_the_bad_value(bad, match):
    with pytest.raises(ClaimsError, match=match):
        _claims(bad)


# --- the chapters ----------------------------------------------------------------------------------------------------

CHAPTERS = sorted(p.parent.name for p in (ROOT / "papers").glob("*/claims.yaml"))


@pytest.mark.parametrize("slug", CHAPTERS)
def test_every_chapter_claim_names_its_source_and_every_tested_claim_a_gate(slug):
    text = (ROOT / "papers" / slug / "claims.yaml").read_text()
    _, claims = load_claims(ROOT / "papers" / slug / "claims.yaml")
    assert text.count("source: paper") + text.count("source: book") >= len(claims)
    trained = {r["arm"] for r in json.loads((ROOT / "papers" / slug / "results" / "reduced.json").read_text())["runs"]}
    for claim in claims:
        if claim.testable:
            assert claim.gate is not None, f"{slug}: {claim.id} names no regime gate"
            assert claim.gate["arm"] in trained, f"{slug}: {claim.id}'s gate is on an arm the chapter does not train"
        if claim.paper.get("verified") is False:
            assert claim.paper.get("unverified"), f"{slug}: {claim.id} is marked unverified without saying what"
    table = claims_table(claims)
    assert list(table.index) == [c.id for c in claims]
    for claim in claims:
        if claim.paper.get("verified") is False:
            assert "unverified" in table.loc[claim.id, "paper"]
            assert table.loc[claim.id, "paper numbers"] == "unverified"   # a short column the display never cuts
    verdicts = json.loads((ROOT / "papers" / slug / "results" / "reduced.json").read_text())["claims"]
    shown = verdict_table(verdicts)
    assert [c["id"] for c in verdicts if c["verdict"] != "construction"] == list(shown.index)


@pytest.mark.parametrize("slug", CHAPTERS)
def test_committed_verdicts_equal_a_fresh_judgement_of_the_committed_runs(slug):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_rejudge", ROOT / "ci" / "rejudge.py")
    rejudge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rejudge)
    committed = json.loads((ROOT / "papers" / slug / "results" / "reduced.json").read_text())
    fresh, _ = rejudge.rejudge(slug)
    assert committed.get("judged", {}).get("method") == "v2"
    assert [(c["id"], c["verdict"]) for c in committed["claims"]] == [(c["id"], c["verdict"]) for c in fresh["claims"]]
    keys = ("effect", "ci_low", "ci_high", "ci_level", "p_raw", "p_adjusted", "holm_family", "mde")

    def numbers(claims):
        return [(c.get("stats") or {}).get(k) for c in claims for k in keys]

    assert [x if x is not None else -1 for x in numbers(committed["claims"])] == \
        pytest.approx([x if x is not None else -1 for x in numbers(fresh["claims"])])


def test_the_worked_examples_in_method_md_are_what_the_rules_compute():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_method_examples", ROOT / "ci" / "method_examples.py")
    examples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(examples)
    text = (ROOT / "book" / "method.md").read_text(encoding="utf-8")
    assert examples.render(text) == text, "book/method.md's worked examples are stale: python ci/method_examples.py --write"


# --- pairing ----------------------------------------------------------------------------------------------------

def test_pairing_table_on_hand_computed_values():
    from lib.repro.tables import pairing_table

    shared = [0.0, 2.0, -1.0, 3.0, 1.0]                 # a seed effect common to both arms
    a = [70 + s + e for s, e in zip(shared, [0.1, -0.1, 0.2, 0.0, -0.2])]
    b = [69 + s for s in shared]
    row = pairing_table(_claims({}), _runs(a, b)).loc["c0"]
    assert row["paired seeds"] == 5
    assert row["seed correlation"] == round(float(np.corrcoef(a, b)[0, 1]), 2) > 0.9
    d = np.subtract(a, b)
    assert row["paired / unpaired variance"] == round(d.var(ddof=1) / (np.var(a, ddof=1) + np.var(b, ddof=1)), 2) < 0.1
    independent = pairing_table(_claims({}), _runs(A, [B[i] for i in (3, 0, 4, 2, 1)])).loc["c0"]
    assert independent["paired / unpaired variance"] > 0.5
