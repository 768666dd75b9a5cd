"""lib.repro: t-tests equal scipy's, the MDE means 80 % power, verdict rules, claims schema, cost claims."""
import numpy as np
import pytest
from scipy import stats

from lib.repro import ClaimsError, compare, judge, parse_claims
from lib.repro.stats import mean_ci


A = [71.2, 70.8, 72.0, 71.5, 70.9]
B = [70.1, 70.5, 71.2, 70.0, 70.6]


def test_paired_and_welch_p_values_equal_scipy():
    c = compare(A, B, test="paired")
    assert c.p_claimed == pytest.approx(stats.ttest_rel(A, B, alternative="greater").pvalue)
    assert c.p_opposite == pytest.approx(stats.ttest_rel(A, B, alternative="less").pvalue)
    w = compare(A, B, test="welch")
    assert w.p_claimed == pytest.approx(stats.ttest_ind(A, B, equal_var=False, alternative="greater").pvalue)
    ci = stats.ttest_rel(A, B).confidence_interval(0.95)
    assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high))


def test_direction_less_mirrors_greater():
    g = compare(A, B, direction="greater")
    l = compare(B, A, direction="less")
    assert g.p_claimed == pytest.approx(l.p_claimed)


def test_mde_gives_eighty_percent_power_by_simulation():
    rng = np.random.default_rng(0)
    sd, n = 1.0, 8
    d = rng.normal(0, sd, n)
    c = compare(d, np.zeros(n))
    # at a true effect equal to the MDE (with the observed sd), a one-sided test rejects in ~80 % of samples
    s = d.std(ddof=1)
    trials = rng.normal(c.mde, s, (20000, n))
    t = trials.mean(1) / (trials.std(1, ddof=1) / np.sqrt(n))
    # the simulation's own sd varies, so allow a few points
    assert 0.74 < np.mean(t > stats.t.ppf(0.95, n - 1)) < 0.86
    assert compare(2 * d, np.zeros(n)).mde == pytest.approx(2 * c.mde)


def _claim(**kw):
    base = {"id": "x", "text": "t", "kind": "statistical", "paper": {}, "arms": ["a", "b"], "metric": "acc"}
    return parse_claims({"claims": [{**base, **kw}]})[0]


def _runs(values_a, values_b):
    return [{"arm": arm, "seed": i, "status": "ok", "metrics": {"acc": v}}
            for arm, values in (("a", values_a), ("b", values_b)) for i, v in enumerate(values)]


def test_verdict_rules():
    claim = _claim()
    assert judge(claim, "reduced", _runs(A, B))["verdict"] == "reproduced"
    assert judge(claim, "reduced", _runs(B, A))["verdict"] == "contradicted"
    noisy = [70.0, 71.0, 70.5, 70.2, 70.9]
    assert judge(claim, "reduced", _runs(noisy, noisy[::-1]))["verdict"] == "inconclusive"
    assert judge(claim, "smoke", _runs(A, B))["verdict"] == "not-tested-at-this-scale"
    assert judge(claim, "reduced", _runs(A[:1], B[:1]))["verdict"] == "inconclusive"


def test_failed_runs_are_left_out_not_averaged():
    runs = _runs(A, B)
    runs[0] = {**runs[0], "status": "failed", "metrics": {"acc": float("nan")}}
    result = judge(_claim(), "reduced", runs)
    assert result["stats"]["n_treatment"] == 4


def test_min_effect_is_replaced_by_a_margin_in_v2():
    with pytest.raises(ClaimsError, match="non-inferiority"):
        _claim(min_effect=5.0)


def test_cost_claim_passes_and_fails_on_its_threshold():
    claim = parse_claims({"claims": [{"id": "c", "text": "t", "kind": "cost", "paper": {}, "arms": ["ca", "se"],
                                      "checks": [{"quantity": "params", "max_extra_fraction": 0.02, "of": "none"}]}]})[0]
    costs = {"none": {"params": 100}, "se": {"params": 110}, "ca": {"params": 112}}
    assert judge(claim, "reduced", [], costs)["verdict"] == "reproduced"
    costs["ca"]["params"] = 113
    assert judge(claim, "reduced", [], costs)["verdict"] == "contradicted"


@pytest.mark.parametrize("bad,match", [
    ({"kind": "vibes"}, "unknown kind 'vibes'"),
    ({"test": "z"}, "unknown test 'z'"),
    ({"arms": ["a"]}, "arms"),
    ({"scales": ["huge"]}, "unknown scales"),
    ({"alpha": 0.7}, "alpha"),
    ({"colour": "red"}, "unknown keys"),
])
def test_claims_schema_errors_name_the_bad_value(bad, match):
    with pytest.raises(ClaimsError, match=match):
        _claim(**bad)


def test_mean_ci_matches_t_interval():
    m, lo, hi = mean_ci(A)
    ref = stats.t.interval(0.95, len(A) - 1, loc=np.mean(A), scale=stats.sem(A))
    assert (lo, hi) == pytest.approx(ref) and m == pytest.approx(np.mean(A))
