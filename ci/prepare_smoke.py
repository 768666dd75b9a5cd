"""Prepare every chapter for its one CI execution at smoke scale, without executing anything.

For each ``papers/<slug>/<slug>.ipynb`` this writes ``_build/smoke/<slug>.ipynb``: the committed
notebook (with its reduced-scale reference outputs) plus papermill's injected-parameters cell setting
``scale = "smoke"``, and one last cell that checks the results file the execution wrote. nbval then
executes that copy once — the chapter's only execution in CI — and compares the cells marked
``# NBVAL_CHECK_OUTPUT`` with the reference outputs, through ``_build/smoke/sanitize.cfg`` =
``ci/nbval/common.cfg`` + ``ci/nbval/smoke.cfg`` (which masks the verdict words: verdicts are reached at
reduced scale and are compared only by the nightly reduced re-execution).
"""
from __future__ import annotations

import argparse
import pathlib
import shutil

import nbformat
from papermill.parameterize import parameterize_notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Appended to each smoke copy, so the results check runs in the same kernel as the chapter (no second
# execution). It reads the path the chapter's own `Chapter` object wrote to.
RESULTS_CHECK = '''\
# CI only (added by ci/prepare_smoke.py): the smoke execution wrote a complete results file
import json as _json
_results = _json.loads(chapter.results_path("smoke").read_text())
assert _results["scale"] == "smoke" and _results["claims"] and _results["runs"], "incomplete smoke results"
_failed = [(r["arm"], r["seed"], r.get("error")) for r in _results["runs"] if r["status"] != "ok"]
assert not _failed, f"runs failed at smoke scale: {_failed}"
'''


def chapters() -> list[pathlib.Path]:
    return sorted(p for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)


def smoke_copy(path: pathlib.Path) -> nbformat.NotebookNode:
    """The committed chapter, parameterized at smoke scale, with the results check appended."""
    nb = nbformat.read(path, as_version=4)
    # a chapter prepared but not yet executed at reduced scale has no papermill metadata for the parameters
    nb.metadata.setdefault("papermill", nbformat.from_dict({}))
    nb = parameterize_notebook(nb, {"scale": "smoke"})
    nb.cells.append(nbformat.v4.new_code_cell(RESULTS_CHECK, metadata={"tags": ["ci-results-check"]}))
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "_build" / "smoke"))
    parser.add_argument("--only", nargs="*", help="chapter slugs (default: all)")
    args = parser.parse_args()
    out = pathlib.Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for path in chapters():
        if args.only and path.stem not in args.only:
            continue
        nbformat.write(smoke_copy(path), out / path.name)
        print(f"prepared {path.relative_to(ROOT)} -> {out / path.name}")
    sanitize = (ROOT / "ci/nbval/common.cfg").read_text() + "\n" + (ROOT / "ci/nbval/smoke.cfg").read_text()
    (out / "sanitize.cfg").write_text(sanitize)


if __name__ == "__main__":
    main()
