"""Execute one chapter with papermill: ``make chapter PAPER=<slug> SCALE=<scale> [PROCS=<n>]``.

* ``reduced`` executes the notebook in place: its outputs become the book's reference outputs and
  ``results/reduced.json`` is rewritten;
* ``smoke`` writes ``_build/chapters/<slug>.smoke.ipynb``; ``full`` writes ``runs/<slug>/full.ipynb``,
  leaving the committed reference untouched.

With ``PROCS=n > 1`` the parameterized notebook is converted to a script and started in n data-parallel
processes through ``accelerate launch``: on GPUs the standard multi-GPU launch, on CPUs the form that
really starts n processes (``--multi_gpu`` with gloo; ``--cpu --num_processes n`` silently starts one).
Every process trains its share of each global batch; only the main process writes checkpoints and
results, so ``results/<scale>.json`` is the product of such a run (the notebook's outputs are not).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

import nbformat
import papermill
from papermill.parameterize import parameterize_notebook

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
    if args.procs < 1:
        parser.error(f"PROCS must be a positive integer, got {args.procs}")
    source = ROOT / "papers" / args.paper / f"{args.paper}.ipynb"
    target = output_path(args.paper, args.scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    params = {"scale": args.scale}
    for name, value in args.parameter:
        params[name] = int(value) if value.lstrip("-").isdigit() else value
    tick = time.perf_counter()
    # a non-interactive MPLBACKEND (Agg, as CI sets it) overrides the kernel's inline backend, and the
    # executed notebook - the book's reference outputs - would lose every figure
    os.environ.pop("MPLBACKEND", None)
    if args.procs == 1:
        papermill.execute_notebook(str(source), str(target), parameters=params, cwd=str(source.parent),
                                   kernel_name="python3", progress_bar=sys.stderr.isatty())
    else:
        target = launch(source, params, args.procs)
    print(f"{args.paper} at {args.scale} scale: {time.perf_counter() - tick:.0f} s -> {target.relative_to(ROOT)}")
    return 0


def launch(source: pathlib.Path, params: dict, procs: int) -> pathlib.Path:
    """Run the parameterized chapter as a script in ``procs`` processes through ``accelerate launch``."""
    import torch

    nb = parameterize_notebook(nbformat.read(source, as_version=4), params)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))] + [""]
    script = ROOT / "_build" / "chapters" / f"{source.stem}.{params['scale']}.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("import matplotlib\nmatplotlib.use('Agg')\n" + "\n".join(lines))
    common = ["--num_processes", str(procs), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", *common, str(script)]
    env = dict(os.environ)
    if not torch.cuda.is_available():
        env.update(ACCELERATE_USE_CPU="true", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    subprocess.run(command, cwd=source.parent, env=env, check=True)
    return script


if __name__ == "__main__":
    sys.exit(main())
