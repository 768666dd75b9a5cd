"""The built book (make book runs before the tests): it exists, links every chapter, uses no CDN."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
pytestmark = pytest.mark.skipif(not (HTML / "index.html").is_file(), reason="the book is not built (make book)")


def test_every_chapter_page_is_built_with_its_verdicts():
    for notebook in sorted((ROOT / "papers").glob("*/*.ipynb")):
        if notebook.stem != notebook.parent.name:
            continue
        page = HTML / "papers" / notebook.stem / f"{notebook.stem}.html"
        assert page.is_file(), f"{page} missing"
        assert "claim " in page.read_text() and "Verdicts" in page.read_text()


def test_no_page_loads_scripts_from_a_cdn():
    for page in HTML.rglob("*.html"):
        for src in re.findall(r'<script[^>]+src="([^"]+)"', page.read_text()):
            assert not src.startswith(("http://", "https://", "//")), f"{page.name} loads {src}"
    assert (HTML / "_static" / "mathjax" / "es5" / "tex-mml-chtml.js").is_file()


def test_dashboard_lists_the_chapters_verdicts():
    text = (HTML / "book" / "results.html").read_text()
    assert "coord-attention" in text or "Coordinate Attention" in text
    assert "reproduced" in text or "inconclusive" in text
