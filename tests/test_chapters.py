"""Every chapter through papermill: smoke scale runs in budget; bad parameters and bad data fail loudly.

The nbval comparison of checked cells runs separately on the smoke copies built by ci/prepare_smoke.py
(see `make test`); these tests cover the papermill path a user takes.
"""
import json
import os
import pathlib
import shutil
import time

import papermill
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)
needs_mirror = pytest.mark.skipif(not os.environ.get("REPRO_DATA"), reason="REPRO_DATA is not set")


def _execute(notebook, out, **parameters):
    return papermill.execute_notebook(str(notebook), str(out), parameters=parameters, cwd=str(notebook.parent),
                                      kernel_name="python3", progress_bar=False)


def _error_text(out) -> str:
    cells = json.loads(pathlib.Path(out).read_text())["cells"]
    return "\n".join(o.get("evalue", "") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error")


@needs_mirror
@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_smoke_scale_runs_in_budget_and_writes_results(notebook, tmp_path):
    tick = time.perf_counter()
    _execute(notebook, tmp_path / "out.ipynb", scale="smoke")
    elapsed = time.perf_counter() - tick
    assert elapsed < 60, f"{notebook.stem} at smoke scale took {elapsed:.0f} s"
    results = json.loads((notebook.parent / "results" / "smoke.json").read_text())
    assert results["scale"] == "smoke" and results["claims"] and results["runs"]
    assert all(r["status"] == "ok" for r in results["runs"])


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
@pytest.mark.parametrize("parameters,message", [
    ({"scale": "huge"}, "unknown scale 'huge'; accepted: smoke, reduced, full"),
    ({"scale": "smoke", "seeds": -1}, "seeds must be a positive integer, got -1"),
    ({"scale": "smoke", "sedes": 3}, "unknown parameter(s) sedes; accepted:"),
])
def test_bad_parameters_fail_with_the_value_and_accepted_ones(notebook, parameters, message, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError):
        _execute(notebook, tmp_path / "out.ipynb", **parameters)
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
    notebook = ROOT / "papers" / "coord-attention" / "coord-attention.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        _execute(notebook, tmp_path / "out.ipynb", scale="smoke")
    assert "checksum mismatch" in _error_text(tmp_path / "out.ipynb")
