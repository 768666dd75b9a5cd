"""Tables a chapter shows: the claims as written, per-arm results, verdicts beside the detectable effect."""
from __future__ import annotations

import pandas as pd

from .claims import Claim
from .stats import mean_ci


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """The claims as fixed before the run: what is compared, how, and what the paper reports."""
    rows = []
    for c in claims:
        if c.kind == "statistical":
            test = f"{c.test} t-test, one-sided ({c.direction}), α = {c.alpha}"
            compared = f"{c.arms[0]} vs {c.arms[1]} on {c.metric}"
        elif c.kind == "cost":
            compared = f"{c.arms[0]} vs {c.arms[1]}"
            test = "; ".join(f"extra {k['quantity']} ≤ {100 * k['max_extra_fraction']:g}% of {k['of']}" for k in c.checks)
        else:
            compared, test = "—", "not tested: " + (c.reason or "")
        source = c.paper.get("source", "")
        rows.append({"claim": c.id, "statement": c.text, "compared": compared, "rule": test,
                     "paper": source, "judged at": ", ".join(c.scales) if c.kind == "statistical" else "every scale"})
    return pd.DataFrame(rows).set_index("claim")


def arm_table(runs: list[dict], arms: list[str], metric: str = "test_acc", costs: dict | None = None) -> pd.DataFrame:
    """Mean and 95 % t-interval of ``metric`` per arm over successful seeds, with the arm's measured costs."""
    rows = []
    for arm in arms:
        values = [r["metrics"][metric] for r in runs if r["arm"] == arm and r.get("status", "ok") == "ok"]
        failed = sum(1 for r in runs if r["arm"] == arm and r.get("status", "ok") != "ok")
        m, lo, hi = mean_ci(values) if values else (float("nan"),) * 3
        row = {"arm": arm, "seeds": len(values), "failed": failed, f"{metric} mean": round(m, 2),
               "95% CI": f"[{lo:.2f}, {hi:.2f}]" if lo == lo else "n/a",
               "min": round(min(values), 2) if values else None, "max": round(max(values), 2) if values else None}
        if costs and arm in costs:
            row["params"] = costs[arm]["params"]
            row["MFLOPs"] = round(costs[arm]["flops"] / 1e6, 2)
        rows.append(row)
    return pd.DataFrame(rows).set_index("arm")


def verdict_table(verdicts: list[dict]) -> pd.DataFrame:
    """One row per claim: verdict, observed effect with its interval, the MDE, and the paper's effect."""
    rows = []
    for v in verdicts:
        s = v.get("stats") or {}
        rows.append({
            "claim": v["id"], "verdict": v["verdict"],
            "observed Δ": round(s["diff"], 2) if s.get("diff") is not None else None,
            "95% CI": f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]" if s.get("ci_low") is not None else None,
            "p (one-sided)": float(f"{s['p_claimed']:.3g}") if s.get("p_claimed") is not None else None,
            "MDE (80% power)": round(abs(s["mde"]), 2) if s.get("mde") is not None else None,
            "paper's Δ": v.get("claimed_effect"),
            "detail": v["summary"] if not s else "",
        })
    return pd.DataFrame(rows).set_index("claim")


def print_verdicts(verdicts: list[dict]) -> None:
    """One stable line per claim (``claim <id>: <verdict>``): the text nbval checks."""
    for v in verdicts:
        print(f"claim {v['id']}: {v['verdict']}")
