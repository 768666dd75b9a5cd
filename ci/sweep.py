"""Seed sweep of one chapter on a cluster engine: ``make sweep PAPER=<slug> SCALE=full LAUNCHER=slurm|local``.

Submits one job per (arm, seed) through submitit, each training exactly one run into the chapter's resumable run
directory (``lib/repro/sweep.py``: the job executes the chapter as a script in one-run mode), then executes it
normally (``ci/run_chapter.py``): it finds every finished run and only reports, so the results file is the one
``make chapter`` writes from the same runs.

Stages: the sweep executes the notebook in planning mode (nothing is trained) to list the unfinished runs of
its first ``Chapter.run`` call, submits them, waits, and plans again: the regime-gate runs (twice the epochs),
which need the main runs, form the second stage; a chapter whose later ``Chapter.run`` depends on an earlier
one gets a stage for each. A stage whose jobs failed stops the sweep with each failure and its log; finished
runs are kept, and running the same command again resumes (finished runs are never planned again).

``--launcher local``: submitit's LocalExecutor on this machine, ``--parallel`` jobs at a time (default 1);
each run gets the threads a plain execution here would give it, so the numbers are the plain execution's.
``--launcher slurm``: one SLURM job array per stage (``--partition``, ``--gpus-per-job``, ``--cpus-per-task``,
``--time``, ``--mem-gb``, ``--array-parallelism``); submit from a login node and keep this process alive until the
sweep ends (e.g. in tmux). ``--gpus-per-job N`` > 1 trains a run data-parallel over N GPUs of a node through
``accelerate launch`` (``make chapter PROCS=N``'s path); ``--nodes-per-job M`` > 1 spreads it over M nodes
(one task per node, node 0 as the rendezvous). Submitit's logs: ``<runs>/sweeps/<slug>/<scale>/<job id>_*``.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's lib, in this process and (PYTHONPATH below) in every job
sys.path.insert(1, str(ROOT / "ci"))

from run_chapter import SCALES, parse_value   # noqa: E402

from lib.repro import sweep   # noqa: E402
from lib.repro.store import resolve_path_variables   # noqa: E402

LAUNCHERS = ("local", "slurm")
DEFAULT_TIME = "24:00:00"


def parse_time(text: str) -> int:
    """A time limit in whole minutes (rounded up) from SLURM's forms: ``MINUTES``, ``MINUTES:SECONDS``,
    ``HOURS:MINUTES:SECONDS``, ``DAYS-HOURS``, ``DAYS-HOURS:MINUTES``, ``DAYS-HOURS:MINUTES:SECONDS``."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){0,2})", str(text).strip())
    if not match:
        raise ValueError(f"time limit {text!r} is not MINUTES, HH:MM:SS or D-HH:MM:SS")
    parts = [int(x) for x in match.group(2).split(":")]
    if match.group(1) is not None:
        hours, minutes, seconds = (parts + [0, 0])[:3]
        seconds += 60 * (minutes + 60 * (hours + 24 * int(match.group(1))))
    else:
        seconds = {1: lambda m: 60 * m, 2: lambda m, s: 60 * m + s,
                   3: lambda h, m, s: 3600 * h + 60 * m + s}[len(parts)](*parts)
    if seconds < 60:
        raise ValueError(f"time limit {text!r} is shorter than one minute")
    return -(-seconds // 60)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paper", nargs="?", default="")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--launcher", default="local", help=f"one of {', '.join(LAUNCHERS)}")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="chapter parameter for every execution of the sweep, e.g. -p seeds 10")
    slurm = parser.add_argument_group("SLURM (--launcher slurm)")
    slurm.add_argument("--partition", default=None, help="partition (default: the cluster's default)")
    slurm.add_argument("--gpus-per-job", type=int, default=None,
                       help="GPUs per job and node (slurm default 1; local default 1 if CUDA is visible, else 0); "
                            "N > 1 trains data-parallel through accelerate launch")
    slurm.add_argument("--nodes-per-job", type=int, default=1, help="nodes per job (multi-node accelerate launch)")
    slurm.add_argument("--cpus-per-task", type=int, default=8, help="CPUs per job and node (default 8)")
    slurm.add_argument("--time", default=DEFAULT_TIME, help=f"time limit per job (default {DEFAULT_TIME}; "
                                                            "MINUTES, HH:MM:SS or D-HH:MM:SS)")
    slurm.add_argument("--mem-gb", type=float, default=32, help="memory per node in GB (default 32)")
    slurm.add_argument("--array-parallelism", type=int, default=64,
                       help="jobs of an array running at once (default 64)")
    parser.add_argument("--parallel", type=int, default=1, help="local: jobs running at once (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="plan the next stage, list its jobs, submit nothing")
    return parser


def check_arguments(args, parser) -> None:
    """Every input error before any work, naming what is accepted."""
    chapters = sorted(p.parent.name for p in (ROOT / "papers").glob("*/*.ipynb") if p.stem == p.parent.name)
    if args.paper not in chapters:
        parser.error(f"unknown chapter {args.paper!r}; accepted: {', '.join(chapters)}")
    if args.scale not in SCALES:
        parser.error(f"unknown scale {args.scale!r}; accepted: {', '.join(SCALES)}")
    if args.launcher not in LAUNCHERS:
        parser.error(f"unknown launcher {args.launcher!r}; accepted: {', '.join(LAUNCHERS)}")
    for name in ("nodes_per_job", "cpus_per_task", "array_parallelism", "parallel"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.gpus_per_job is not None and args.gpus_per_job < 0:
        parser.error(f"--gpus-per-job must be 0 or more, got {args.gpus_per_job}")
    if args.mem_gb <= 0:
        parser.error(f"--mem-gb must be positive, got {args.mem_gb}")
    try:
        args.timeout_min = parse_time(args.time)
    except ValueError as error:
        parser.error(str(error))
    if args.launcher == "local" and args.nodes_per_job > 1:
        parser.error("the local launcher runs on this machine only: --nodes-per-job must be 1")
    defaults = parser.parse_args([args.paper])   # flags given for the other launcher would be ignored silently
    only = {"slurm": ("partition", "cpus_per_task", "mem_gb", "array_parallelism"), "local": ("parallel",)}
    for launcher, names in only.items():
        given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) != getattr(defaults, n)]
        if given and args.launcher != launcher:
            parser.error(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --launcher {launcher} only; "
                         f"this sweep uses --launcher {args.launcher}")
    missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
    if args.launcher == "slurm" and not args.dry_run and missing:
        parser.error(f"the slurm launcher needs {' and '.join(missing)} on the PATH: run the sweep on a SLURM login "
                     f"node (or --launcher local on this machine)")
    if args.gpus_per_job is None:
        if args.launcher == "slurm":
            args.gpus_per_job = 1
        else:
            import torch

            args.gpus_per_job = 1 if torch.cuda.is_available() else 0
    if args.launcher == "local":
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if visible and args.gpus_per_job == 0:   # the run would train on the CPU under a GPU run's directory
            parser.error(f"--gpus-per-job 0 on a machine with {visible} GPU(s): a plain execution here trains on a "
                         "GPU; give 1 or more (at most the GPUs visible)")
        if args.gpus_per_job > max(visible, 1) or (args.gpus_per_job > 0 and not visible):
            parser.error(f"--gpus-per-job {args.gpus_per_job}: this machine has {visible} GPU(s) visible")


def make_executor(args, folder: pathlib.Path):
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=args.launcher)
    common = {"timeout_min": args.timeout_min, "gpus_per_node": args.gpus_per_job, "tasks_per_node": 1}
    if args.launcher == "slurm":
        executor.update_parameters(**common, name=f"sweep-{args.paper}-{args.scale}", nodes=args.nodes_per_job,
                                   cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb,
                                   slurm_partition=args.partition, slurm_array_parallelism=args.array_parallelism)
    else:
        executor.update_parameters(**common)
    return executor


