"""The claim forest plot: one row per statistical claim, read from results files' verdict dicts (method v2).

Each row shows the measured effect in the claimed direction with the interval the verdict used (the
Holm-adjusted level), the paper's claimed effect as a marker, the minimal detectable effect (MDE) as a tick at
null + MDE, the null value (0, or the claim's margin), coloured by verdict. Imports only matplotlib, so the page
generator can load it by path.
"""
from __future__ import annotations

import pathlib

VERDICT_COLOURS = {
    "reproduced": "#1a9850",
    "contradicted": "#d73027",
    "smaller-than-claimed": "#f28e2b",
    "inconclusive": "#4575b4",
    "not-tested-at-this-scale": "#9e9e9e",
}


def forest_rows(chapters: list[tuple[str, list[dict]]]) -> list[dict]:
    """Rows for every claim with v2 statistics: ``chapters`` is [(chapter label, verdict dicts), ...]."""
    rows = []
    for label, verdicts in chapters:
        for v in verdicts:
            s = v.get("stats") or {}
            if s.get("ci_low") is None or s.get("effect") is None or s.get("ci_level") is None:
                continue
            rows.append({"label": f"{label}: {v['id']}" + (" (book)" if v.get("source") == "book" else ""),
                         "verdict": v.get("verdict"), "outcome": v.get("outcome"), "kind": v.get("kind"),
                         "effect": s["effect"], "low": s["ci_low"], "high": s["ci_high"], "level": s["ci_level"],
                         "paper": s.get("paper_effect"), "mde": s.get("mde"), "null": s.get("null") or 0.0,
                         "margin": s.get("margin")})
    return rows


def forest_plot(rows: list[dict], path: str | pathlib.Path, title: str) -> pathlib.Path:
    """Draw ``rows`` (``forest_rows``) to a PNG at ``path``; deterministic for the same rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    path = pathlib.Path(path)
    n = len(rows)
    fig, ax = plt.subplots(figsize=(9.5, 1.2 + 0.36 * max(n, 1)))
    values = [x for r in rows for x in (r["low"], r["high"], r["paper"], r["null"] + (r["mde"] or 0)) if x is not None]
    wide = bool(values) and max(abs(x) for x in values) > 25
    for i, r in enumerate(rows):
        y = n - 1 - i
        colour = VERDICT_COLOURS.get(r["verdict"], "#000000")
        ax.plot([r["low"], r["high"]], [y, y], color=colour, lw=2.4, solid_capstyle="butt", zorder=2)
        ax.plot([r["effect"]], [y], "o", color=colour, ms=6, zorder=3)
        if r["paper"] is not None:
            ax.plot([r["paper"]], [y], "D", mfc="white", mec="black", ms=6, zorder=4)
        if r["mde"] is not None:
            ax.plot([r["null"] + r["mde"]], [y], "|", color="#555555", ms=12, mew=1.5, zorder=4)
        if r["kind"] == "non-inferiority":
            ax.plot([r["margin"]] * 2, [y - 0.35, y + 0.35], color="black", lw=1, ls="--", zorder=1)
        if r["kind"] == "equivalence":
            for m in (-r["margin"], r["margin"]):
                ax.plot([m, m], [y - 0.35, y + 0.35], color="black", lw=1, ls="--", zorder=1)
    ax.axvline(0, color="black", lw=0.8, zorder=1)
    ax.set_yticks(range(n))
    ax.set_yticklabels([r["label"] for r in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    if wide:
        from matplotlib.ticker import FormatStrFormatter

        ax.set_xscale("symlog", linthresh=5)
        lo, hi = min(values), max(values)
        ticks = [t for t in (-100, -50, -20, -10, -5, -2, 0, 2, 5, 10, 20, 50, 100) if lo - 5 <= t <= hi + 5]
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    for i, r in enumerate(rows):
        note = r["verdict"] or ""
        if r["verdict"] == "not-tested-at-this-scale" and r["outcome"]:
            note = f"not tested (statistics: {r['outcome']})"
        ax.text(1.01, n - 1 - i, note, transform=ax.get_yaxis_transform(), fontsize=7, va="center",
                color=VERDICT_COLOURS.get(r["verdict"], "#000000"))
    ax.set_xlabel("effect in the claimed direction (metric units; interval at the Holm-adjusted level)"
                  + ("; symmetric-log axis beyond ±5" if wide else ""), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color=c, lw=2.4, label=v) for v, c in VERDICT_COLOURS.items()]
    handles += [Line2D([], [], ls="", marker="D", mfc="white", mec="black", label="paper's effect"),
                Line2D([], [], ls="", marker="|", color="#555555", ms=10, mew=1.5, label="null + MDE"),
                Line2D([], [], color="black", lw=1, ls="--", label="margin")]
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.5 / max(n, 1) - 0.12),
              ncol=4, frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return path
