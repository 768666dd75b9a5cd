"""make new-chapter scaffolds a chapter whose claims and presets pass the same validation as real ones."""
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml

from lib.repro import load_claims, resolve_parameters

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "ci" / "new_chapter.py"


def _scaffold(root, slug):
    return subprocess.run([sys.executable, str(SCRIPT), slug, "--root", str(root)], capture_output=True, text=True)


@pytest.fixture
def root(tmp_path):
    (tmp_path / "papers").mkdir()
    shutil.copy(ROOT / "papers" / "catalogue.yaml", tmp_path / "papers" / "catalogue.yaml")
    return tmp_path


def test_scaffold_has_the_anatomy_and_valid_claims_and_presets(root):
    assert _scaffold(root, "isda").returncode == 0
    folder = root / "papers" / "isda"
    nb = nbformat.read(folder / "isda.ipynb", as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert sum("NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells if c.cell_type == "code") == 2
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    assert headings == ["## 1. Scope", "## 2. Mechanism", "## 3. Setup", "## 4. Runs and results", "## 5. Verdicts"]
    header, claims = load_claims(folder / "claims.yaml")
    catalogue = {e["id"]: e for e in yaml.safe_load((root / "papers" / "catalogue.yaml").read_text())}
    assert header["paper"]["arxiv"] == str(catalogue["isda"]["arxiv"])
    assert {c.kind for c in claims} == {"statistical", "cost", "not-tested"}
    presets = yaml.safe_load((folder / "scales.yaml").read_text())
    assert resolve_parameters(presets, {"scale": "smoke"}).seeds == 1


def test_unknown_slug_and_existing_folder_are_refused(root):
    result = _scaffold(root, "not-a-paper")
    assert result.returncode != 0 and "unknown paper 'not-a-paper'" in result.stderr
    assert _scaffold(root, "dagnn").returncode == 0
    again = _scaffold(root, "dagnn")
    assert again.returncode != 0 and "already exists" in again.stderr
