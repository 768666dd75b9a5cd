"""Generate the book's data and results pages (build outputs, not committed).

* ``book/datasets.md`` from the data cards in ``data_cards/``;
* ``book/results.md``, the results dashboard, from ``papers/catalogue.yaml``, ``_toc.yml`` and every
  ``papers/<slug>/results/*.json``: per-chapter counts of the papers' claims by verdict, and one forest plot
  per part of the book (``book/results-<part>.png``) with every statistical claim as a row;
* ``book/attention-bench.md`` and ``book/attention-bench.png``, the attention bench: every arm trained on the
  coordinate attention chapter's reduced setting, by any chapter, with accuracy and costs;
* ``book/losses-bench.md``, the losses bench: every loss trained on the ISDA chapter's main reduced regime by a
  chapter that passed the bench check against it, with accuracy, training accuracy and the extra time per image.

Usage: ``python ci/build_pages.py [--root REPO_ROOT]``. The output is deterministic: the same inputs
give byte-identical pages.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import re
import statistics
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]

VERDICTS = ("reproduced", "contradicted", "smaller-than-claimed", "inconclusive", "not-tested-at-this-scale")
DASHBOARD_SCALE = "reduced"
TIERS = {
    "A": "Tier A: testable on a 2-core CPU with offline data",
    "B": "Tier B: mechanism only or partial test",
    "C": "Tier C: not reproducible at this scale (demonstration only)",
    "S": "Tier S: surveys and dataset papers",
}


def _cards_module():
    """``lib/data/cards.py`` of this repository, loaded by path (keeps the package's heavy imports out)."""
    return _module_by_path("_book_data_cards", ROOT / "lib" / "data" / "cards.py")


def _module_by_path(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building the class
    spec.loader.exec_module(module)
    return module


def cell(value) -> str:
    """A value made safe for one cell of a Markdown table."""
    if value is None or value == "":
        return "—"
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text.replace("|", "\\|")


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def demote_headings(markdown: str, levels: int = 1) -> str:
    """Add ``levels`` '#' to every ATX heading outside fenced code blocks."""
    out, fence = [], None
    for line in markdown.splitlines():
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
        elif fence is None and re.match(r"#{1,6}(\s|$)", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# datasets page
# --------------------------------------------------------------------------------------------

def build_datasets_page(root: str | pathlib.Path = ROOT) -> str:
    """Markdown of ``book/datasets.md`` from ``<root>/data_cards/*.md``."""
    cards_mod = _cards_module()
    cards_dir = pathlib.Path(root) / "data_cards"
    cards = [cards_mod.load_card(n, cards_dir) for n in cards_mod.card_names(cards_dir)]

    parts = [
        "# Datasets",
        "",
        "Every chapter reads its data through a data card: the card names the source, license and "
        "citation, lists the splits with their row counts, and pins the sha256 of every file, which "
        "is checked before any data is decoded. The book runs offline from a local mirror in the "
        "schema of the Hugging Face hub dataset named below; without a mirror the hub copy is used.",
        "",
        "The paper-scale datasets of the full presets (ImageNet-1k, ImageNet-LT, ADE20K, CIFAR-100, PubMed) are not "
        "in the offline mirror: their cards say how to get them (ImageNet is gated), and a copy the user names is "
        "checked against the card or, for hub files the book never downloaded, against the checksums the hub "
        "client recorded beside the copy.",
        "",
    ]
    if not cards:
        parts += ["No data cards were found.", ""]
        return "\n".join(parts)

    rows = []
    for c in cards:
        hub = f"`{c.hub_id}`" + (f" (`{c.hub_config}`)" if c.hub_config else "") if c.hub_id else None
        splits = ", ".join(f"{s} {spec['rows']:,}" for s, spec in c.splits.items())
        held = c.extra.get("offline_mirror", True)
        mirror = "all" if held is True else "none" if held is False else ", ".join(held)
        rows.append([f"[{c.title}](#dataset-{c.name})", hub, splits, c.license, c.format,
                     c.extra.get("access"), mirror])
    parts += [table(["dataset", "hub id", "splits (rows)", "license", "format", "access", "offline mirror"], rows),
              ""]

    for c in cards:
        body = demote_headings(c.body.strip())
        parts += [f"(dataset-{c.name})=", ""]
        if not body.startswith("## "):
            parts += [f"## {c.title}", ""]
        parts += [body, "", f"**Card**: `data_cards/{c.name}.md`"
                  + (f" · **Homepage**: <{c.homepage}>" if c.homepage else ""), "",
                  f"**Citation**: {c.citation}", ""]
    parts += _generated_datasets(cards_mod, cards_dir / "generated")
    return "\n".join(parts)


def _generated_datasets(cards_mod, folder: pathlib.Path) -> list[str]:
    """The section on datasets generated from mirrored ones (``data_cards/generated/*.md``), read without torch."""
    cards = []
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        meta, body = cards_mod.parse_front_matter(path.read_text(encoding="utf-8"))
        missing = [k for k in ("name", "title", "generator", "seed", "sources", "splits") if k not in meta]
        if missing:
            raise ValueError(f"generated data card {path}: missing required key(s) {', '.join(missing)}")
        cards.append((meta, body))
    if not cards:
        return []
    parts = ["## Generated datasets", "",
             "Some chapters train or test on datasets generated deterministically from the mirrored ones. A "
             "generated dataset gets a card too: it names the generator, its version and seed, its sources, and "
             "the sha256 of the generated tensors of every split, which the loader checks whenever it generates "
             "them and the tests regenerate.", ""]
    rows = [[f"[{m['title']}](#dataset-{m['name']})", f"`{m['generator']}`", str(m["seed"]),
             ", ".join(m["sources"]), ", ".join(f"{s} {spec['rows']:,}" for s, spec in m["splits"].items())]
            for m, _ in cards]
    parts += [table(["dataset", "generator", "seed", "sources", "splits (rows)"], rows), ""]
    for meta, body in cards:
        body = demote_headings(body.strip(), 2)
        parts += [f"(dataset-{meta['name']})=", "", body, "", f"**Card**: `data_cards/generated/{meta['name']}.md`", ""]
    return parts


# --------------------------------------------------------------------------------------------
# results dashboard
# --------------------------------------------------------------------------------------------

def load_catalogue(root: pathlib.Path) -> list[dict]:
    path = root / "papers" / "catalogue.yaml"
    if not path.is_file():
        return []
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of papers, got {type(entries).__name__}")
    return entries


def load_results(root: pathlib.Path) -> list[dict]:
    """All ``papers/<slug>/results/*.json``, each with ``_slug`` and ``_file`` added, sorted by path."""
    out = []
    for path in sorted((root / "papers").glob("*/results/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        data["_slug"] = path.parent.parent.name
        data["_file"] = path.relative_to(root).as_posix()
        out.append(data)
    return out


def _chapter_path(root: pathlib.Path, slug: str) -> pathlib.Path:
    return root / "papers" / slug / f"{slug}.ipynb"


def _chapter_link(root: pathlib.Path, slug: str, title: str) -> str:
    if _chapter_path(root, slug).is_file():
        return f"[{title}](../papers/{slug}/{slug}.ipynb)"
    return title


def _latest_per_chapter(results: list[dict]) -> dict[str, dict]:
    """One result per chapter: the newest ``created`` (ties broken by file name)."""
    best: dict[str, dict] = {}
    for r in results:
        key = (str(r.get("created") or ""), r["_file"])
        slug = r["_slug"]
        if slug not in best or key > (str(best[slug].get("created") or ""), best[slug]["_file"]):
            best[slug] = r
    return dict(sorted(best.items()))


COUNT_COLUMNS = ("paper claims", "reproduced", "contradicted", "smaller-than-claimed",
                 "inconclusive (could not tell / no effect)", "not tested", "cost checks passed / failed",
                 "book extensions (not counted)")
FOREST_KINDS = ("statistical", "non-inferiority", "equivalence")


def is_construction(claim: dict) -> bool:
    return claim.get("kind") == "construction" or claim.get("verdict") == "construction"


def chapter_counts(claims: list[dict]) -> dict[str, int]:
    """Counts of one chapter's claims: every count but ``book`` is over the paper's claims only
    (``source: paper``); construction checks are not claims and are never counted."""
    c = {k: 0 for k in ("paper", "reproduced", "contradicted", "smaller", "could_not_tell", "no_effect",
                        "not_tested", "cost_passed", "cost_failed", "book")}
    for claim in claims:
        if is_construction(claim):
            continue
        if claim.get("source", "paper") == "book":
            c["book"] += 1
            continue
        c["paper"] += 1
        verdict = claim.get("verdict")
        if claim.get("kind") == "cost":
            c["cost_passed" if claim.get("passed", verdict == "reproduced") else "cost_failed"] += 1
        elif verdict == "reproduced":
            c["reproduced"] += 1
        elif verdict == "contradicted":
            c["contradicted"] += 1
        elif verdict == "smaller-than-claimed":
            c["smaller"] += 1
        elif verdict == "inconclusive":
            c["could_not_tell" if claim.get("annotation") == "this scale could not tell" else "no_effect"] += 1
        else:
            c["not_tested"] += 1
    return c


def _count_cells(c: dict[str, int]) -> list:
    return [c["paper"], c["reproduced"], c["contradicted"], c["smaller"],
            f"{c['could_not_tell'] + c['no_effect']} ({c['could_not_tell']} / {c['no_effect']})", c["not_tested"],
            f"{c['cost_passed']} / {c['cost_failed']}", c["book"]]


def verdict_counts(results) -> dict[str, int]:
    """The totals over chapters (``chapter_counts`` summed): paper claims only, plus the book extensions."""
    total: dict[str, int] = {}
    for r in results:
        for k, v in chapter_counts(r.get("claims") or []).items():
            total[k] = total.get(k, 0) + v
    return total or chapter_counts([])


def book_parts(root: pathlib.Path, slugs: list[str]) -> list[tuple[str, list[str]]]:
    """(part caption, chapter slugs) in the order of ``_toc.yml``; chapters it does not list form a last part."""
    parts: list[tuple[str, list[str]]] = []
    toc = root / "_toc.yml"
    listed: set[str] = set()
    if toc.is_file():
        data = yaml.safe_load(toc.read_text(encoding="utf-8")) or {}
        for part in data.get("parts") or []:
            members = []
            for chapter in part.get("chapters") or []:
                bits = str(chapter.get("file", "")).split("/")
                if len(bits) == 3 and bits[0] == "papers" and bits[1] in slugs:
                    members.append(bits[1])
            listed.update(members)
            if members:
                parts.append((str(part.get("caption") or "Chapters"), members))
    rest = [s for s in slugs if s not in listed]
    if rest:
        parts.append(("Other chapters" if parts else "Chapters", rest))
    return parts


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _effect_cell(claim: dict) -> str | None:
    s = claim.get("stats") or {}
    if s.get("ci_low") is None or s.get("effect") is None:
        return None
    level = f" ({100 * s['ci_level']:.4g}%)" if s.get("ci_level") is not None else ""
    return f"{s['effect']:+.2f} [{s['ci_low']:+.2f}, {s['ci_high']:+.2f}]{level}"


def build_results_page(root: str | pathlib.Path = ROOT, figure_dir: pathlib.Path | None = None) -> str:
    """Markdown of ``book/results.md`` from the catalogue and the chapters' results files; with ``figure_dir``
    it also draws one forest plot per part of the book there (``results-<part>.png``) and shows it."""
    root = pathlib.Path(root)
    catalogue = load_catalogue(root)
    titles = {str(e["id"]): str(e.get("title") or e["id"]) for e in catalogue}
    results = load_results(root)
    reduced = [r for r in results if r.get("scale") == DASHBOARD_SCALE]
    other = [r for r in results if r.get("scale") != DASHBOARD_SCALE]
    chosen = _latest_per_chapter(reduced)

    parts = [
        "# Results dashboard",
        "",
        "Verdicts on the papers' claims as measured by the chapters at the `reduced` scale, read from each "
        "chapter's results file `papers/<chapter>/results/reduced.json`; {doc}`method` states the rules "
        "(two-sided tests, Holm across a chapter's claims, the regime gate). Counts are over the papers' claims "
        "only: the book's own extensions (`source: book`) are shown in their column and in the plots but never "
        "counted, and checks that hold by construction are sanity cells in the chapters, not claims.",
        "",
    ]

    parts += ["## Verdicts", ""]
    if not chosen:
        parts += ["No results have been recorded yet: no chapter has written a results file at the "
                  f"`{DASHBOARD_SCALE}` scale.", ""]
    else:
        rows = []
        for slug, r in chosen.items():
            rows.append([_chapter_link(root, slug, titles.get(slug, slug)), *_count_cells(chapter_counts(r.get("claims") or []))])
        total = verdict_counts(chosen.values())
        rows.append(["**all chapters**", *_count_cells(total)])
        parts += [f"{total['paper']} paper claims from {len(chosen)} chapters.", "",
                  table(["chapter", *COUNT_COLUMNS], rows), "",
                  "*Inconclusive*: the interval covers both 0 and the paper's effect; *could not tell* when the "
                  "minimal detectable effect exceeds the paper's effect, otherwise *no effect* detected (or the paper "
                  "states no effect size). *Not tested*: judged at another scale, outside what this book can run, or "
                  "its regime gate failed or was not measured.", ""]
    if other:
        scales = sorted({str(r.get("scale")) for r in other})
        parts += [f"{len(other)} results file(s) at other scales ({', '.join(scales)}) exist and are not "
                  "counted here; see the chapters for them.", ""]

    if chosen:
        for caption, slugs in book_parts(root, list(chosen)):
            parts += [f"## {caption}", ""]
            forest_input = [(slug, [c for c in chosen[slug].get("claims") or []
                                    if c.get("kind", "statistical") in FOREST_KINDS]) for slug in slugs]
            if figure_dir is not None:
                forest = _module_by_path("_book_plot_forest", ROOT / "lib" / "plot" / "forest.py")
                rows = forest.forest_rows(forest_input)
                if rows:
                    name = f"results-{_slug(caption)}.png"
                    forest.forest_plot(rows, pathlib.Path(figure_dir) / name, f"{caption}: statistical claims")
                    parts += [f"![Forest plot of the statistical claims of {caption}: effect with the interval the "
                              f"verdict used, the paper's effect and the MDE, coloured by verdict]({name})", ""]
            for slug in slugs:
                r = chosen[slug]
                title = titles.get(slug, slug)
                link = _chapter_link(root, slug, title)
                parts += [f"### {title}", ""]
                rows = []
                for claim in r.get("claims") or []:
                    if is_construction(claim):
                        continue
                    text = claim.get("text") or ""
                    cid = claim.get("id")
                    label = f"`{cid}` {text}".strip() if cid else text
                    s = claim.get("stats") or {}
                    paper = s.get("paper_effect")
                    rows.append([link, label, claim.get("source", "paper"), claim.get("verdict"), _effect_cell(claim),
                                 f"{paper:+.2f}" if paper is not None else None,
                                 f"{s['mde']:.2f}" if s.get("mde") is not None else None, claim.get("summary")])
                if rows:
                    parts += [table(["chapter", "claim", "source", "verdict", "effect [interval] (level)", "paper",
                                     "MDE", "summary"], rows), ""]
                else:
                    parts += ["This results file lists no claims.", ""]
                extras = []
                if r.get("wall_time_s") is not None:
                    extras.append(f"wall time {float(r['wall_time_s']):.0f} s")
                if r.get("created"):
                    extras.append(f"created {r['created']}")
                if r.get("git_commit"):
                    extras.append(f"runs at commit `{str(r['git_commit'])[:12]}`")
                judged = r.get("judged") or {}
                if judged.get("method"):
                    extras.append(f"judged under method {judged['method']}"
                                  + (f" at commit `{str(judged['commit'])[:12]}`" if judged.get("commit") else ""))
                parts += [f"Source: `{r['_file']}`" + (f" ({', '.join(extras)})" if extras else "") + ".", ""]

    parts += ["## Catalogue", ""]
    if not catalogue:
        parts += ["The paper catalogue `papers/catalogue.yaml` is missing or empty.", ""]
    else:
        n_chapters = sum(_chapter_path(root, str(e["id"])).is_file() for e in catalogue)
        parts += [f"{len(catalogue)} papers, {n_chapters} with a chapter. Tiers say how far a paper "
                  "can be tested on a 2-core CPU with offline data.", ""]
        by_tier: dict[str, list[dict]] = {}
        for e in catalogue:
            by_tier.setdefault(str(e.get("tier")), []).append(e)
        order = [t for t in TIERS if t in by_tier] + sorted(t for t in by_tier if t not in TIERS)
        for tier in order:
            entries = sorted(by_tier[tier], key=lambda e: str(e["id"]))
            parts += [f"### {TIERS.get(tier, f'Tier {tier}')}", ""]
            rows = []
            for e in entries:
                slug = str(e["id"])
                arxiv = e.get("arxiv")
                arxiv_link = f"[{arxiv}](https://arxiv.org/abs/{arxiv})" if arxiv else None
                status = "chapter" if _chapter_path(root, slug).is_file() else "planned"
                rows.append([slug, e.get("title"), arxiv_link, e.get("venue"), e.get("group"),
                             e.get("tier"), status])
            parts += [table(["id", "title", "arXiv", "venue", "group", "tier", "status"], rows), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# attention bench
# --------------------------------------------------------------------------------------------

BENCH_ANCHOR = "coord-attention"          # the chapter whose reduced setting defines the attention bench
BENCH_IGNORED = ("arms", "overrides")     # parameters that may differ between chapters of one bench
BENCH_FIGURE = "attention-bench.png"


def _bench_key(result: dict) -> dict:
    return {k: v for k, v in (result.get("parameters") or {}).items() if k not in BENCH_IGNORED}


def bench_members(results: list[dict], anchor: str = BENCH_ANCHOR) -> list[dict]:
    """The anchor's newest reduced result, then every other chapter's newest reduced result whose parameters
    equal the anchor's except ``arms`` (same data, subset sizes, network width, recipe, seeds)."""
    chosen = _latest_per_chapter([r for r in results if r.get("scale") == DASHBOARD_SCALE])
    if anchor not in chosen:
        return []
    key = _bench_key(chosen[anchor])
    others = [r for slug, r in chosen.items() if slug != anchor and _bench_key(r) == key]
    return [chosen[anchor], *others]


def _arms_by_trainer(members: list[dict]):
    """Each arm once, from the chapter that trained it (the anchor first; records marked ``borrowed_from`` are
    never counted twice): yields (result, arm, that arm's own successful runs by seed, the chapter's own runs,
    (mean, low, high) of test accuracy over seeds)."""
    stats_mod = _module_by_path("_book_repro_stats", ROOT / "lib" / "repro" / "stats.py")
    seen = set()
    for r in members:
        own = [run for run in r.get("runs") or [] if "borrowed_from" not in run and run.get("status", "ok") == "ok"]
        order = list((r.get("parameters") or {}).get("arms") or []) + sorted({run["arm"] for run in own})
        for arm in dict.fromkeys(order):
            runs = sorted((run for run in own if run["arm"] == arm), key=lambda x: x["seed"])
            if arm in seen or not runs:
                continue
            seen.add(arm)
            yield r, arm, runs, own, stats_mod.mean_ci([float(run["metrics"]["test_acc"]) for run in runs])


def bench_arms(members: list[dict]) -> list[dict]:
    """One row per arm: its accuracy over seeds and the costs the chapter that trained it measured."""
    rows = []
    for r, arm, runs, _, (mean, low, high) in _arms_by_trainer(members):
        cost = (r.get("costs") or {}).get(arm) or {}
        rows.append({"arm": arm, "chapter": r["_slug"], "file": r["_file"], "seeds": len(runs),
                     "mean": mean, "low": low, "high": high, "params": cost.get("params"),
                     "flops": cost.get("flops"), "latency_ms": cost.get("latency_ms")})
    return rows


def _bench_figure(rows: list[dict], path: pathlib.Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, key, scale, label in ((axes[0], "params", 1e3, "parameters (thousands)"),
                                  (axes[1], "flops", 2e6, "multiply-adds per 32×32 image (millions)")):
        for row in rows:
            if row[key] is None:
                continue
            x = row[key] / scale
            err = [[row["mean"] - row["low"]], [row["high"] - row["mean"]]] if row["low"] == row["low"] else None
            ax.errorbar([x], [row["mean"]], yerr=err, fmt="o", capsize=4, color="black" if row["arm"] == "none" else None)
            ax.annotate(row["arm"], (x, row["mean"]), textcoords="offset points", xytext=(6, 4), fontsize=9)
        ax.set_xlabel(label)
        ax.margins(x=0.15)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), mean ± 95% CI")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _bench_intro(title: str, subject: str, network: str) -> list[str]:
    """The opening lines every bench page shares."""
    return [f"# {title}", "",
            f"{subject} compared on one bench: the same {network}, data "
            "subset, recipe and seeds, whichever chapter trained them. Every number on this page is read from the "
            "chapters' results files `papers/<chapter>/results/reduced.json`.", ""]


def _no_results(anchor: str) -> list[str]:
    return [f"No results yet: the `{anchor}` chapter has no results file at the `{DASHBOARD_SCALE}` scale.", ""]


def _sources_table(members: list[dict], link: dict[str, str]) -> list[str]:
    """The bench page's last table: which chapter trained and borrowed which arms, its bench check and commit."""
    rows = []
    for r in members:
        own = sorted({run["arm"] for run in r.get("runs") or [] if "borrowed_from" not in run})
        borrowed = sorted({run["arm"] for run in r.get("runs") or [] if "borrowed_from" in run})
        checks = (r.get("bench") or {}).get("checks") or []
        check = ("; ".join(f"{c.get('name')}: {'passed' if c.get('ok') else 'failed'}" for c in checks)
                 if checks else None)
        commit = _result_commit(r)
        rows.append([link[r["_slug"]], f"`{r['_file']}`", ", ".join(own) or None, ", ".join(borrowed) or None,
                     check, f"`{str(commit)[:10]}`" if commit else None])
    return ["## Sources", "",
            table(["chapter", "results file", "arms trained", "arms borrowed", "bench check", "commit"], rows), ""]


def build_attention_bench_page(root: str | pathlib.Path = ROOT, figure: pathlib.Path | None = None) -> str:
    """Markdown of ``book/attention-bench.md``; draws the accuracy-vs-cost figure at ``figure`` if given."""
    root = pathlib.Path(root)
    members = bench_members(load_results(root))
    titles = {str(e["id"]): str(e.get("title") or e["id"]) for e in load_catalogue(root)}
    parts = _bench_intro("Attention bench", "Attention blocks", "backbone")
    if not members:
        return "\n".join(parts + _no_results(BENCH_ANCHOR))
    anchor = members[0]
    p = anchor.get("parameters") or {}
    parts += [
        "## Which runs belong to the bench",
        "",
        f"The bench is defined by the `{DASHBOARD_SCALE}` setting of the {_chapter_link(root, BENCH_ANCHOR, titles.get(BENCH_ANCHOR, BENCH_ANCHOR))} "
        f"chapter: {cell(p.get('dataset'))}, {cell(p.get('train_per_class'))} training and "
        f"{cell(p.get('test_per_class'))} test images per class, MobileNetV2 of width {cell(p.get('width_mult'))}, "
        f"{cell(p.get('epochs'))} epochs, {cell(p.get('seeds'))} seeds. A chapter belongs to the bench when its "
        "results file records exactly these parameters except the list of arms; the list is derived from the "
        "results files, not written here. Each arm is taken from the chapter that trained it (the "
        f"`{BENCH_ANCHOR}` chapter first); runs a chapter borrowed from another (marked `borrowed_from`) are "
        "not counted twice. Seeds fix the initial weights, data order and augmentation draws identically across "
        "arms, so arms from different chapters are paired like arms of one chapter; a chapter that borrows runs "
        "checks first that its own plain runs are bit-identical to the committed ones (the check's outcome is "
        "listed below).",
        "",
    ]
    rows = bench_arms(members)
    link = {r["_slug"]: _chapter_link(root, r["_slug"], titles.get(r["_slug"], r["_slug"])) for r in members}
    table_rows = []
    for row in rows:
        ci = f"[{row['low']:.2f}, {row['high']:.2f}]" if row["low"] == row["low"] else "n/a"
        table_rows.append([
            f"`{row['arm']}`", f"{row['mean']:.2f}", ci, row["seeds"],
            f"{row['params']:,}" if row["params"] is not None else None,
            f"{row['flops'] / 2e6:.2f}" if row["flops"] is not None else None,
            f"{row['latency_ms']:.1f}" if row["latency_ms"] is not None else None,
            link[row["chapter"]]])
    parts += [
        "## Accuracy and cost",
        "",
        table(["arm", "test accuracy (%)", "95% CI", "seeds", "params", "MAdds (M)", "CPU latency (ms)", "trained by"],
              table_rows),
        "",
        "Test accuracy: mean over seeds with the two-sided 95 % t-interval. MAdds = FLOPs / 2 as counted by "
        "`torch.utils.flop_counter` (convolutions and matrix products) for one 32×32 image. CPU latency: median "
        "of 30 forward passes of one image on one thread, measured by the chapter that trained the arm, so arms "
        "from different chapters were timed in different executions. Per-claim tests (paired, two-sided, Holm-adjusted) are in "
        "the chapters.",
        "",
    ]
    if figure is not None:
        title = (f"{p.get('dataset')}, MobileNetV2-{p.get('width_mult')}, {p.get('epochs')} epochs, "
                 f"{p.get('seeds')} seeds")
        _bench_figure(rows, pathlib.Path(figure), title)
        parts += [f"![Test accuracy against parameters and multiply-adds, one point per arm]({pathlib.Path(figure).name})",
                  ""]
    parts += _sources_table(members, link)
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# losses bench
# --------------------------------------------------------------------------------------------

LOSSES_ANCHOR = "isda"                    # the chapter whose reduced main regime is the losses bench
LOSSES_CONTROL = "ce"
# arm-name suffixes that mark another training set on the same recipe: each gets its own table
LOSSES_REGIMES = (("", "Clean labels, the bench's training subset"),
                  ("-noisy", "Symmetric label noise on the same training images"),
                  ("-small", "Low-data regime"))


def losses_bench_members(results: list[dict], anchor: str = LOSSES_ANCHOR) -> list[dict]:
    """The anchor's newest reduced result, then every chapter whose newest reduced result records a passed bench
    check against the anchor (``bench.reference.chapter`` is the anchor and ``bench.paired`` is true). Loss
    chapters differ in their methods' parameters by design, so membership is what the identity check proved,
    not parameter equality."""
    chosen = _latest_per_chapter([r for r in results if r.get("scale") == DASHBOARD_SCALE])
    if anchor not in chosen:
        return []
    others = [r for slug, r in chosen.items() if slug != anchor
              and ((r.get("bench") or {}).get("reference") or {}).get("chapter") == anchor
              and (r.get("bench") or {}).get("paired") is True]
    return [chosen[anchor], *others]


def _result_commit(result: dict) -> str | None:
    return (result.get("git") or {}).get("commit") or result.get("git_commit")


def stale_members(members: list[dict]) -> tuple[list[dict], list[dict]]:
    """(current, stale): a member whose bench check was made against another results file of the anchor than the
    one the page shows (the anchor was re-run since) is stale until it is re-run against the current one."""
    anchor = _result_commit(members[0]) if members else None
    current, stale = members[:1], []
    for r in members[1:]:
        (current if (r.get("bench") or {}).get("reference", {}).get("commit") == anchor else stale).append(r)
    return current, stale


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def losses_bench_rows(members: list[dict]) -> list[dict]:
    """One row per arm (``_arms_by_trainer``): accuracy over seeds and the time per training image relative to the
    same chapter's own cross-entropy runs (median throughput of the control / median throughput of the arm; the
    control of the arm's regime where the chapter trained it, else its clean-label control: the labels do not
    change the cost of a step)."""
    rows = []
    for r, arm, runs, own, (mean, low, high) in _arms_by_trainer(members):
        suffix = next((s for s, _ in LOSSES_REGIMES if s and arm.endswith(s)), "")
        speeds = {}
        for x in own:
            if x.get("train_images_per_s"):
                speeds.setdefault(x["arm"], []).append(float(x["train_images_per_s"]))
        control_arm = LOSSES_CONTROL + suffix if speeds.get(LOSSES_CONTROL + suffix) else LOSSES_CONTROL
        control, mine = _median(speeds.get(control_arm, [])), _median(speeds.get(arm, []))
        rows.append({"arm": arm, "regime": suffix, "chapter": r["_slug"], "seeds": len(runs), "mean": mean,
                     "low": low, "high": high,
                     "train_acc": _median([float(x["metrics"]["train_acc"]) for x in runs
                                           if x["metrics"].get("train_acc") is not None]),
                     "time_ratio": control / mine if control and mine else None,
                     "control_runs": len(speeds.get(control_arm, [])), "control_arm": control_arm})
    return rows


def build_losses_bench_page(root: str | pathlib.Path = ROOT) -> str:
    """Markdown of ``book/losses-bench.md``: every loss trained on the losses bench, by any chapter."""
    root = pathlib.Path(root)
    members = losses_bench_members(load_results(root))
    titles = {str(e["id"]): str(e.get("title") or e["id"]) for e in load_catalogue(root)}
    anchor_link = _chapter_link(root, LOSSES_ANCHOR, titles.get(LOSSES_ANCHOR, LOSSES_ANCHOR))
    parts = _bench_intro("Losses bench", "Losses and regularisers", "network")
    if not members:
        return "\n".join(parts + _no_results(LOSSES_ANCHOR))
    p = members[0].get("parameters") or {}
    gates = members[0].get("gate_measurements") or {}
    plateau = gates.get(f"plateau-{LOSSES_CONTROL}") or {}
    parts += [
        "## Which runs belong to the bench",
        "",
        f"The bench is the main regime of the {anchor_link} chapter at the `{DASHBOARD_SCALE}` scale: "
        f"{cell(p.get('dataset'))}, {cell(p.get('train_per_class'))} training and {cell(p.get('test_per_class'))} "
        f"test images per class, ResNet-{cell(p.get('depth'))}, {cell(p.get('epochs'))} epochs, batch "
        f"{cell(p.get('batch_size'))}, learning rate {cell(p.get('lr'))}, weight decay {cell(p.get('weight_decay'))}, "
        f"{cell(p.get('precision'))}, {cell(p.get('seeds'))} seeds.",
    ]
    if plateau.get("values") and plateau.get("doubled_values"):
        before = sum(plateau["values"]) / len(plateau["values"])
        after = sum(plateau["doubled_values"]) / len(plateau["doubled_values"])
        parts[-1] += (f" Its regime gate: cross-entropy's mean test accuracy moves by {after - before:+.2f} points from "
                      f"{plateau.get('epochs')} to {plateau.get('doubled_epochs')} epochs "
                      f"({len(plateau['values'])} seeds).")
    parts += [
        "",
        "A chapter belongs to the bench when its results file records a passed bench check against this one "
        "(`lib.repro.bench`): its parameters equal the bench's except the arms and the parameters only its own "
        "methods read, its data subsets have the same digests, and its own cross-entropy run is bit-identical to "
        "the committed one of the same seed. Seeds fix the initial weights, data order and augmentation draws, so "
        "arms from different chapters are paired like arms of one chapter. Each arm is taken from the chapter that "
        "trained it; runs a chapter paired from another (marked `borrowed_from`) are not counted twice.",
        "",
    ]
    members, stale = stale_members(members)
    if stale:
        parts += ["Not shown: " + ", ".join(_chapter_link(root, r["_slug"], titles.get(r["_slug"], r["_slug"]))
                                           for r in stale)
                  + f" checked their runs against an earlier results file of the `{LOSSES_ANCHOR}` chapter than the "
                  "one this page reads; they rejoin the bench when re-executed against it.", ""]
    rows = losses_bench_rows(members)
    link = {r["_slug"]: _chapter_link(root, r["_slug"], titles.get(r["_slug"], r["_slug"])) for r in members}
    notes = {"-noisy": "The training accuracy of these arms is agreement with the noisy labels they were trained on.",
             "-small": ""}
    if p.get("small_train_per_class") and p.get("train_per_class") and p.get("small_epochs") and p.get("epochs"):
        notes["-small"] = (f"{p['small_train_per_class']} training images per class "
                           f"({p['small_train_per_class'] / p['train_per_class']:.0%} of the bench's subset) for "
                           f"{p['small_epochs']} epochs. ")
    notes["-small"] += (f"This regime is the `{LOSSES_ANCHOR}` chapter's own: the bench check covers the main "
                        "subset only, so only arms trained in that chapter appear here.")
    for suffix, heading in LOSSES_REGIMES:
        group = [row for row in rows if row["regime"] == suffix
                 and (suffix != "-small" or row["chapter"] == LOSSES_ANCHOR)]
        if not group:
            continue
        table_rows = [[f"`{row['arm']}`", f"{row['mean']:.2f}",
                       f"[{row['low']:.2f}, {row['high']:.2f}]" if row["low"] == row["low"] else "n/a", row["seeds"],
                       f"{row['train_acc']:.1f}" if row["train_acc"] is not None else None,
                       (f"{row['time_ratio']:.2f}× ({row['control_runs']} {row['control_arm']} run{'s' * (row['control_runs'] != 1)})"
                        if row["time_ratio"] is not None else None), link[row["chapter"]]]
                      for row in group]
        parts += [f"## {heading}", ""] + ([notes[suffix], ""] if notes.get(suffix) else []) + [
                  table(["arm", "test accuracy (%)", "95% CI", "seeds", "training accuracy (%), median",
                         "time per image vs ce", "trained by"], table_rows), ""]
    parts += [
        "Test accuracy: mean over seeds with the two-sided 95 % t-interval of that arm alone; the arms are paired "
        "by seed, so compare them by the paired tests in the chapters (two-sided, Holm-adjusted), not by whether "
        "these intervals overlap. Training accuracy: the running accuracy on the augmented batches of the last "
        "epoch, in train mode, median over seeds. Time per image vs ce: the median training throughput of the same "
        "chapter's own cross-entropy runs (their count in brackets) divided by the arm's median (1.00× = no extra "
        "cost); both come from one execution of that chapter, so it is a ratio within a chapter, never across "
        "chapters, and with one cross-entropy run it is a rough figure. Every arm has the control's network: the "
        "losses change training only.",
        "",
    ]
    parts += _sources_table(members, link)
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=pathlib.Path, default=ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    book = args.root / "book"
    book.mkdir(parents=True, exist_ok=True)
    for stale in book.glob("results-*.png"):
        stale.unlink()
    pages = (("datasets.md", build_datasets_page(args.root)), ("results.md", build_results_page(args.root, book)),
             ("attention-bench.md", build_attention_bench_page(args.root, book / BENCH_FIGURE)),
             ("losses-bench.md", build_losses_bench_page(args.root)))
    for name, text in pages:
        (book / name).write_text(text, encoding="utf-8")
        print(f"wrote {book / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
