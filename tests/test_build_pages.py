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


def _claim(cid, verdict, summary="Δ = +0.4 pp, 95% CI [-0.2, 1.0]"):
    return {"id": cid, "text": f"text of {cid}", "kind": "statistical", "verdict": verdict, "summary": summary}


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE, sort_keys=False))
    ca = tmp_path / "papers" / "coord-attention"
    (ca / "results").mkdir(parents=True)
    (ca / "coord-attention.ipynb").write_text("{}")
    (ca / "results" / "reduced.json").write_text(json.dumps({
        "chapter": "coord-attention", "scale": "reduced", "created": "2025-01-02T00:00:00",
        "git_commit": "abcdef1234567890", "wall_time_s": 1234.5, "runs": [],
        "claims": [_claim("ca-beats-se", "reproduced", "MDE 1.1 pp | vs claimed 0.8 pp"),
                   _claim("ca-beats-cbam", "inconclusive"),
                   _claim("ca-imagenet", "not-tested-at-this-scale")]}))
    (ca / "results" / "full.json").write_text(json.dumps({
        "chapter": "coord-attention", "scale": "full", "claims": [_claim("ca-beats-se", "contradicted")]}))
    isda = tmp_path / "papers" / "isda" / "results"
    isda.mkdir(parents=True)  # results but no notebook: plain title, status planned
    (isda / "reduced.json").write_text(json.dumps({
        "chapter": "isda", "scale": "reduced", "created": "2025-01-01",
        "claims": [_claim("isda-beats-ce", "reproduced"), _claim("isda-cost", "contradicted")]}))
    return tmp_path


def _table_row(page: str, first_cell: str) -> str:
    rows = [line for line in page.splitlines() if line.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, f"expected one row starting with {first_cell!r}, found {rows}"
    return rows[0]


def test_verdict_counts_use_reduced_scale_only(tree):
    page = bp.build_results_page(tree)
    assert page.startswith("# Results dashboard")
    assert _table_row(page, "reproduced") == "| reproduced | 2 |"
    assert _table_row(page, "contradicted") == "| contradicted | 1 |"   # the full-scale one is not counted
    assert _table_row(page, "inconclusive") == "| inconclusive | 1 |"
    assert _table_row(page, "not-tested-at-this-scale") == "| not-tested-at-this-scale | 1 |"
    assert "5 claims from 2 chapters" in page
    assert "1 results file(s) at other scales (full)" in page


def test_chapter_links_and_status(tree):
    page = bp.build_results_page(tree)
    link = "[Coordinate Attention for Efficient Mobile Network Design](../papers/coord-attention/coord-attention.ipynb)"
    assert link in page
    assert "../papers/isda/isda.ipynb" not in page  # no notebook, so no dead link
    assert "| Implicit Semantic Data Augmentation | reduced | `isda-cost` text of isda-cost | contradicted |" in page
    assert "MDE 1.1 pp \\| vs claimed 0.8 pp" in page  # pipes escaped inside cells
    assert "[2103.02907](https://arxiv.org/abs/2103.02907)" in page
    assert _table_row(page, "coord-attention").endswith("| A | chapter |")
    assert _table_row(page, "isda").endswith("| A | planned |")
    assert "A \\| piped title" in page
    # chapters in sorted order, tiers in A, B, C, S order
    assert page.index("### Coordinate Attention") < page.index("### Implicit Semantic")
    assert page.index("### Tier A") < page.index("### Tier C")


def test_results_page_without_results(tree):
    shutil.rmtree(tree / "papers" / "coord-attention" / "results")
    shutil.rmtree(tree / "papers" / "isda" / "results")
    page = bp.build_results_page(tree)
    assert "No results have been recorded yet" in page
    assert "| reproduced |" not in page
    assert "3 papers, 1 with a chapter" in page


def test_results_page_is_deterministic(tree):
    assert bp.build_results_page(tree) == bp.build_results_page(tree)


def test_newest_reduced_result_wins(tree):
    results = tree / "papers" / "isda" / "results"
    (results / "reduced-old.json").write_text(json.dumps({
        "chapter": "isda", "scale": "reduced", "created": "2024-01-01",
        "claims": [_claim("isda-beats-ce", "contradicted")]}))
    page = bp.build_results_page(tree)
    assert _table_row(page, "reproduced") == "| reproduced | 2 |"
    assert _table_row(page, "contradicted") == "| contradicted | 1 |"


def test_datasets_page(tmp_path):
    cards = tmp_path / "data_cards"
    cards.mkdir()
    shutil.copy(ROOT / "data_cards" / "cifar10.md", cards)
    shutil.copy(ROOT / "data_cards" / "planetoid.md", cards)
    page = bp.build_datasets_page(tmp_path)
    assert page.startswith("# Datasets")
    assert "| [CIFAR-10](#dataset-cifar10) | `uoft-cs/cifar10` | train 50,000, test 10,000 | unknown | parquet |" in page
    assert "| raw |" in page and "cora 2,708, citeseer 3,327" in page
    assert "\n## CIFAR-10\n" in page and "\n### Deviations from the official release\n" in page
    assert "\n# CIFAR-10\n" not in page  # headings demoted by one level
    assert "**Citation**: Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny Images." in page
    assert page.index("(dataset-cifar10)=") < page.index("(dataset-planetoid)=")


def test_demote_headings_skips_code():
    text = "# A\n\n```python\n# comment\n```\n## B\n#hashtag"
    assert bp.demote_headings(text) == "## A\n\n```python\n# comment\n```\n### B\n#hashtag"


def test_cli_writes_both_pages(tree):
    shutil.copytree(ROOT / "data_cards", tree / "data_cards")
    assert bp.main(["--root", str(tree)]) == 0
    assert (tree / "book" / "datasets.md").read_text().startswith("# Datasets")
    assert (tree / "book" / "results.md").read_text().startswith("# Results dashboard")
