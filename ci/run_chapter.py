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
``--machines m --machine-rank r --main-process-ip HOST`` spreads the launch over m machines (``--procs``
per machine; run the same command on each, r = 0 .. m-1; HOST is machine 0): ``make sweep`` uses it for
jobs of several nodes.

The notebook is executed into a temporary file and moved over the target only when the execution
succeeds: a failed or interrupted run (an error, Ctrl-C, SIGTERM) leaves the committed notebook as it was
and keeps the partial output in ``_build/chapters/<slug>.<scale>.failed.ipynb``. ``-p NAME VALUE`` values
are parsed as papermill's ``-p`` does (True / False / None, integers, floats such as 0.05 or 1e-3) and as
YAML otherwise (lists: ``-p arms '[none, ca]'``); ``make chapter ARGS="-p epochs 2"`` forwards them.
Relative ``REPRO_*`` paths are made absolute against the directory the command was started in.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import time

import papermill
import yaml

from lib.repro.store import atomic_write, resolve_path_variables

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCALES = ("smoke", "reduced", "full")


def output_path(slug: str, scale: str) -> pathlib.Path:
    if scale == "reduced":
        return ROOT / "papers" / slug / f"{slug}.ipynb"
    if scale == "full":
        return ROOT / "runs" / slug / "full.ipynb"
    return ROOT / "_build" / "chapters" / f"{slug}.{scale}.ipynb"


def parse_value(text: str):
    """A ``-p`` value as papermill's ``-p`` reads it (True, False, None, int, float), else as YAML, else the text."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None and text.strip() not in ("null", "~") else value


def _terminate(signum, frame):
    raise SystemExit(128 + signum)   # SIGTERM unwinds like Ctrl-C: the kernel is shut down, temp files removed


def execute_atomically(source: pathlib.Path, target: pathlib.Path, params: dict) -> pathlib.Path:
    """Execute ``source`` with papermill into a temporary file; replace ``target`` with it only on success.

    On failure the partial output is kept as ``_build/chapters/<stem>.<scale>.failed.ipynb`` and ``target``
    is left untouched; the error propagates."""
    partial = ROOT / "_build" / "chapters" / f"{source.stem}.{params['scale']}.{os.getpid()}.partial.ipynb"
    failed = ROOT / "_build" / "chapters" / f"{source.stem}.{params['scale']}.failed.ipynb"
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(source), str(partial), parameters=params, cwd=str(source.parent),
                                   kernel_name="python3", progress_bar=sys.stderr.isatty())
    except BaseException:
        if partial.is_file():
            os.replace(partial, failed)
            print(f"the execution failed; {target.relative_to(ROOT)} is unchanged, the partial output is in "
                  f"{failed.relative_to(ROOT)}", file=sys.stderr)
        raise
    data = partial.read_bytes()
    atomic_write(target, lambda handle: handle.write(data))
    partial.unlink()
    return target


def main() -> int:
    chapters = sorted(p.parent.name for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paper", nargs="?", default="")
    parser.add_argument("--scale", default="reduced")
    parser.add_argument("--procs", type=int, default=1, help="data-parallel processes on this machine")
    parser.add_argument("--machines", type=int, default=1, help="machines of a multi-node launch")
    parser.add_argument("--machine-rank", type=int, default=0)
    parser.add_argument("--main-process-ip", default=None, help="address of machine 0 (multi-node)")
    parser.add_argument("--main-process-port", type=int, default=29500)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="extra papermill parameter, e.g. -p seeds 3")
    args = parser.parse_args()
    resolve_path_variables(base=os.getcwd())
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args, parser, chapters)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args, parser, chapters: list[str]) -> int:
    if args.paper not in chapters:
        parser.error(f"unknown chapter {args.paper!r}; accepted: {', '.join(chapters)}")
    if args.scale not in SCALES:
        parser.error(f"unknown scale {args.scale!r}; accepted: {', '.join(SCALES)}")
    if args.procs < 1:
        parser.error(f"PROCS must be a positive integer, got {args.procs}")
    if args.machines < 1 or not 0 <= args.machine_rank < args.machines:
        parser.error(f"--machines must be positive and --machine-rank in 0..machines-1, got {args.machines} and "
                     f"{args.machine_rank}")
    if args.machines > 1 and not args.main_process_ip:
        parser.error("a launch on several machines needs --main-process-ip (the address of machine 0)")
    source = ROOT / "papers" / args.paper / f"{args.paper}.ipynb"
    target = output_path(args.paper, args.scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    params = {"scale": args.scale}
    for name, value in args.parameter:
        params[name] = parse_value(value)
    tick = time.perf_counter()
    # a non-interactive MPLBACKEND (Agg, as CI sets it) overrides the kernel's inline backend, and the
    # executed notebook - the book's reference outputs - would lose every figure
    os.environ.pop("MPLBACKEND", None)
    if args.procs * args.machines == 1:
        execute_atomically(source, target, params)
    else:
        target = launch(source, params, args.procs, machines=args.machines, machine_rank=args.machine_rank,
                        main_process_ip=args.main_process_ip, main_process_port=args.main_process_port)
    print(f"{args.paper} at {args.scale} scale: {time.perf_counter() - tick:.0f} s -> {target.relative_to(ROOT)}")
    return 0


def launch(source: pathlib.Path, params: dict, procs: int, *, machines: int = 1, machine_rank: int = 0,
           main_process_ip: str | None = None, main_process_port: int = 29500) -> pathlib.Path:
    """Run the parameterized chapter as a script in ``procs`` processes (per machine) through ``accelerate
    launch``; on ``machines`` > 1 this machine is ``machine_rank`` of the launch and ``main_process_ip`` machine 0."""
    import torch

    from lib.repro.sweep import chapter_script

    script = ROOT / "_build" / "chapters" / f"{source.stem}.{params['scale']}.py"
    text = chapter_script(source, params)
    atomic_write(script, lambda handle: handle.write(text.encode()))   # concurrent sweep jobs write the same script
    common = ["--num_processes", str(procs * machines), "--num_machines", str(machines),
              "--mixed_precision", "no", "--dynamo_backend", "no"]
    if machines > 1:
        common += ["--machine_rank", str(machine_rank), "--main_process_ip", main_process_ip,
                   "--main_process_port", str(main_process_port)]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", *common, str(script)]
    env = dict(os.environ)
    if not torch.cuda.is_available():
        env.update(ACCELERATE_USE_CPU="true", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    from lib.repro.chapter import die_with_parent

    # the launcher dies with this process (and each rank, a Chapter, with the launcher): no orphaned ranks
    subprocess.run(command, cwd=source.parent, env=env, check=True, preexec_fn=die_with_parent)
    return script


if __name__ == "__main__":
    sys.exit(main())
