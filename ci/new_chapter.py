"""Scaffold a chapter: ``make new-chapter PAPER=<slug>`` creates ``papers/<slug>/`` from the catalogue.

Writes ``<slug>.ipynb`` with the chapter anatomy (scope, mechanism, setup, results, verdicts), a
``parameters`` cell, the parameter validation cell and a checked verdict cell; ``claims.yaml`` with the
paper's facts from ``papers/catalogue.yaml`` and one claim of each kind to edit before any run;
``scales.yaml`` with smoke / reduced / full presets to size. Nothing is overwritten.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCALES = """\
# Presets of the papermill parameter `scale`. Any key can be overridden with `-p <key> <value>`.
smoke:      # <= 30 s on 2 CPU cores: a few hundred examples, one seed, one epoch
  seeds: 1
  dataset: cifar10
  train_per_class: 20
  test_per_class: 20
  epochs: 1
reduced:    # <= 30 min on 2 CPU cores: size it from measured seconds per epoch
  seeds: 5
  dataset: cifar10
  train_per_class: 500
  test_per_class: 500
  epochs: 5
full:       # the paper's recipe, for GPUs
  seeds: 5
  dataset: cifar10
  train_per_class: 5000
  test_per_class: 1000
  epochs: 200
"""


def claims_skeleton(entry: dict) -> str:
    header = {"chapter": entry["id"],
              "paper": {"title": entry["title"], "venue": entry.get("venue"), "arxiv": str(entry["arxiv"]),
                        "code": entry.get("code")}}
    return (
        "# Write the claims BEFORE the reduced run, from the paper's tables; do not change them after seeing results.\n"
        + yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
        + """claims:
  - id: method-beats-baseline            # a statistical claim: arms compared over paired seeds
    text: "<the paper's claim in one sentence>"
    kind: statistical
    paper: {source: "<table / section>", metric: "<metric as the paper reports it>", values: {}}
    claimed_effect: null                 # the paper's effect in the metric's units
    arms: [method, baseline]             # [treatment, control]
    metric: test_acc
    direction: greater
    test: paired
    alpha: 0.05
    min_effect: 0.0
    scales: [reduced, full]
  - id: method-cost                      # a cost claim: exact, pass/fail against the paper's numbers
    text: "<the paper's cost claim>"
    kind: cost
    paper: {source: "<table>"}
    arms: [method, baseline]
    checks:
      - {quantity: params, max_extra_fraction: 0.05, of: baseline}
  - id: out-of-reach                     # a claim no CPU scale can test, and why
    text: "<the claim>"
    kind: not-tested
    paper: {source: "<table>"}
    reason: "<what it would need>"
""")


def notebook(entry: dict) -> nbformat.NotebookNode:
    slug, title = entry["id"], entry["title"]
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    parameters = code('scale = "reduced"  # smoke | reduced | full (presets in scales.yaml)\n'
                      "seeds = None       # None: the preset's seed count\n"
                      "threads = None     # None: every CPU this process may use")
    parameters.metadata["tags"] = ["parameters"]
    cells = [
        md(f"# {title}\n\n*{title}*, {entry.get('venue') or ''}, "
           f"[arXiv:{entry['arxiv']}](https://arxiv.org/abs/{entry['arxiv']}).\n\n## 1. Scope\n\n"
           "<The paper in a paragraph: the problem, the mechanism, what it claims. Then the claims table.>"),
        code("import time\n\nfrom lib.repro import Chapter\nfrom lib.repro.tables import claims_table, print_verdicts, "
             f"verdict_table\n\nchapter = Chapter({slug!r})\n_names_before_parameters = set(globals())"),
        parameters,
        code("P = chapter.parameters(globals(), before=_names_before_parameters)\nstarted = time.time()\n"
             "claims_table(chapter.claims)"),
        md("## 2. Mechanism\n\n<The lib module, the equations it implements (with the paper's numbers), how it maps "
           "to the paper.> The checks below do not depend on the scale; nbval compares them at every execution."),
        code("# NBVAL_CHECK_OUTPUT\nraise NotImplementedError('sanity checks of the mechanism: shapes, parameter "
             "counts, equivalences')"),
        md("## 3. Setup\n\n<Data, model, budget and seeds per scale, beside the paper's recipe.>"),
        md("## 4. Runs and results"),
        code("def run_one(arm, seed, run_dir):\n    raise NotImplementedError('seed_everything(seed, P.threads); "
             "return fit(build(arm), train, test, config, seed=seed, run_dir=run_dir)')\n\n\n"
             "runs = chapter.run(P['arms'], P.seed_list, run_one, P)"),
        md("## 5. Verdicts"),
        code("results = chapter.report(P, runs, started=started)\nverdict_table(results['claims'])"),
        code("# NBVAL_CHECK_OUTPUT\nprint_verdicts(results['claims'])"),
        md("### Deviations from the paper\n\n<...>\n\n### What full scale would change\n\n<...>"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paper", nargs="?", default="")
    parser.add_argument("--root", default=str(ROOT))
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root)
    catalogue = {e["id"]: e for e in yaml.safe_load((root / "papers" / "catalogue.yaml").read_text())}
    if args.paper not in catalogue:
        parser.error(f"unknown paper {args.paper!r}: not an id in papers/catalogue.yaml "
                     f"(e.g. {', '.join(sorted(catalogue)[:5])}, ...)")
    folder = root / "papers" / args.paper
    if folder.exists():
        parser.error(f"{folder} already exists; nothing was overwritten")
    (folder / "results").mkdir(parents=True)
    entry = catalogue[args.paper]
    nbformat.write(notebook(entry), folder / f"{args.paper}.ipynb")
    (folder / "claims.yaml").write_text(claims_skeleton(entry))
    (folder / "scales.yaml").write_text(SCALES)
    print(f"created {folder.relative_to(root)}/: {args.paper}.ipynb, claims.yaml, scales.yaml; "
          f"add the chapter to _toc.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
