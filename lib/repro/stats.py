"""Statistics behind every verdict (scipy.stats).

Method v2 (``effect_test``, ``reference_test``, ``holm``): two-sided paired or Welch t-tests of the effect in the
claimed direction against a null value (0, or a non-inferiority margin), the matching two-sided interval at any
level, TOST for equivalence, the minimal detectable effect of the two-sided test at 80 % power from the observed
seed spread, and Holm's step-down adjustment across a chapter's claims.

``compare`` (method v1) is kept for callers that want the one-sided p-values and Cohen's effect size.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats

TESTS = ("paired", "welch")
DIRECTIONS = ("greater", "less")


@dataclass
class Comparison:
    """Treatment vs control on one metric; ``diff`` = mean(treatment) − mean(control)."""

    test: str
    direction: str
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    diff: float
    ci_low: float            # two-sided 95 % interval of diff
    ci_high: float
    p_claimed: float         # one-sided p-value for the claimed direction (H0: no effect beyond min_effect)
    p_opposite: float        # one-sided p-value for the opposite direction (H0: no effect)
    effect_size: float       # Cohen's d_z (paired) or d with pooled sd (Welch)
    mde: float               # minimal detectable |diff| at the given alpha and power, from the observed spread
    alpha: float
    power: float
    df: float

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _checked_arrays(treatment, control, test: str, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """The two arms' per-seed values as float arrays, after checking ``test`` and ``direction``."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; accepted: {', '.join(TESTS)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; accepted: {', '.join(DIRECTIONS)}")
    return np.asarray(treatment, dtype=float), np.asarray(control, dtype=float)


def _mde(se: float, df: float, alpha: float, power: float) -> float:
    """Smallest true effect a one-sided t-test (standard error ``se``, ``df``) detects with ``power``."""
    if not (se > 0 and df > 0):
        return float("nan")
    t_crit = stats.t.ppf(1 - alpha, df)

    def shortfall(delta: float) -> float:
        return stats.nct.sf(t_crit, df, delta / se) - power

    upper = se * (t_crit + stats.norm.ppf(power) + 10)
    return float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-10 * max(se, 1e-12)))


def compare(treatment, control, *, test: str = "paired", direction: str = "greater", alpha: float = 0.05,
            min_effect: float = 0.0, power: float = 0.8) -> Comparison:
    """Compare per-seed metric values of two arms.

    paired: ``treatment[i]`` and ``control[i]`` share seed i (same data order and initial draws);
    welch: independent samples. ``direction='greater'`` claims treatment > control + min_effect.
    """
    a, b = _checked_arrays(treatment, control, test, direction)
    sign = 1.0 if direction == "greater" else -1.0
    nan = float("nan")
    if test == "paired":
        if a.shape != b.shape:
            raise ValueError(f"paired test needs equal numbers of seeds, got {len(a)} and {len(b)}")
        d = a - b
        n = len(d)
        diff = float(d.mean()) if n else nan
        sd = float(d.std(ddof=1)) if n > 1 else nan
        se = sd / math.sqrt(n) if n > 1 else nan
        df = float(n - 1)
        effect = diff / sd if sd and sd > 0 else nan
    else:
        na, nb = len(a), len(b)
        diff = float(a.mean() - b.mean()) if na and nb else nan
        va = a.var(ddof=1) if na > 1 else nan
        vb = b.var(ddof=1) if nb > 1 else nan
        se = math.sqrt(va / na + vb / nb) if na > 1 and nb > 1 else nan
        df = (va / na + vb / nb) ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1)) if se and se > 0 else nan
        pooled = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2)) if na > 1 and nb > 1 else nan
        effect = diff / pooled if pooled and pooled > 0 else nan
    if se and se > 0 and math.isfinite(se):
        t_claimed = sign * (diff - sign * min_effect) / se
        t_opposite = -sign * diff / se
        p_claimed = float(stats.t.sf(t_claimed, df))
        p_opposite = float(stats.t.sf(t_opposite, df))
        half = float(stats.t.ppf(0.975, df)) * se
        ci = (diff - half, diff + half)
    else:
        p_claimed = p_opposite = nan
        ci = (nan, nan)
    return Comparison(test, direction, len(a), len(b), float(a.mean()) if len(a) else nan,
                      float(b.mean()) if len(b) else nan, diff, ci[0], ci[1], p_claimed, p_opposite, float(effect),
                      _mde(se, df, alpha, power) if math.isfinite(se) else nan, alpha, power, float(df))


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided t interval of the mean."""
    x = np.asarray(values, dtype=float)
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


# ---------------------------------------------------------------------------------------------------------------
# method v2
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class EffectTest:
    """Effect ``e`` in the claimed direction (``direction='less'``: control − treatment) tested two-sided
    against ``null``; every interval is the two-sided t-interval of ``e``."""

    test: str
    direction: str
    null: float              # the value tested against: 0 (superiority) or the non-inferiority margin
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    diff: float              # mean(treatment) − mean(control), in the metric's units
    effect: float            # diff in the claimed direction
    se: float
    df: float
    p_two_sided: float       # H0: effect = null
    p_tost: float            # equivalence (set by ``equivalence``): 2 × max of the two one-sided p-values
    tost_margin: float | None

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided t-interval of ``effect`` at ``confidence``."""
        if not (self.se > 0 and self.df > 0 and math.isfinite(self.se)):
            return float("nan"), float("nan")
        half = float(stats.t.ppf(0.5 + confidence / 2, self.df)) * self.se
        return self.effect - half, self.effect + half

    def mde(self, level: float = 0.05, power: float = 0.8) -> float:
        """Smallest true distance from ``null`` the two-sided test at ``level`` detects with ``power``."""
        return mde_two_sided(self.se, self.df, level, power)

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def mde_two_sided(se: float, df: float, level: float = 0.05, power: float = 0.8) -> float:
    """Smallest true effect δ > 0 with P(|T| > t_{1−level/2}) ≥ power for T ~ noncentral t(df, δ/se)."""
    if not (se > 0 and df > 0 and math.isfinite(se)) or not 0 < level < 1:
        return float("nan")
    t_crit = stats.t.ppf(1 - level / 2, df)

    def shortfall(delta: float) -> float:
        nc = delta / se
        upper_tail = float(stats.nct.sf(t_crit, df, nc))
        lower_tail = float(stats.nct.cdf(-t_crit, df, nc))
        upper_tail = 1.0 if upper_tail != upper_tail else upper_tail
        lower_tail = 0.0 if lower_tail != lower_tail else lower_tail
        return upper_tail + lower_tail - power

    upper = se * (t_crit + stats.norm.ppf(power) + 1)
    while shortfall(upper) < 0:
        upper *= 2
    return float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-10 * max(se, 1e-12)))


