"""ci/build_pages.py builds the datasets page and the results dashboard from a small fake tree."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_pages", ROOT / "ci" / "build_pages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bp = _load_builder()

CATALOGUE = [
    {"id": "coord-attention", "title": "Coordinate Attention for Efficient Mobile Network Design",
     "arxiv": "2103.02907", "venue": "CVPR 2021", "tier": "A", "group": "attention-modules", "code": None},
    {"id": "isda", "title": "Implicit Semantic Data Augmentation", "arxiv": "2007.10538",
     "venue": None, "tier": "A", "group": "losses-and-regularization", "code": None},
    {"id": "cmae-v", "title": "A | piped title", "arxiv": "2301.06018", "venue": "x", "tier": "C",
     "group": "self-supervised", "code": None},
]


def _claim(cid, verdict, summary="effect +0.40 [-0.20, +1.00]", *, kind="statistical", source="paper", **extra):
    claim = {"id": cid, "text": f"text of {cid}", "kind": kind, "source": source, "verdict": verdict,
             "summary": summary, **extra}
    if kind == "statistical" and verdict != "not-tested-at-this-scale" or extra.get("outcome"):
        claim["stats"] = {"effect": 0.4, "ci_low": -0.2, "ci_high": 1.0, "ci_level": 0.975, "paper_effect": 0.8,
                          "mde": 1.1, "null": 0.0, "margin": None}
    return claim


TOC = {"format": "jb-book", "root": "book/intro", "parts": [
    {"caption": "Reading the book", "chapters": [{"file": "book/method"}]},
    {"caption": "Attention modules", "chapters": [{"file": "papers/coord-attention/coord-attention"}]},
    {"caption": "Losses", "chapters": [{"file": "papers/isda/isda"}]}]}


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(TOC, sort_keys=False))
    ca = tmp_path / "papers" / "coord-attention"
    (ca / "results").mkdir(parents=True)
    (ca / "coord-attention.ipynb").write_text("{}")
    (ca / "results" / "reduced.json").write_text(json.dumps({
        "chapter": "coord-attention", "scale": "reduced", "created": "2025-01-02T00:00:00",
        "git_commit": "abcdef1234567890", "wall_time_s": 1234.5, "runs": [],
        "judged": {"method": "v2", "commit": "fedcba9876543210"},
        "claims": [_claim("ca-beats-se", "reproduced", "MDE 1.1 pp | vs claimed 0.8 pp"),
                   _claim("ca-beats-cbam", "inconclusive", annotation="this scale could not tell"),
                   _claim("ca-beats-none", "inconclusive", annotation="no effect detected"),
                   _claim("ca-gated", "not-tested-at-this-scale", outcome="reproduced"),
                   _claim("ca-imagenet", "not-tested-at-this-scale", kind="not-tested"),
                   _claim("ca-cost", "reproduced", kind="cost", passed=True),
                   _claim("ca-cost-book", "contradicted", kind="cost", source="book", passed=False),
                   _claim("ca-same-cost", "construction", kind="construction", passed=True)]}))
    (ca / "results" / "full.json").write_text(json.dumps({
        "chapter": "coord-attention", "scale": "full", "claims": [_claim("ca-beats-se", "contradicted")]}))
    isda = tmp_path / "papers" / "isda" / "results"
    isda.mkdir(parents=True)  # results but no notebook: plain title, status planned
    (isda / "reduced.json").write_text(json.dumps({
        "chapter": "isda", "scale": "reduced", "created": "2025-01-01",
        "claims": [_claim("isda-beats-ce", "smaller-than-claimed"), _claim("isda-low-data", "contradicted"),
                   _claim("isda-extension", "reproduced", source="book"),
                   _claim("isda-cost", "construction", kind="construction", passed=True)]}))
    return tmp_path


def _table_row(page: str, first_cell: str) -> str:
    rows = [line for line in page.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"expected one row starting with {first_cell!r}, found {rows}"
    return rows[0]


CA_LINK = "[Coordinate Attention for Efficient Mobile Network Design](../papers/coord-attention/coord-attention.ipynb)"


def test_counts_are_over_paper_claims_at_the_reduced_scale_only(tree):
    page = bp.build_results_page(tree)
    assert page.startswith("# Results dashboard")
    header = [line for line in page.splitlines() if line.startswith("| chapter | paper claims |")][0].split(" | ")[1:]
    assert header[:4] == ["paper claims", "reproduced", "contradicted", "smaller-than-claimed"]
    # paper claims: 3 statistical + gated + not-tested + 1 cost = 6; the book cost claim and the construction
    # check are not counted; the full-scale file is not counted
    lines = page.splitlines()
    assert f"| {CA_LINK} | 6 | 1 | 0 | 0 | 2 (1 / 1) | 2 | 1 / 0 | 1 |" in lines
    assert "| Implicit Semantic Data Augmentation | 2 | 0 | 1 | 1 | 0 (0 / 0) | 0 | 0 / 0 | 1 |" in lines
    assert _table_row(page, "**all chapters**") == "| **all chapters** | 8 | 1 | 1 | 1 | 2 (1 / 1) | 2 | 1 / 0 | 2 |"
    assert "8 paper claims from 2 chapters" in page
    assert "1 results file(s) at other scales (full)" in page
    assert "ca-same-cost" not in page and "isda-cost" not in page      # construction checks are not listed


def test_chapter_counts_ignore_book_and_construction_claims():
    claims = [_claim("a", "reproduced", source="book"), _claim("b", "construction", kind="construction"),
              _claim("c", "reproduced", kind="cost", source="book", passed=True)]
    counts = bp.chapter_counts(claims)
    assert counts["paper"] == 0 and counts["book"] == 2 and counts["reproduced"] == 0 and counts["cost_passed"] == 0


def test_one_forest_plot_per_part_with_every_statistical_claim(tree):
    book = tree / "book"
    page = bp.build_results_page(tree, book)
    assert "![Forest plot of the statistical claims of Attention modules" in page
    assert "(results-attention-modules.png)" in page and "(results-losses.png)" in page
    assert (book / "results-attention-modules.png").stat().st_size > 5000
    assert (book / "results-losses.png").stat().st_size > 5000
    assert page.index("## Attention modules") < page.index("### Coordinate Attention") < page.index("## Losses")
    forest = bp._module_by_path("_forest_test", bp.ROOT / "lib" / "plot" / "forest.py")
    rows = forest.forest_rows([("isda", json.loads((tree / "papers/isda/results/reduced.json").read_text())["claims"])])
    assert [r["label"] for r in rows] == ["isda: isda-beats-ce", "isda: isda-low-data", "isda: isda-extension (book)"]
    assert {r["verdict"] for r in rows} == {"smaller-than-claimed", "contradicted", "reproduced"}


def test_chapter_links_and_status(tree):
    page = bp.build_results_page(tree)
    assert CA_LINK in page
    assert "../papers/isda/isda.ipynb" not in page  # no notebook, so no dead link
    assert ("| Implicit Semantic Data Augmentation | `isda-low-data` text of isda-low-data | paper | contradicted | "
            "+0.40 [-0.20, +1.00] (97.5%) | +0.80 | 1.10 |") in page
    assert "MDE 1.1 pp \\| vs claimed 0.8 pp" in page  # pipes escaped inside cells
    assert "judged under method v2 at commit `fedcba987654`" in page
    assert "[2103.02907](https://arxiv.org/abs/2103.02907)" in page
    assert _table_row(page, "coord-attention").endswith("| A | chapter |")
    assert _table_row(page, "isda").endswith("| A | planned |")
    assert "A \\| piped title" in page
    assert page.index("### Tier A") < page.index("### Tier C")


def test_results_page_without_results(tree):
    shutil.rmtree(tree / "papers" / "coord-attention" / "results")
    shutil.rmtree(tree / "papers" / "isda" / "results")
    page = bp.build_results_page(tree)
    assert "No results have been recorded yet" in page
    assert "| **all chapters** |" not in page
    assert "3 papers, 1 with a chapter" in page


def test_results_page_is_deterministic(tree):
    assert bp.build_results_page(tree) == bp.build_results_page(tree)
    first = bp.build_results_page(tree, tree / "a")
    assert first == bp.build_results_page(tree, tree / "a")
    assert (tree / "a" / "results-losses.png").read_bytes() == (tree / "a" / "results-losses.png").read_bytes()


def test_newest_reduced_result_wins(tree):
    results = tree / "papers" / "isda" / "results"
    (results / "reduced-old.json").write_text(json.dumps({
        "chapter": "isda", "scale": "reduced", "created": "2024-01-01",
        "claims": [_claim("isda-beats-ce", "reproduced")]}))
    page = bp.build_results_page(tree)
    assert _table_row(page, "**all chapters**").startswith("| **all chapters** | 8 | 1 | 1 | 1 |")


def test_chapters_outside_the_toc_form_their_own_part(tree):
    (tree / "_toc.yml").unlink()
    page = bp.build_results_page(tree)
    assert "\n## Chapters\n" in page and "## Attention modules" not in page


def test_datasets_page(tmp_path):
    cards = tmp_path / "data_cards"
    cards.mkdir()
    shutil.copy(ROOT / "data_cards" / "cifar10.md", cards)
    shutil.copy(ROOT / "data_cards" / "planetoid.md", cards)
    page = bp.build_datasets_page(tmp_path)
    assert page.startswith("# Datasets")
    assert "| [CIFAR-10](#dataset-cifar10) | `uoft-cs/cifar10` | train 50,000, test 10,000 | unknown | parquet | — " \
           "| all |" in page
    assert "| raw |" in page and "cora 2,708, citeseer 3,327, pubmed 19,717" in page and "| cora, citeseer |" in page
    assert "\n## CIFAR-10\n" in page and "\n### Deviations from the official release\n" in page
    assert "\n# CIFAR-10\n" not in page  # headings demoted by one level
    assert "**Citation**: Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny Images." in page
    assert page.index("(dataset-cifar10)=") < page.index("(dataset-planetoid)=")
    assert "## Generated datasets" not in page                   # no generated cards in this tree


def test_datasets_page_lists_generated_datasets_with_generator_seed_and_sources(tmp_path):
    shutil.copytree(ROOT / "data_cards", tmp_path / "data_cards")
    page = bp.build_datasets_page(tmp_path)
    section = page[page.index("## Generated datasets"):]
    assert "| [MNIST-M-like (MNIST digits blended with CIFAR-10 patches)](#dataset-mnist-m) | " \
           "`lib.data.domains.blend_with_patches` | 0 | mnist, cifar10 | train 60,000, test 10,000 |" in section
    assert "\n### MNIST-M-like\n" in section and "**Card**: `data_cards/generated/mnist-m.md`" in section


def test_demote_headings_skips_code():
    text = "# A\n\n```python\n# comment\n```\n## B\n#hashtag"
    assert bp.demote_headings(text) == "## A\n\n```python\n# comment\n```\n### B\n#hashtag"


def test_cli_writes_both_pages(tree):
    shutil.copytree(ROOT / "data_cards", tree / "data_cards")
    assert bp.main(["--root", str(tree)]) == 0
    assert (tree / "book" / "datasets.md").read_text().startswith("# Datasets")
    assert (tree / "book" / "results.md").read_text().startswith("# Results dashboard")
    assert sorted(p.name for p in (tree / "book").glob("results-*.png")) == ["results-attention-modules.png",
                                                                            "results-losses.png"]


# --- attention bench page ---------------------------------------------------------------------------------

BENCH_PARAMS = {"scale": "reduced", "seeds": 3, "threads": None, "dataset": "cifar10", "train_per_class": 450,
                "test_per_class": 500, "width_mult": 0.5, "epochs": 4, "batch_size": 128, "overrides": {}}


def _runs(arm, accs, borrowed=None):
    out = []
    for seed, acc in enumerate(accs):
        run = {"arm": arm, "seed": seed, "status": "ok", "metrics": {"test_acc": acc, "train_loss": 1.0}}
        if borrowed:
            run["borrowed_from"] = {"chapter": borrowed}
        out.append(run)
    return out


def _costs(*arms):
    return {a: {"params": 1000 + 100 * i, "flops": 2_000_000 * (i + 1), "latency_ms": 1.5 + i}
            for i, a in enumerate(arms)}


@pytest.fixture
def bench_tree(tmp_path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "catalogue.yaml").write_text(yaml.safe_dump([
        {"id": "coord-attention", "title": "Coordinate Attention"}, {"id": "triplet-attention", "title": "Triplet"},
        {"id": "other-bench", "title": "Other"}]))

    def write(slug, params, runs, costs, **extra):
        d = tmp_path / "papers" / slug / "results"
        d.mkdir(parents=True)
        (d.parent / f"{slug}.ipynb").write_text("{}")
        (d / "reduced.json").write_text(json.dumps({"chapter": slug, "scale": "reduced", "created": "2026-01-01",
                                                    "git_commit": "0123456789abcdef", "parameters": params,
                                                    "runs": runs, "costs": costs, "claims": [], **extra}))

    write("coord-attention", {**BENCH_PARAMS, "arms": ["none", "se"]},
          _runs("none", [30.0, 31.0, 32.0]) + _runs("se", [29.0, 29.0, 29.0]), _costs("none", "se"))
    # same bench, other arms: trains triplet and none, borrows se; costs of its own measurement
    write("triplet-attention", {**BENCH_PARAMS, "arms": ["triplet", "none"]},
          _runs("triplet", [33.0, 35.0, 37.0]) + _runs("none", [30.0, 31.0, 32.0])
          + _runs("se", [29.0, 29.0, 29.0], borrowed="coord-attention"),
          {"triplet": {"params": 1300, "flops": 9_000_000, "latency_ms": 4.25}, **_costs("none", "se")},
          bench={"checks": [{"name": "same setup", "ok": True}, {"name": "same control", "ok": True}]})
    # another setting (more epochs): not on this bench
    write("other-bench", {**BENCH_PARAMS, "epochs": 30, "arms": ["eca"]}, _runs("eca", [50.0, 51.0, 52.0]),
          _costs("eca"))
    return tmp_path


def test_attention_bench_members_and_arms(bench_tree):
    page = bp.build_attention_bench_page(bench_tree, bench_tree / "book" / "attention-bench.png")
    assert page.startswith("# Attention bench")
    arm_rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert [line.split(" | ")[0] for line in arm_rows] == ["| `none`", "| `se`", "| `triplet`"]   # no eca
    assert "eca" not in page and "Other" not in page
    none = _table_row(page, "`none`").split(" | ")
    assert none[1:4] == ["31.00", "[28.52, 33.48]", "3"]            # mean ± t(0.975, 2) * 1 / sqrt(3)
    assert none[-1].startswith("[Coordinate Attention]")          # the anchor's runs, not the borrower's copy
    triplet = _table_row(page, "`triplet`").split(" | ")
    assert triplet[1] == "35.00" and triplet[4:7] == ["1,300", "4.50", "4.2"]
    assert "[Triplet]" in triplet[-1]
    sources = _table_row(page, "[Triplet](../papers/triplet-attention/triplet-attention.ipynb)").split(" | ")
    assert sources[2:5] == ["none, triplet", "se", "same setup: passed; same control: passed"]
    assert "![" in page and (bench_tree / "book" / "attention-bench.png").stat().st_size > 1000


def test_attention_bench_without_anchor_and_deterministic(bench_tree, tmp_path_factory):
    assert bp.build_attention_bench_page(bench_tree) == bp.build_attention_bench_page(bench_tree)
    empty = tmp_path_factory.mktemp("empty")
    (empty / "papers").mkdir()
    page = bp.build_attention_bench_page(empty, empty / "book" / "x.png")
    assert "No results yet" in page and not (empty / "book" / "x.png").exists()


def test_cli_writes_attention_bench(bench_tree):
    assert bp.main(["--root", str(bench_tree)]) == 0
    assert (bench_tree / "book" / "attention-bench.md").read_text().startswith("# Attention bench")
    assert (bench_tree / "book" / "attention-bench.png").is_file()


# --- losses bench page ------------------------------------------------------------------------------------

def _loss_runs(arm, accs, speeds, borrowed=None):
    runs = _runs(arm, accs, borrowed)
    for run, speed in zip(runs, speeds):
        run["train_images_per_s"] = speed
        run["metrics"]["train_acc"] = run["metrics"]["test_acc"] + 10
    return runs


@pytest.fixture
def losses_tree(tmp_path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "catalogue.yaml").write_text(yaml.safe_dump([
        {"id": "isda", "title": "ISDA"}, {"id": "ols", "title": "OLS"}, {"id": "failed-check", "title": "Failed"},
        {"id": "old-check", "title": "Old"}]))

    def write(slug, runs, **extra):
        d = tmp_path / "papers" / slug / "results"
        d.mkdir(parents=True)
        (d.parent / f"{slug}.ipynb").write_text("{}")
        params = {"dataset": "cifar10", "depth": 8, "train_per_class": 1000, "test_per_class": 500, "epochs": 30,
                  "seeds": 3, "arms": sorted({r["arm"] for r in runs if "borrowed_from" not in r})}
        (d / "reduced.json").write_text(json.dumps({"chapter": slug, "scale": "reduced", "created": "2026-01-01",
                                                    "git": {"commit": "abcdef0123456789"}, "parameters": params,
                                                    "runs": runs, "claims": [], **extra}))

    write("isda", _loss_runs("ce", [70.0, 71.0, 72.0], [1000, 1000, 1000])
          + _loss_runs("isda", [69.0, 69.0, 69.0], [800, 900, 1000])
          + _loss_runs("ce-small", [48.0, 48.0, 48.0], [1000, 1000, 1000]),
          gate_measurements={"plateau-ce": {"values": [70.0, 71.0], "doubled_values": [72.0, 73.0], "epochs": 30,
                                            "doubled_epochs": 60}})
    paired = {"reference": {"chapter": "isda", "commit": "abcdef0123456789"}, "paired": True,
              "checks": [{"name": "same setup", "ok": True}, {"name": "same control", "ok": True}]}
    # trains ce seed 0 itself (slower execution), borrows seeds 1-2; its noisy arm's cost is against its own ce
    borrowed_ce = [{**r, "seed": r["seed"] + 1} for r in _loss_runs("ce", [71.0, 72.0], [1000, 1000], "isda")]
    write("ols", _loss_runs("ce", [70.0], [500]) + borrowed_ce
          + _loss_runs("ols", [73.0, 74.0, 75.0], [400, 500, 600])
          + _loss_runs("ols-noisy", [60.0, 61.0, 62.0], [250, 250, 250]), bench=paired)
    # checked against an earlier ISDA results file: stale, listed but not shown
    write("old-check", _loss_runs("poly", [80.0, 80.0, 80.0], [1000, 1000, 1000]),
          bench={**paired, "reference": {"chapter": "isda", "commit": "0000000000000000"}})
    # a chapter whose check failed: not a member even though it names the anchor
    write("failed-check", _loss_runs("focal", [90.0, 90.0, 90.0], [1000, 1000, 1000]),
          bench={"reference": {"chapter": "isda"}, "paired": False, "checks": [{"name": "same control", "ok": False}]})
    return tmp_path


def test_losses_bench_members_rows_and_cost_ratios(losses_tree):
    page = bp.build_losses_bench_page(losses_tree)
    assert page.startswith("# Losses bench") and "focal" not in page and "Failed" not in page
    assert "+2.00 points from 30 to 60 epochs (2 seeds)" in page
    arm_rows = [line.split(" | ")[0] for line in page.splitlines() if line.startswith("| `")]
    assert arm_rows == ["| `ce`", "| `isda`", "| `ols`", "| `ols-noisy`", "| `ce-small`"]   # grouped by regime
    ce = _table_row(page, "`ce`").split(" | ")
    assert ce[1:5] == ["71.00", "[68.52, 73.48]", "3", "81.0"] and "[ISDA]" in ce[-1]      # the anchor's, not the copy
    assert _table_row(page, "`isda`").split(" | ")[5] == "1.11× (3 ce runs)"     # 1000 / median(800, 900, 1000)
    ols = _table_row(page, "`ols`").split(" | ")
    assert ols[1] == "74.00" and ols[5] == "1.00× (1 ce run)" and "[OLS]" in ols[-1]   # 500 (its own ce) / 500
    assert _table_row(page, "`ols-noisy`").split(" | ")[5] == "2.00× (1 ce run)"   # no ce-noisy: its clean ce
    assert page.index("## Symmetric label noise") < page.index("| `ols-noisy`") < page.index("## Low-data")
    assert _table_row(page, "`ce-small`").split(" | ")[5] == "1.00× (3 ce-small runs)"
    assert "poly" not in page and "Not shown: [Old](../papers/old-check/old-check.ipynb)" in page
    sources = _table_row(page, "[OLS](../papers/ols/ols.ipynb)").split(" | ")
    assert sources[2:5] == ["ce, ols, ols-noisy", "ce", "same setup: passed; same control: passed"]
    assert bp.build_losses_bench_page(losses_tree) == page                                  # deterministic


def test_losses_bench_without_anchor(tmp_path):
    (tmp_path / "papers").mkdir()
    assert "No results yet" in bp.build_losses_bench_page(tmp_path)
