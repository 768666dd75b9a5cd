"""Chapters without a second execution: structure of every chapter (no kernel), and the papermill path a
user takes, on one representative chapter (bad parameters and bad data fail loudly, before any work).

Every chapter is executed exactly once in CI: nbval runs the smoke copies prepared by
``ci/prepare_smoke.py`` (see `make test`), compares their checked cells with the committed outputs and
checks, in the same kernel, the results file the execution wrote. Parameter validation itself is tested
on the shared code (``tests/repro``), once for all chapters.
"""
import json
import os
import pathlib
import shutil

import nbformat
import papermill
import pytest
import yaml

from lib.repro.claims import load_claims

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)
REPRESENTATIVE = ROOT / "papers" / "coord-attention" / "coord-attention.ipynb"
needs_mirror = pytest.mark.skipif(not os.environ.get("REPRO_DATA"), reason="REPRO_DATA is not set")


def _execute(notebook, out, **parameters):
    return papermill.execute_notebook(str(notebook), str(out), parameters=parameters, cwd=str(notebook.parent),
                                      kernel_name="python3", progress_bar=False)


def _error_text(out) -> str:
    cells = json.loads(pathlib.Path(out).read_text())["cells"]
    return "\n".join(o.get("evalue", "") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error")


def _code(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_structure(notebook):
    """A parameters cell papermill can inject after, validated through lib before any work, checked sanity
    cells with stored outputs, a checked verdict cell, a claims file that parses, presets for every scale."""
    nb = nbformat.read(notebook, as_version=4)
    untagged = [i for i, c in enumerate(nb.cells) if "tags" not in c.metadata]
    assert not untagged, f"{notebook.name}: cells {untagged} have no metadata.tags (papermill's re-execution " \
                         "reads the tags of every cell; give them an empty list)"
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: exactly one cell must be tagged 'parameters', found {len(tagged)}"
    assert "scale =" in _code(code[tagged[0]]), "the parameters cell must define scale"
    validating = [i for i, c in enumerate(code) if "chapter.parameters(" in _code(c)]
    assert validating and validating[0] == tagged[0] + 1 + sum(
        "injected-parameters" in c.metadata.get("tags", []) for c in code), \
        "the cell right after the parameters must validate them with chapter.parameters(...)"
    checked = [c for c in code if "# NBVAL_CHECK_OUTPUT" in _code(c)]
    assert checked and all(c.outputs for c in checked), "every # NBVAL_CHECK_OUTPUT cell needs a stored output"
    assert any("print_verdicts(" in _code(c) for c in checked), "the verdict cell must be nbval-checked"
    presets = yaml.safe_load((notebook.parent / "scales.yaml").read_text())
    assert {"smoke", "reduced", "full"} <= set(presets)
    _, claims = load_claims(notebook.parent / "claims.yaml")
    assert claims
    assert (notebook.parent / "results" / "reduced.json").is_file(), "the reduced results are committed"


def test_smoke_copies_check_their_results_in_the_same_kernel(tmp_path):
    """The one CI execution per chapter also checks the results file; a failed run fails that cell."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_smoke", ROOT / "ci" / "prepare_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    nb = module.smoke_copy(REPRESENTATIVE)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'scale = "smoke"' in injected[0].source
    check = nb.cells[-1].source
    results = tmp_path / "smoke.json"
    namespace = {"chapter": type("C", (), {"results_path": staticmethod(lambda scale: results)})}
    results.write_text(json.dumps({"scale": "smoke", "claims": [{}], "runs": [{"arm": "a", "seed": 0, "status": "ok"}]}))
    exec(check, dict(namespace))
    results.write_text(json.dumps({"scale": "smoke", "claims": [{}],
                                   "runs": [{"arm": "a", "seed": 0, "status": "failed", "error": "NaN"}]}))
    with pytest.raises(AssertionError, match="runs failed at smoke scale"):
        exec(check, dict(namespace))


def test_a_chapter_never_executed_by_papermill_gets_a_smoke_copy(tmp_path):
    """A chapter prepared before its reduced run has no papermill metadata yet; its smoke copy is still made."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_smoke", ROOT / "ci" / "prepare_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    nb = nbformat.read(REPRESENTATIVE, as_version=4)
    nb.metadata.pop("papermill", None)
    fresh = tmp_path / "fresh.ipynb"
    nbformat.write(nb, fresh)
    copy = module.smoke_copy(fresh)
    assert copy.metadata.papermill["parameters"] == {"scale": "smoke"}
    assert sum("injected-parameters" in c.metadata.get("tags", []) for c in copy.cells) == 1


@pytest.mark.parametrize("parameters,message", [
    ({"scale": "huge"}, "unknown scale 'huge'; accepted: smoke, reduced, full"),
    ({"scale": "smoke", "seeds": -1}, "seeds must be a positive integer, got -1"),
    ({"scale": "smoke", "sedes": 3}, "unknown parameter(s) sedes; accepted:"),
])
def test_bad_parameters_fail_with_the_value_and_accepted_ones(parameters, message, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError):
        _execute(REPRESENTATIVE, tmp_path / "out.ipynb", **parameters)
    assert message in _error_text(tmp_path / "out.ipynb")


@needs_mirror
def test_corrupted_mirror_file_fails_with_a_checksum_message(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    shutil.copytree(pathlib.Path(os.environ["REPRO_DATA"]) / "cifar10", mirror / "cifar10")
    victim = mirror / "cifar10" / "test-00000-of-00001.parquet"
    raw = bytearray(victim.read_bytes())
    raw[1000] ^= 0xFF
    victim.write_bytes(bytes(raw))
    monkeypatch.setenv("REPRO_DATA", str(mirror))
    with pytest.raises(papermill.PapermillExecutionError):
        _execute(REPRESENTATIVE, tmp_path / "out.ipynb", scale="smoke")
    assert "checksum mismatch" in _error_text(tmp_path / "out.ipynb")
