"""Seed sweeps: one cluster job per (arm, seed), each training one run of a chapter into its run directory.

A chapter's runs are defined by its notebook (``run_one`` lives there), so a job cannot call them directly:
it executes the notebook, and one of two environment variables changes what ``Chapter.run`` (and the gate
runs of ``Chapter.plateau_gates``) does in that execution:

* ``REPRO_SWEEP_PLAN=<file>`` — planning. The first ``Chapter.run`` call that finds unfinished runs writes them
  to ``<file>`` (arm, seed, run directory, the thread count a plain execution would give each run) and stops
  the execution; nothing is trained. An execution that reaches ``Chapter.report`` writes an empty plan (every
  run is finished) and stops before writing the results file.
* ``REPRO_SWEEP_RUN=<run directory>`` — one job. ``Chapter.run`` trains that run only, under its file lock,
  and stops the execution right after; every other run is skipped (finished ones are read back as always).
  A finished selected run is not trained again. A call with unfinished runs that does not contain the
  selected one, or an execution that reaches ``report`` without meeting it, is an error (the job belongs to
  a later stage, or the code changed since planning, which changes the run directories' keys).

A job executes the notebook as a script (``chapter_script``: papermill's parameter injection, the code cells in
order, as ``make chapter PROCS=n`` does), in its own process, which has imported torch already. The execution
stops with ``SweepStop``, a ``SystemExit`` with status 0, so a rank of ``accelerate launch`` (a job on several
GPUs) exits cleanly too. A job therefore writes no results file and no notebook output.

A sweep (``ci/sweep.py``, ``make sweep``) proceeds in stages, one per ``Chapter.run`` call with unfinished
runs: plan, submit one job per planned run, wait, plan again. The second stage of a chapter with plateau
gates is its gate runs (twice the epochs), known only once the main runs are finished; a chapter whose second
``Chapter.run`` depends on the first (e.g. a bench check) gets a stage for each. When a planning execution
reaches the report, the chapter is executed normally and only reports.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field

from .store import REPO_ROOT, write_json_atomic

PLAN_ENV = "REPRO_SWEEP_PLAN"
RUN_ENV = "REPRO_SWEEP_RUN"
# the path variables a job must see as the planner saw them (absolute after resolve_path_variables)
FORWARDED = ("REPRO_DATA", "REPRO_CACHE", "REPRO_RUNS_DIR", "REPRO_RESULTS_DIR", "REPRO_REUSE_RESULTS")


class SweepStop(SystemExit):
    """Ends a planning or one-run execution on purpose (exit status 0); ``str`` says why."""

    def __init__(self, message: str):
        super().__init__(0)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SweepError(RuntimeError):
    """A sweep job or planning execution cannot do what it was asked (the message says why and what to do)."""


def mode() -> str | None:
    """``"plan"``, ``"run"`` or None (an ordinary execution), from the environment."""
    if os.environ.get(PLAN_ENV) and os.environ.get(RUN_ENV):
        raise SweepError(f"{PLAN_ENV} and {RUN_ENV} are both set; a sweep execution either plans or trains one run")
    return "plan" if os.environ.get(PLAN_ENV) else "run" if os.environ.get(RUN_ENV) else None


def _same(a, b) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def intercept_run(pending: list[tuple], every: list[tuple], train, *, section: str, threads: int) -> None:
    """Called by ``Chapter.run`` once it knows which of its runs (``every``: (arm, seed, run_dir)) are unfinished
    (``pending``). Returns in an ordinary execution, or when every run of the call is finished and this call is
    not the one selected; otherwise plans, or trains the selected run with ``train(job)``, and raises SweepStop."""
    current = mode()
    if current is None:
        return
    if current == "plan":
        if not pending:
            return
        jobs = [{"arm": arm, "seed": seed, "run_dir": str(run_dir)} for arm, seed, run_dir in pending]
        write_json_atomic(os.environ[PLAN_ENV], {"done": False, "section": section, "threads": threads, "jobs": jobs})
        raise SweepStop(f"planned {len(jobs)} unfinished run(s) ({section}); nothing trained")
    selected = os.environ[RUN_ENV]
    mine = [job for job in every if _same(job[2], selected)]
    if mine:
        arm, seed, _ = mine[0]
        if any(_same(job[2], selected) for job in pending):
            train(mine[0])
            raise SweepStop(f"{arm} seed {seed} trained into {selected}")
        raise SweepStop(f"{arm} seed {seed} was already finished in {selected}")
    if pending:
        listed = ", ".join(f"{arm} seed {seed}" for arm, seed, _ in pending[:4]) + (", ..." if len(pending) > 4 else "")
        raise SweepError(f"{RUN_ENV}={selected} is not a run of this stage, which still has {len(pending)} unfinished "
                         f"run(s) ({listed}); a sweep submits a stage's jobs only after the previous stage finished")


def intercept_report() -> None:
    """Called by ``Chapter.report`` first: a planning execution that gets here has nothing left to train (an
    empty plan); a one-run execution that gets here never met its run."""
    current = mode()
    if current == "plan":
        write_json_atomic(os.environ[PLAN_ENV], {"done": True, "section": None, "threads": None, "jobs": []})
        raise SweepStop("every run is finished; nothing to plan")
    if current == "run":
        raise SweepError(f"{RUN_ENV}={os.environ[RUN_ENV]} is not among the runs this execution trains: the chapter's "
                         f"code, lib/ or parameters changed since the sweep was planned (they key the run "
                         f"directories), or the directory is wrong; plan the sweep again")


# --- the job side: executions of a chapter notebook --------------------------------------------------------------

@dataclass
class Job:
    """One sweep job: train ``arm`` seed ``seed`` of chapter ``slug`` into ``run_dir``.

    ``parameters``: the papermill parameters of every execution of the sweep (``scale`` and the ``-p``
    overrides); ``threads``: REPRO_THREADS for the run (None: every CPU of the job); ``procs``: processes per
    node (``accelerate launch`` data parallel when ``procs * nodes`` > 1); ``env``: the REPRO_* paths."""

    slug: str
    arm: str
    seed: int
    run_dir: str
    parameters: dict
    section: str = "runs"
    threads: int | None = None
    procs: int = 1
    nodes: int = 1
    env: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        gate = " (gate)" if self.section == "gate_runs" else ""
        return f"{self.slug} {self.arm} seed {self.seed}{gate}"


@dataclass
class Plan:
    """The unfinished runs of the next stage (``jobs`` empty and ``done`` once every run is finished)."""

    done: bool
    section: str | None
    threads: int | None
    jobs: list[dict]


def forwarded_env() -> dict:
    """The REPRO_* path variables of this process, made absolute, for a job that may run elsewhere."""
    from .store import resolve_path_variables

    resolve_path_variables()
    return {name: os.environ[name] for name in FORWARDED if os.environ.get(name)}


@contextmanager
def _environment(updates: dict):
    saved = {name: os.environ.get(name) for name in updates}
    os.environ.update({k: str(v) for k, v in updates.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def notebook(slug: str) -> pathlib.Path:
    return REPO_ROOT / "papers" / slug / f"{slug}.ipynb"


def chapter_script(source: pathlib.Path, parameters: dict) -> str:
    """The notebook ``source`` as a Python script with papermill's parameter injection (code cells in order, shell
    and magic lines dropped, the Agg backend): what a job executes, and what ``make chapter PROCS=n`` launches."""
    import nbformat
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(nbformat.read(source, as_version=4), parameters)
    lines = ["import matplotlib", "matplotlib.use('Agg')"]
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))] + [""]
    return "\n".join(lines)


def _describe(slug: str, parameters: dict) -> str:
    return f"{slug} ({', '.join(f'{k}={v!r}' for k, v in parameters.items())})"


def execute(slug: str, parameters: dict, env: dict) -> str:
    """Execute the chapter as a script in a child process with ``env`` added to the environment (a planning
    execution). Returns the SweepStop message; raises SweepError with the chapter's error (a bad parameter, a
    missing data file: before any training) or when the script ran to its end without stopping."""
    with tempfile.TemporaryDirectory(prefix=f"sweep-{slug}-") as folder:
        script = pathlib.Path(folder) / f"{slug}.py"
        script.write_text(chapter_script(notebook(slug), parameters))
        stop = pathlib.Path(folder) / "stopped"
        wrapper = ("import runpy, sys\nfrom lib.repro.sweep import SweepStop\ntry:\n"
                   f"    runpy.run_path({str(script)!r}, run_name='__main__')\n"
                   f"except SweepStop as stop:\n    open({str(stop)!r}, 'w').write(str(stop))\n")
        path = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        with _environment({**env, "PYTHONPATH": path}):   # this checkout's lib, whose hash keys the run directories
            done = subprocess.run([sys.executable, "-c", wrapper], cwd=notebook(slug).parent,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            lines = [line for line in done.stderr.rstrip().splitlines() if line.strip()]
            sys.stderr.write("\n".join(lines[-15:]) + "\n")   # the chapter's traceback, then the summary
            raise SweepError(f"{_describe(slug, parameters)} failed while planning (nothing was trained): "
                             f"{lines[-1] if lines else f'exit status {done.returncode}'}")
        if not stop.is_file():
            raise SweepError(f"{_describe(slug, parameters)} ran to its end without meeting Chapter.run or "
                             f"Chapter.report in sweep mode ({', '.join(sorted(env))}); does it use lib.repro.Chapter?")
        return stop.read_text()


def execute_here(slug: str, parameters: dict, env: dict) -> str:
    """Execute the chapter as a script in this process (a job's process, which has imported torch already) with
    ``env`` added to the environment; returns the SweepStop message. The chapter's errors propagate."""
    code = compile(chapter_script(notebook(slug), parameters), str(notebook(slug)), "exec")
    cwd = os.getcwd()
    with _environment(env):
        os.chdir(notebook(slug).parent)
        try:
            exec(code, {"__name__": "__main__"})
        except SweepStop as stop:
            return str(stop)
        finally:
            os.chdir(cwd)
    raise SweepError(f"{_describe(slug, parameters)} ran to its end without meeting its run "
                     f"({RUN_ENV}={env.get(RUN_ENV)})")


def plan(slug: str, parameters: dict, env: dict | None = None) -> Plan:
    """Execute the chapter in planning mode: the unfinished runs of its next stage; nothing is trained."""
    with tempfile.TemporaryDirectory(prefix=f"sweep-plan-{slug}-") as folder:
        path = pathlib.Path(folder) / "plan.json"
        execute(slug, parameters, {**(env or {}), PLAN_ENV: str(path)})
        if not path.is_file():
            raise SweepError(f"the {slug} planning execution stopped without writing its plan")
        return Plan(**json.loads(path.read_text()))


def _cli_value(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _launch_command(job: Job) -> list[str]:
    """``ci/run_chapter.py`` with ``--procs``: ``accelerate launch`` of the chapter as a script on this node; with
    several nodes, this node's rank and the first node as the rendezvous (submitit's job environment)."""
    command = [sys.executable, str(REPO_ROOT / "ci" / "run_chapter.py"), job.slug, "--procs", str(job.procs)]
    for name, value in job.parameters.items():
        command += (["--scale", value] if name == "scale" else ["-p", name, _cli_value(value)])
    if job.nodes > 1:
        import submitit

        here = submitit.JobEnvironment()
        # one rendezvous port per array task, so two multi-node tasks sharing a node do not collide
        task = int(os.environ.get("SLURM_ARRAY_TASK_ID") or 0)
        command += ["--machines", str(job.nodes), "--machine-rank", str(here.node),
                    "--main-process-ip", here.hostnames[0], "--main-process-port", str(29500 + task % 1000)]
    return command


def train_job(job: Job | dict) -> dict:
    """The function a sweep submits: train one run (``Job``) by executing its chapter in one-run mode; returns a
    summary of the run's record. Raises SweepError when the run directory has no record afterwards."""
    from .chapter import die_with_parent, read_record

    if os.environ.get("SUBMITIT_EXECUTOR") == "local":
        die_with_parent()   # an interrupted local sweep kills the job's controller; the run stops with it
    job = Job(**job) if isinstance(job, dict) else job
    env = {**job.env, RUN_ENV: job.run_dir, **({"REPRO_THREADS": job.threads} if job.threads else {})}
    if job.procs * job.nodes > 1:
        with _environment(env):
            subprocess.run(_launch_command(job), check=True)
        if job.nodes > 1:
            import submitit

            if submitit.JobEnvironment().global_rank != 0:   # only rank 0 writes the record, maybe after this
                return {"arm": job.arm, "seed": job.seed, "status": "ok", "run_dir": job.run_dir, "metrics": {},
                        "wall_time_s": None, "rank": submitit.JobEnvironment().global_rank}
    else:
        execute_here(job.slug, job.parameters, env)
    done = pathlib.Path(job.run_dir) / "record.json"
    if not done.is_file():
        raise SweepError(f"{job.label}: the execution ended without {done}")
    record = read_record(done)
    return {"arm": record["arm"], "seed": record["seed"], "status": record["status"], "run_dir": job.run_dir,
            "metrics": record.get("metrics", {}), "wall_time_s": record.get("wall_time_s")}


class TrainJob:
    """What a sweep submits: ``train_job`` as a callable that submitit requeues when the job reaches its time limit
    or is preempted (SLURM signals it before the limit; at most ``slurm_max_num_timeout``, 3, times); the requeued
    job resumes the run from its last checkpoint in the run directory."""

    def __call__(self, job: Job | dict) -> dict:
        return train_job(job)

    def checkpoint(self, job: Job | dict):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, job)
