"""Execute one chapter with papermill: ``make chapter PAPER=<slug> SCALE=<scale> [PROCS=<n>]``.

* ``reduced`` executes the notebook in place: its outputs become the book's reference outputs and
  ``results/reduced.json`` is rewritten;
* ``smoke`` writes ``_build/chapters/<slug>.smoke.ipynb``; ``full`` writes ``runs/<slug>/full.ipynb``,
  leaving the committed reference untouched.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import papermill

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCALES = ("smoke", "reduced", "full")


def output_path(slug: str, scale: str) -> pathlib.Path:
    if scale == "reduced":
        return ROOT / "papers" / slug / f"{slug}.ipynb"
    if scale == "full":
        return ROOT / "runs" / slug / "full.ipynb"
    return ROOT / "_build" / "chapters" / f"{slug}.{scale}.ipynb"


def main() -> int:
    chapters = sorted(p.parent.name for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paper", nargs="?", default="")
    parser.add_argument("--scale", default="reduced")
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="extra papermill parameter, e.g. -p seeds 3")
    args = parser.parse_args()
    if args.paper not in chapters:
        parser.error(f"unknown chapter {args.paper!r}; accepted: {', '.join(chapters)}")
    if args.scale not in SCALES:
        parser.error(f"unknown scale {args.scale!r}; accepted: {', '.join(SCALES)}")
    if args.procs != 1:
        parser.error(f"PROCS={args.procs}: multi-process execution of chapters is not available yet; use PROCS=1")
    source = ROOT / "papers" / args.paper / f"{args.paper}.ipynb"
    target = output_path(args.paper, args.scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    params = {"scale": args.scale}
    for name, value in args.parameter:
        params[name] = int(value) if value.lstrip("-").isdigit() else value
    tick = time.perf_counter()
    papermill.execute_notebook(str(source), str(target), parameters=params, cwd=str(source.parent),
                               kernel_name="python3", progress_bar=sys.stderr.isatty())
    print(f"{args.paper} at {args.scale} scale: {time.perf_counter() - tick:.0f} s -> {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