def effect_test(treatment, control, *, test: str = "paired", direction: str = "greater",
                null: float = 0.0) -> EffectTest:
    """Two-sided test of H0: effect = ``null`` with scipy (``ttest_rel`` for paired seeds, ``ttest_ind`` with
    ``equal_var=False`` for independent ones). ``null`` is in claimed-direction units."""
    a, b = _checked_arrays(treatment, control, test, direction)
    x, y = (a, b) if direction == "greater" else (b, a)        # effect = mean(x) − mean(y)
    nan = float("nan")
    if test == "paired" and a.shape != b.shape:
        raise ValueError(f"paired test needs equal numbers of seeds, got {len(a)} and {len(b)}")
    if min(len(a), len(b)) < 2:
        se = df = p = nan
    elif test == "paired":
        d = x - y
        se = float(d.std(ddof=1) / math.sqrt(len(d)))
        df = float(len(d) - 1)
        p = float(stats.ttest_rel(x - null, y).pvalue) if se > 0 else nan
    else:
        va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        se = float(math.sqrt(va + vb))
        res = stats.ttest_ind(x - null, y, equal_var=False)
        df = float(res.df) if se > 0 else nan
        p = float(res.pvalue) if se > 0 else nan
    mean_a = float(a.mean()) if len(a) else nan
    mean_b = float(b.mean()) if len(b) else nan
    diff = mean_a - mean_b
    effect = diff if direction == "greater" else -diff
    return EffectTest(test, direction, float(null), len(a), len(b), mean_a, mean_b, diff, effect, se, df, p,
                      nan, None)


def reference_test(values, *, mean: float, std: float, runs: int) -> EffectTest:
    """Welch test of the arm's mean against a reported mean ± std over ``runs`` runs (``ttest_ind_from_stats``);
    the effect is (ours − reported)."""
    x = np.asarray(values, dtype=float)
    nan = float("nan")
    m = float(x.mean()) if len(x) else nan
    if len(x) < 2:
        se = df = p = nan
    else:
        va, vb = x.var(ddof=1) / len(x), std ** 2 / runs
        se = float(math.sqrt(va + vb))
        df = float((va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (runs - 1))) if se > 0 else nan
        p = float(stats.ttest_ind_from_stats(m, float(x.std(ddof=1)), len(x), mean, std, runs,
                                             equal_var=False).pvalue) if se > 0 else nan
    return EffectTest("welch-reference", "greater", 0.0, len(x), int(runs), m, float(mean), m - mean, m - mean,
                      se, df, p, nan, None)


def equivalence(result: EffectTest, margin: float) -> EffectTest:
    """TOST against ±``margin``: ``p_tost`` = 2 × max(one-sided p of effect > −margin, of effect < +margin), so
    that ``p_tost < γ`` exactly when the two-sided (1 − γ) interval lies inside (−margin, +margin)."""
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin!r}")
    if result.se > 0 and result.df > 0 and math.isfinite(result.se):
        p_low = float(stats.t.sf((result.effect + margin) / result.se, result.df))
        p_high = float(stats.t.cdf((result.effect - margin) / result.se, result.df))
        p = min(1.0, 2 * max(p_low, p_high))
    else:
        p = float("nan")
    return EffectTest(**{**asdict(result), "p_tost": p, "tost_margin": float(margin)})


def holm(pvalues) -> list[float]:
    """Holm–Bonferroni adjusted p-values: the k-th smallest of m is multiplied by (m − k + 1), then made
    non-decreasing in that order and capped at 1. NaN entries are left out of the family and stay NaN."""
    p = [float(v) for v in pvalues]
    index = sorted((i for i, v in enumerate(p) if v == v), key=lambda i: p[i])
    m = len(index)
    out = [float("nan")] * len(p)
    running = 0.0
    for k, i in enumerate(index):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out