def jobs_of(plan: sweep.Plan, args, parameters: dict) -> list[sweep.Job]:
    # the local launcher pins a single-process run's threads to a plain execution's here; a data-parallel job
    # (accelerate launch) divides the CPUs among its ranks itself, and a cluster job uses its allocation's CPUs
    single = max(1, args.gpus_per_job) * args.nodes_per_job == 1
    threads = plan.threads if args.launcher == "local" and single else None
    env = sweep.forwarded_env()
    return [sweep.Job(slug=args.paper, arm=j["arm"], seed=j["seed"], run_dir=j["run_dir"], parameters=parameters,
                      section=plan.section, threads=threads, procs=max(1, args.gpus_per_job), nodes=args.nodes_per_job,
                      env=env) for j in plan.jobs]


def run_stage(executor, jobs: list[sweep.Job], args) -> list[tuple[sweep.Job, str]]:
    """Run one stage's jobs to their end; returns the failed ones with their reasons."""
    import submitit

    failed, submitted = [], []
    try:
        if args.launcher == "slurm":
            submitted = list(zip(executor.map_array(sweep.TrainJob(), jobs), jobs))
            print(f"  submitted job array {submitted[0][0].job_id.split('_')[0]} ({len(jobs)} jobs)", flush=True)
            by_job = {id(j): spec for j, spec in submitted}
            for job in submitit.helpers.as_completed([j for j, _ in submitted]):
                failed += _report(job, by_job[id(job)])
        else:   # a rolling window of --parallel jobs on this machine
            pending, running = list(jobs), []
            while pending or running:
                while pending and len(running) < args.parallel:
                    spec = pending.pop(0)
                    running.append((executor.submit(sweep.TrainJob(), spec), spec))
                    submitted.append(running[-1])
                for pair in [p for p in running if p[0].done()]:
                    running.remove(pair)
                    failed += _report(*pair)
                time.sleep(0.2)
    except BaseException:
        active = [job for job, _ in submitted if not job.done()]
        if args.launcher == "local":
            stop_local(active)
            print(f"the sweep was interrupted; {len(active)} running job(s) stopped (a run keeps its last checkpoint). "
                  f"Running the same command again resumes: finished runs are skipped", file=sys.stderr)
        elif active:
            print(f"the sweep was interrupted; {len(active)} SLURM job(s) keep running (scancel "
                  f"{active[0].job_id.split('_')[0]} stops them). Running the same command again resumes: finished "
                  f"runs are skipped", file=sys.stderr)
        raise
    return failed


