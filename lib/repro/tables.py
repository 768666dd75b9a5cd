"""Tables a chapter shows: the claims as written, per-arm results, verdicts beside the detectable effect."""
from __future__ import annotations

import pandas as pd

from .claims import CONSTRUCTION, Claim
from .stats import mean_ci


def _paper_cell(c: Claim) -> str:
    source = c.paper.get("source", "")
    if c.paper.get("verified") is False:
        source = f"{source} — unverified: {c.paper.get('unverified') or 'not confirmed by a citable source'}"
    return source


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """The claims as fixed before the run: what is compared, how, the regime gate, and what the paper reports."""
    rows = []
    for c in claims:
        gate = "—"
        if c.kind in ("statistical", "non-inferiority", "equivalence"):
            arms = f"{c.arms[0]} vs {c.arms[1]}" if len(c.arms) == 2 else f"{c.arms[0]} vs the paper's reported runs"
            compared = f"{arms} on {c.metric}" + (f" vs {c.control_metric}" if c.control_metric else "")
            against = c.against + (" (TOST)" if c.kind == "equivalence" else "")
            test = f"{c.test} t-test, two-sided, α = {c.alpha}, Holm across the chapter, against {against}"
            gate = c.gate["rule"] if c.gate else "none"
        elif c.kind in ("cost", "construction") and c.checks:
            compared = f"{c.arms[0]} vs {c.arms[1]}"
            test = "; ".join(f"extra {k['quantity']} ≤ {100 * k['max_extra_fraction']:g}% of {k['of']}" for k in c.checks)
            if c.kind == "construction":
                test = "construction check (not a verdict): " + test
        else:
            compared, test = "—", "not tested: " + (c.reason or "")
        rows.append({"claim": c.id, "source": c.source if c.kind != "construction" else "construction",
                     "statement": c.text, "compared": compared, "rule": test, "regime gate": gate,
                     "paper numbers": "unverified" if c.paper.get("verified") is False else "as cited",
                     "paper": _paper_cell(c),
                     "judged at": ", ".join(c.scales) if c.testable else "every scale"})
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


def pairing_table(claims: list[Claim], runs: list[dict]) -> pd.DataFrame:
    """How much pairing by seed helps each two-arm claim: the seed correlation of the two arms and the variance of
    the paired difference relative to that of an unpaired one (var(a − b) / (var(a) + var(b)); 1 = no gain).

    Where the correlation is near 0 pairing does not reduce variance and the chapter needs more seeds (DESIGN.md:
    ≥ 8 instead of ≥ 5)."""
    import numpy as np

    from .claims import _ok_runs

    rows = []
    for c in claims:
        if c.kind not in ("statistical", "non-inferiority", "equivalence") or len(c.arms) != 2:
            continue
        by_arm = [{r["seed"]: r["metrics"][metric] for r in _ok_runs(runs, arm)}
                  for arm, metric in zip(c.arms, c.metrics)]
        seeds = sorted(set(by_arm[0]) & set(by_arm[1]))
        if len(seeds) < 3:
            continue
        a, b = (np.array([d[s] for s in seeds], dtype=float) for d in by_arm)
        spread = a.var(ddof=1) + b.var(ddof=1)
        corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        compared = (f"{c.arms[0]} {c.metrics[0]} vs {c.arms[1]} {c.metrics[1]}" if c.control_metric
                    else f"{c.arms[0]} vs {c.arms[1]}")
        rows.append({"claim": c.id, "arms": compared, "paired seeds": len(seeds),
                     "seed correlation": round(corr, 2),
                     "paired / unpaired variance": round(float((a - b).var(ddof=1) / spread), 2) if spread > 0
                     else float("nan"),
                     "test": c.test})
    return pd.DataFrame(rows).set_index("claim") if rows else pd.DataFrame(columns=["claim"]).set_index("claim")


def verdict_table(verdicts: list[dict]) -> pd.DataFrame:
    """One row per claim: verdict, the effect in the claimed direction with the interval the verdict used (at the
    Holm-adjusted level), raw and adjusted p, the MDE, the paper's effect and the regime gate."""
    rows = []
    for v in verdicts:
        if v.get("verdict") == CONSTRUCTION:
            continue
        s = v.get("stats") or {}
        gate = v.get("gate") or {}

        def num(key, digits=2):
            return round(s[key], digits) if s.get(key) is not None else None

        rows.append({
            "claim": v["id"], "source": v.get("source"), "verdict": v["verdict"],
            "statistics say": v.get("outcome") if v.get("outcome") != v["verdict"] else None,
            "effect": num("effect"),
            "interval": f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]" if s.get("ci_low") is not None else None,
            "level": f"{100 * s['ci_level']:.4g}%" if s.get("ci_level") is not None else None,
            "p": float(f"{s['p_raw']:.3g}") if s.get("p_raw") is not None else None,
            "p (Holm)": float(f"{s['p_adjusted']:.3g}") if s.get("p_adjusted") is not None else None,
            "MDE (80% power)": num("mde"),
            "paper's effect": num("paper_effect"),
            "gate": gate.get("status"),
            "detail": v.get("annotation") or ("" if s else v.get("summary")),
        })
    return pd.DataFrame(rows).set_index("claim") if rows else pd.DataFrame(rows)


def print_verdicts(verdicts: list[dict]) -> None:
    """One stable line per verdict (``claim <id>: <verdict>``), the text nbval checks; construction checks are
    sanity facts, not verdicts, and are left out."""
    for v in verdicts:
        if v.get("verdict") != CONSTRUCTION:
            print(f"claim {v['id']}: {v['verdict']}")


def method_changes(results: dict) -> pd.DataFrame:
    """Each claim's verdict under the previous verdict rules beside the current one, with the current reason.

    The previous verdicts are those of the results file the runs were re-judged from (``judged.previous``).
    """
    previous = ((results.get("judged") or {}).get("previous") or {})
    before = previous.get("verdicts") or {}
    rows = []
    for v in results["claims"]:
        old = before.get(v["id"], "—")
        rows.append({"claim": v["id"], f"{previous.get('method', 'previous')} verdict": old,
                     f"{results['judged']['method']} verdict": v["verdict"],
                     "changed": "yes" if old != v["verdict"] else "", "why (current summary)": v.get("summary", "")})
    return pd.DataFrame(rows).set_index("claim")


def gate_table(claims: list[Claim], measured: dict[str, dict]) -> pd.DataFrame:
    """Each regime gate of the chapter: its pre-registered rule, what was measured, and whether it passed."""
    from .claims import check_gate

    rows, seen = [], set()
    for c in claims:
        if not c.gate or c.gate["id"] in seen:
            continue
        seen.add(c.gate["id"])
        result = check_gate(c.gate, measured.get(c.gate["id"]))
        rows.append({"gate": c.gate["id"], "status": result["status"], "measured": result["detail"],
                     "rule": c.gate["rule"]})
    return pd.DataFrame(rows).set_index("gate") if rows else pd.DataFrame(columns=["gate"]).set_index("gate")
