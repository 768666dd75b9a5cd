"""Prepare every chapter for the CI check at smoke scale, without executing anything.

For each ``papers/<slug>/<slug>.ipynb`` this writes ``_build/smoke/<slug>.ipynb``: the committed
notebook (with its reduced-scale reference outputs) plus papermill's injected-parameters cell setting
``scale = "smoke"``. nbval then executes that copy once and compares only the cells marked
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "_build" / "smoke"))
    parser.add_argument("--only", nargs="*", help="chapter slugs (default: all)")
    args = parser.parse_args()
    out = pathlib.Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    chapters = sorted(p for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)
    for path in chapters:
        if args.only and path.stem not in args.only:
            continue
        nb = nbformat.read(path, as_version=4)
        nb = parameterize_notebook(nb, {"scale": "smoke"})
        nbformat.write(nb, out / path.name)
        print(f"prepared {path.relative_to(ROOT)} -> {out / path.name}")
    sanitize = (ROOT / "ci/nbval/common.cfg").read_text() + "\n" + (ROOT / "ci/nbval/smoke.cfg").read_text()
    (out / "sanitize.cfg").write_text(sanitize)


if __name__ == "__main__":
    main()