def stop_local(jobs, grace_s: float = 3.0) -> None:
    """Stop this machine's running jobs: submitit's cancel (SIGINT to the job's controller, which stops its task),
    then SIGKILL to a controller still running after ``grace_s`` (e.g. SIGINT ignored, as in a background shell
    job); the task dies with its controller (``train_job``), its run keeps its last checkpoint."""
    for job in jobs:
        job.cancel(check=False)
    deadline = time.monotonic() + grace_s
    while any(not job.done() for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for job in jobs:
        if not job.done():
            try:
                os.kill(int(job.job_id), signal.SIGKILL)   # a local job's id is its controller's pid
            except (ProcessLookupError, ValueError):
                pass


def _report(job, spec: sweep.Job) -> list[tuple[sweep.Job, str]]:
    """Print one finished job's outcome; returns [(spec, reason)] when it failed (its error and its log)."""
    try:
        # a multi-node job has one task per node: its result is the first (rank 0) task's
        record = job.results()[0] if spec.nodes > 1 else job.result()
    except Exception as error:   # submitit's FailedJobError carries the job's traceback
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else repr(error))
        reason = f"{reason} (log: {job.paths.stderr})"
        print(f"  {spec.label}: job {job.job_id} FAILED: {reason}", flush=True)
        return [(spec, reason)]
    metric = record["metrics"].get("test_acc")
    print(f"  {spec.label}: {record['status']}" + (f", test_acc {metric:.2f}" if metric is not None else ""),
          flush=True)
    return []


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_path_variables(base=os.getcwd())
    check_arguments(args, parser)
    parameters = {"scale": args.scale, **{name: parse_value(value) for name, value in args.parameter}}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    runs_base = pathlib.Path(os.environ.get("REPRO_RUNS_DIR") or ROOT / "runs")
    folder = runs_base / "sweeps" / args.paper / args.scale
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return sweep_chapter(args, parameters, folder)
    except sweep.SweepError as error:
        print(f"sweep of {args.paper} at {args.scale} scale stopped: {error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def sweep_chapter(args, parameters: dict, folder: pathlib.Path) -> int:
    tick, trained, stage, seen = time.perf_counter(), 0, 0, set()
    executor = None
    while True:
        print(f"planning: executing {args.paper} up to its first unfinished runs (no training)", flush=True)
        plan = sweep.plan(args.paper, parameters, sweep.forwarded_env())
        if plan.done:
            break
        stage += 1
        jobs = jobs_of(plan, args, parameters)
        again = [job.label for job in jobs if job.run_dir in seen]
        if again:
            raise sweep.SweepError(f"run(s) planned again after their job succeeded: {', '.join(again)}")
        print(f"stage {stage} ({plan.section}): {len(jobs)} job(s) on {args.launcher}"
              + (f", {plan.threads} thread(s) per run" if jobs[0].threads else ""), flush=True)
        if args.dry_run:
            for job in jobs:
                print(f"  {job.label} -> {job.run_dir}")
            return 0
        executor = executor or make_executor(args, folder)
        failed = run_stage(executor, jobs, args)
        if failed:
            print(f"{len(failed)} of {len(jobs)} job(s) of stage {stage} failed; the finished runs are kept, run the "
                  f"same command again to resume:", file=sys.stderr)
            for job, reason in failed:
                print(f"  {job.label}: {reason}", file=sys.stderr)
            return 1
        seen.update(job.run_dir for job in jobs)
        trained += len(jobs)
    print(f"{args.paper}: {trained} run(s) trained in {stage} stage(s), {time.perf_counter() - tick:.0f} s; every "
          f"run is finished" + ("" if args.dry_run else ", executing the chapter to report"), flush=True)
    if args.dry_run:
        return 0
    command = [sys.executable, str(ROOT / "ci" / "run_chapter.py"), args.paper, "--scale", args.scale]
    for name, value in args.parameter:
        command += ["-p", name, value]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
