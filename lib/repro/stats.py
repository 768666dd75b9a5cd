"""Statistics behind every verdict: one-sided paired or Welch t-tests, 95 % intervals, effect sizes, and
the minimal detectable effect at 80 % power computed from the observed seed spread (scipy.stats)."""
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
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; accepted: {', '.join(TESTS)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; accepted: {', '.join(DIRECTIONS)}")
    a = np.asarray(treatment, dtype=float)
    b = np.asarray(control, dtype=float)
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
