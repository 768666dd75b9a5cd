"""A chapter's experiment: validated parameters, arms × seeds with resume, verdicts, the results file.

A notebook uses it in four steps::

    chapter = Chapter("coord-attention")
    P = chapter.parameters(globals(), before=_names_before_parameters)   # scale preset + overrides
    runs = chapter.run(arms, P.seed_list, run_one, P)                    # resumable, paired seeds
    report = chapter.report(P, runs, costs=..., data=...)                # verdicts + results/<scale>.json
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import pathlib
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import yaml
from filelock import FileLock, Timeout

from . import sweep
from .claims import METHOD, SCALES, judge_chapter, load_claims, measure_gates
from .reuse import reusable_records
from .store import (REPO_ROOT, check_writable, env_path, environment, git_state, hash_files, lib_files,
                    resolve_path_variables, write_json_atomic)

FIXED_PARAMETERS = ("scale", "seeds", "threads")

# Constraints every chapter gets for the parameters its presets define; ``constraints:`` in a chapter's
# scales.yaml adds or overrides rules (``check_constraint`` lists the rule names).
DEFAULT_CONSTRAINTS = {
    "epochs": {"min": 1}, "batch_size": {"min": 1}, "lr": {"above": 0}, "weight_decay": {"min": 0},
    "warmup_epochs": {"min": 0},
    "precision": {"choices": ["fp32", "bf16", "fp16"]},   # lib.train.PRECISIONS (tests/test_presets.py keeps them equal)
    "channels_last": {"choices": [True, False]},
}


_RUN_ONE: Callable | None = None


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(n_seeds: int) -> int:
    """Runs trained at once by default: on a CPU with several seeds, one process per CPU core pair is
    slower than one process per core for the book's small networks (``bench/results.json``,
    ``parallel_seeds``), so as many processes as CPUs, at most one per seed; on a GPU one."""
    import torch

    if torch.cuda.is_available() or n_seeds < 2:
        return 1
    return max(1, min(_cpus(), n_seeds))


def _default_threads() -> int:
    from ..train import default_threads

    return default_threads()


def _init_worker(threads: int) -> None:
    import torch

    os.environ["REPRO_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _execute(run_one: Callable, arm: str, seed: int, run_dir: pathlib.Path) -> dict:
    """Train one (arm, seed) into ``run_dir`` under its lock; a run another process finished meanwhile is read back."""
    main = is_main_process()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / ".run.lock")) if main else None
    if lock is not None:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"{arm} seed {seed}: another process is running {run_dir}; waiting for it", file=sys.stderr,
                  flush=True)
            lock.acquire()
    try:
        done = run_dir / "record.json"
        if done.is_file():
            return read_record(done)
        tick = time.perf_counter()
        try:
            record = {"arm": arm, "seed": seed, "status": "ok", **run_one(arm, seed, run_dir)}
        except FloatingPointError as error:   # NonFiniteLossError, DivergenceError: the run failed, the chapter goes on
            record = {"arm": arm, "seed": seed, "status": "failed", "error": str(error),
                      "error_type": type(error).__name__, "traceback": traceback.format_exc(limit=3)}
        record["wall_time_s"] = record.get("wall_time_s", time.perf_counter() - tick)
        record["environment"] = environment()
        if main:
            write_json_atomic(done, record)
        return record
    finally:
        if lock is not None:
            lock.release()


def _execute_selected(run_one: Callable, job: tuple) -> dict:
    """A sweep job's one run (``lib/repro/sweep.py``), at the thread count its launcher pinned (``REPRO_THREADS``,
    set as a forked worker's is) or, without one, as the serial path trains it."""
    if os.environ.get("REPRO_THREADS"):
        _init_worker(int(os.environ["REPRO_THREADS"]))
    return _execute(run_one, *job)


def read_record(path: pathlib.Path) -> dict:
    """A finished run's ``record.json``; an unreadable one is an error naming the file and the remedy."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RuntimeError(f"the run record {path} cannot be read ({error}); delete it (rm '{path}') and execute "
                           f"the chapter again to re-run that run from its checkpoint") from error
    if not isinstance(record, dict) or not {"arm", "seed", "status"} <= set(record):
        raise RuntimeError(f"the run record {path} lacks arm, seed or status; delete it (rm '{path}') and execute "
                           f"the chapter again")
    return record


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``).

    Used by the forked training workers (a killed kernel takes its workers with it) and by a notebook kernel
    started by papermill (a killed papermill takes the kernel). Returns False where prctl is unavailable.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(sig), 0, 0, 0) != 0:   # PR_SET_PDEATHSIG = 1
            return False
    except (OSError, AttributeError):
        return False
    return True


def _worker_main(job: tuple, threads: int, parent: int, conn) -> None:
    """Body of one forked worker: one run, its record sent back through ``conn``."""
    die_with_parent()
    if os.getppid() != parent:   # the parent died before prctl took effect
        os._exit(1)
    try:
        _init_worker(threads)
        conn.send(_execute(_RUN_ONE, *job))
    except BaseException as error:   # a bug in run_one: report it to the parent, which re-raises it
        conn.send({"__error__": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})
    finally:
        conn.close()


class WorkerError(RuntimeError):
    """A forked training worker raised an error other than a failed run, or was killed."""


def _run_parallel(jobs: list[tuple], workers: int, threads: int, finish: Callable[[dict], None]) -> None:
    """Run ``jobs`` in at most ``workers`` forked processes at a time, one job per process (a fresh process per
    run). Each worker dies with this process (``die_with_parent``); a worker that dies or raises stops the others
    and raises WorkerError naming the run (finished runs are kept; executing again resumes the rest)."""
    context = multiprocessing.get_context("fork")
    pending, running = list(jobs), {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_worker_main, args=(job, threads, os.getpid(), send), daemon=True)
                process.start()
                send.close()
                running[process.sentinel] = (process, receive, job)
            ready = multiprocessing.connection.wait([r for _, r, _ in running.values()] + list(running))
            for key in list(running):
                process, receive, job = running[key]
                if receive not in ready and key not in ready:
                    continue
                try:
                    record = receive.recv() if receive.poll() else None
                except EOFError:
                    record = None
                if record is None and process.is_alive():
                    continue
                process.join()
                receive.close()
                del running[key]
                arm, seed, run_dir = job
                if record is None:
                    code = process.exitcode
                    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with {code}"
                    raise WorkerError(f"the worker training {arm} seed {seed} {how} without a result; its "
                                      f"checkpoint in {run_dir} is kept, execute the chapter again to resume")
                if "__error__" in record:
                    raise WorkerError(f"{arm} seed {seed}: {record['__error__']}\n{record['traceback']}")
                finish(record)
    finally:
        for process, receive, _ in running.values():
            process.kill()
            process.join()
            receive.close()


def _reuse_summary(reused: list[dict]) -> dict | None:
    """Which runs a re-judging execution took from a committed results file, and from which commit."""
    if not reused:
        return None
    return {"from": reused[0]["from"], "runs": [{"arm": r["arm"], "seed": r["seed"]} for r in reused]}


def annotate_verdicts(verdicts: list[dict], claims: list, runs: list[dict], scale: str) -> list[dict]:
    """Say in each statistical verdict's summary how many seeds it rests on and which failed (with the reason),
    and mark a claim whose arms were not run at all as not tested, naming those arms (``failed_seeds`` and
    ``seeds_used`` are added to the verdict)."""
    arms_run = {r["arm"] for r in runs}
    for verdict, claim in zip(verdicts, claims):
        if not getattr(claim, "testable", claim.kind == "statistical") or scale not in claim.scales:
            continue   # costs, constructions and claims judged at another scale rest on no seeds
        missing = [a for a in claim.arms if a not in arms_run]
        if missing:
            verdict["verdict"] = "not-tested-at-this-scale"
            verdict["summary"] = (f"arm(s) {', '.join(missing)} were not run in this execution (arms run: "
                                  f"{', '.join(sorted(arms_run)) or 'none'}); the claim compares "
                                  f"{', '.join(claim.arms)}")
            failed_any = [r for r in runs if r.get("status", "ok") != "ok"]
            if failed_any:   # e.g. arms derived from runs that failed
                verdict["summary"] += f"; {len(failed_any)} run(s) failed: " + "; ".join(
                    f"{r['arm']} seed {r['seed']}: {r.get('error', 'failed')}" for r in failed_any)
            verdict.pop("stats", None)
            continue
        failed = {a: [r for r in runs if r["arm"] == a and r.get("status", "ok") != "ok"] for a in claim.arms}
        used = {a: sum(1 for r in runs if r["arm"] == a and r.get("status", "ok") == "ok") for a in claim.arms}
        verdict["seeds_used"] = used
        verdict["failed_seeds"] = {a: [r["seed"] for r in rs] for a, rs in failed.items()}
        n_failed = sum(len(rs) for rs in failed.values())
        if n_failed:
            total = {a: used[a] + len(failed[a]) for a in claim.arms}
            reasons = "; ".join(f"{r['arm']} seed {r['seed']}: {r.get('error', 'failed')}"
                                for rs in failed.values() for r in rs)
            counts = ", ".join(f"{a} {used[a]} of {total[a]}" for a in claim.arms)
            if str(verdict.get("summary", "")).startswith("too few successful seeds"):
                verdict["summary"] = f"too few successful seeds ({counts}); {n_failed} run(s) failed: {reasons}"
            else:
                verdict["summary"] += f"; seeds used: {counts}, {n_failed} run(s) failed: {reasons}"
    return verdicts


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a multi-process launch (torchrun / accelerate launch)."""
    return int(os.environ.get("RANK", "0")) == 0


class ParameterError(ValueError):
    """A chapter parameter (papermill ``-p``) is unknown or has a bad value."""


@dataclass
class Parameters:
    """The resolved parameters of one execution: the scale's preset with the overrides applied."""

    scale: str
    seeds: int
    threads: int | None
    values: dict
    overrides: dict = field(default_factory=dict)

    def __getitem__(self, key):
        return self.values[key]

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds))

    def as_dict(self) -> dict:
        return {"scale": self.scale, "seeds": self.seeds, "threads": self.threads, **self.values,
                "overrides": self.overrides}


def _check_type(name: str, value, preset):
    if preset is None or value is None:
        return value
    given = value
    if isinstance(preset, bool) or isinstance(value, bool):
        ok = isinstance(preset, bool) and isinstance(value, bool)
    elif isinstance(preset, (int, float)):
        ok = isinstance(value, (int, float))
        if ok and isinstance(preset, int) and not isinstance(value, int):
            ok = float(value).is_integer()
            value = int(value) if ok else value
    else:
        ok = isinstance(value, type(preset))
    if not ok:
        whole = isinstance(preset, int) and not isinstance(preset, bool)
        expected = "a whole number" if whole else type(preset).__name__
        raise ParameterError(f"parameter {name}={given!r} has type {type(given).__name__}; "
                             f"expected {expected} like the preset value {preset!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ParameterError(f"parameter {name}={value!r} must not be negative")
    return value


RULES = ("min", "max", "above", "below", "congruent", "choices", "each", "length", "min_length")


def check_constraint(name: str, value, rule: dict) -> None:
    """Check ``value`` against one declarative ``rule`` (scales.yaml ``constraints:``); ParameterError names the
    value and what is accepted.

    Rules: ``min`` / ``max`` (inclusive), ``above`` / ``below`` (exclusive) and ``congruent: {modulus, remainder}``
    (e.g. a ResNet depth 6n + 2) for numbers; ``choices`` (a scalar
    must be one of them; a list must be a non-empty list of distinct choices); ``each`` (a rule for every
    element of a list); ``length`` / ``min_length`` (lists; lists must be non-empty unless ``min_length: 0``).
    """
    unknown = sorted(set(rule) - set(RULES))
    if unknown:
        raise ParameterError(f"constraint of {name} has unknown rule(s) {', '.join(unknown)}; "
                             f"accepted: {', '.join(RULES)}")
    if isinstance(value, (list, tuple)):
        if "length" in rule and len(value) != rule["length"]:
            raise ParameterError(f"parameter {name}={value!r} must have {rule['length']} elements, got {len(value)}")
        if len(value) < rule.get("min_length", 1):
            raise ParameterError(f"parameter {name}={value!r} must have at least {rule.get('min_length', 1)} "
                                 f"element(s)")
        if "choices" in rule:
            bad = [v for v in value if v not in rule["choices"]]
            if bad:
                raise ParameterError(f"parameter {name}={value!r}: unknown value(s) {', '.join(map(repr, bad))}; "
                                     f"accepted: {', '.join(map(str, rule['choices']))}")
            if len(set(map(repr, value))) != len(value):
                raise ParameterError(f"parameter {name}={value!r} lists a value twice")
        for i, item in enumerate(value):
            if "each" in rule:
                check_constraint(f"{name}[{i}]", item, rule["each"])
        return
    if "choices" in rule and value not in rule["choices"]:
        raise ParameterError(f"parameter {name}={value!r} is not accepted; accepted: "
                             f"{', '.join(map(str, rule['choices']))}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bounds = [("min", value >= rule.get("min", value), "at least"),
                  ("max", value <= rule.get("max", value), "at most"),
                  ("above", "above" not in rule or value > rule["above"], "above"),
                  ("below", "below" not in rule or value < rule["below"], "below")]
        for key, ok, words in bounds:
            if key in rule and not ok:
                accepted = ", ".join(f"{w} {rule[k]}" for k, _, w in bounds if k in rule)
                raise ParameterError(f"parameter {name}={value!r} is out of range; accepted: {accepted}")
        if "congruent" in rule:
            m, r = rule["congruent"]["modulus"], rule["congruent"]["remainder"]
            if value % m != r:
                raise ParameterError(f"parameter {name}={value!r} is not accepted; accepted: {m}n + {r} "
                                     f"({', '.join(str(m * n + r) for n in range(1, 5))}, ...)")


def resolve_parameters(presets: dict, given: dict, constraints: dict | None = None) -> Parameters:
    """Apply ``given`` (name → value from the notebook's parameters cell and papermill) to the presets.

    ``scale`` picks the preset; ``seeds``/``threads`` None mean the preset / all available CPUs; every
    other name must be a key of the preset. Unknown names and bad values raise ParameterError naming
    the value and the accepted ones. Every resolved value is checked against ``DEFAULT_CONSTRAINTS`` and the
    chapter's ``constraints`` (``check_constraint``).
    """
    scale = given.get("scale", "reduced")
    if scale not in presets:
        raise ParameterError(f"unknown scale {scale!r}; accepted: {', '.join(s for s in SCALES if s in presets)}")
    preset = dict(presets[scale])
    accepted = set(FIXED_PARAMETERS) | set(preset)
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(accepted))}")
    seeds = given.get("seeds")
    seeds = preset.pop("seeds") if seeds is None else seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ParameterError(f"seeds must be a positive integer, got {seeds!r}")
    preset.pop("seeds", None)
    threads = given.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ParameterError(f"threads must be a positive integer or None, got {threads!r}")
    overrides = {}
    for name, value in given.items():
        if name in FIXED_PARAMETERS or value is None:
            continue
        value = _check_type(name, value, preset[name])
        if value != preset[name]:
            overrides[name] = value
        preset[name] = value
    rules = {**{k: v for k, v in DEFAULT_CONSTRAINTS.items() if k in preset}, **(constraints or {})}
    for name, rule in rules.items():
        if name in preset and preset[name] is not None:
            check_constraint(name, preset[name], rule)
    return Parameters(scale, seeds, threads, preset, overrides)


def injected_names(namespace: dict, before: set) -> dict:
    """Names defined since ``before`` was taken (the parameters cell and papermill's injected cell)."""
    return {k: v for k, v in namespace.items()
            if k not in before and not k.startswith("_") and not callable(v) and not hasattr(v, "__file__")}


class Chapter:
    """Paths, presets, claims and the run/report cycle of ``papers/<slug>/``."""

    def __init__(self, slug: str, root: pathlib.Path = REPO_ROOT):
        self.slug = slug
        self.dir = root / "papers" / slug
        if not self.dir.is_dir():
            chapters = sorted(p.name for p in (root / "papers").iterdir() if p.is_dir())
            raise ValueError(f"unknown chapter {slug!r}; accepted: {', '.join(chapters)}")
        resolve_path_variables()   # relative REPRO_* paths: the caller's directory, fixed for every child process
        self.presets = yaml.safe_load((self.dir / "scales.yaml").read_text())
        self.constraints = self.presets.pop("constraints", None) or {}
        self.header, self.claims = load_claims(self.dir / "claims.yaml")
        self.failed_runs: dict[tuple[int, str], dict] = {}   # failed records of every ``run`` call, for ``report``
        self.reused_runs: list[dict] = []   # runs taken from a committed results file instead of trained (reuse.py)
        self.gate_parameters: dict | None = None   # parameters of the regime-gate runs (``plateau_gates``)
        if "ipykernel" in sys.modules or "LOCAL_RANK" in os.environ:
            die_with_parent()   # a kernel whose papermill / nbval is killed, or a rank whose launcher is, stops

    def parameters(self, namespace: dict, before: set) -> Parameters:
        """The validated parameters (``resolve_parameters`` with this chapter's constraints); also checks, before
        any data is loaded or run trained, that the results and runs directories are writable."""
        params = resolve_parameters(self.presets, injected_names(namespace, before), self.constraints)
        if is_main_process():
            check_writable(self.results_path(params.scale).parent, "results")
            check_writable(self.runs_root(params).parents[1], "runs")
        return params

    def results_path(self, scale: str) -> pathlib.Path:
        """``papers/<slug>/results/<scale>.json``, or ``$REPRO_RESULTS_DIR/<slug>/<scale>.json`` (the nightly
        re-execution writes there so that the committed reference is never overwritten; the chapter is in the
        path so that chapters sharing the variable never overwrite each other)."""
        base = env_path("REPRO_RESULTS_DIR")
        return (base / self.slug if base else self.dir / "results") / f"{scale}.json"

    def code_key(self) -> str:
        """Hash of what determines a run's outcome besides its parameters: lib/ and the notebook's code."""
        notebook = self.dir / f"{self.slug}.ipynb"
        digest = hashlib.sha256(hash_files(lib_files()).encode())
        if notebook.is_file():
            cells = json.loads(notebook.read_text())["cells"]
            for cell in cells:
                tags = cell.get("metadata", {}).get("tags", [])
                if cell["cell_type"] == "code" and "parameters" not in tags and "injected-parameters" not in tags:
                    digest.update("".join(cell["source"]).encode())
        return digest.hexdigest()

    def runs_root(self, params: Parameters) -> pathlib.Path:
        key = hashlib.sha256(json.dumps({"values": params.values, "code": self.code_key()},
                                        sort_keys=True, default=str).encode()).hexdigest()[:12]
        base = env_path("REPRO_RUNS_DIR")
        return (base if base else REPO_ROOT / "runs") / self.slug / params.scale / key

    def run(self, arms: list[str], seeds: list[int], run_one: Callable[[str, int, pathlib.Path], dict],
            params: Parameters, *, workers: int | None = None, log: Callable[[str], None] | None = None,
            reuse_section: str = "runs") -> list[dict]:
        """Run every (seed, arm); return the records of the successful runs, ordered by seed then arm.

        A finished run's record is read back instead of re-run; an interrupted one resumes from its
        checkpoint (``run_one`` passes ``run_dir`` to ``fit``). A run that raises FloatingPointError
        (non-finite loss, divergence) is recorded as failed: it is printed with its reason, kept in
        ``failed_runs`` (``report`` stores it and counts it in the verdicts' summaries) and not returned, so
        the cells after ``run`` only ever see complete records. One process at a time trains a run directory
        (a file lock); a second waits and reads the finished record back. ``workers`` > 1 trains that many runs
        at once in forked processes, each with ``cpus // workers`` threads (``default_workers``: as many as the
        CPUs allow when several seeds run on a CPU; ``bench/`` measures why); workers die with this process.
        Jobs are queued seeds-outermost, so an interruption leaves complete pairs. In a seed sweep's planning or
        one-run execution (``lib/repro/sweep.py``) a call with unfinished runs lists them, or trains the selected
        one, and stops the execution.
        """
        root = self.runs_root(params)
        main = is_main_process()
        if main:
            root.mkdir(parents=True, exist_ok=True)
        workers = default_workers(len(seeds)) if workers is None else workers
        if params.threads is not None or not main or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            workers = 1   # explicit threads, or a data-parallel launch: one run at a time
        jobs, records = [], {}
        reusable, provenance = reusable_records(params.as_dict(), reuse_section)
        for seed in seeds:
            for arm in arms:
                done = root / arm / f"seed-{seed}" / "record.json"
                if done.is_file():
                    records[seed, arm] = read_record(done)
                elif (seed, arm) in reusable:   # re-judging on committed runs (lib/repro/reuse.py)
                    records[seed, arm] = reusable[seed, arm]
                    self.reused_runs.append({"arm": arm, "seed": seed, "from": provenance})
                else:
                    jobs.append((arm, seed, root / arm / f"seed-{seed}"))

        def finish(record: dict) -> None:
            records[record["seed"], record["arm"]] = record
            if not main:
                return
            metric = record.get("metrics", {}).get("test_acc")
            line = (f"{record['arm']} seed {record['seed']}: {record['status']}"
                    + (f", test_acc {metric:.2f}" if metric is not None else "") + f", {record['wall_time_s']:.0f} s")
            with open(root / "progress.log", "a") as handle:   # `tail -f` it to follow a long execution
                handle.write(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {line}\n")
            if log is not None:
                log(line)

        if sweep.mode():   # a sweep's planning or one-run execution (lib/repro/sweep.py)
            # the threads a fresh plain execution gives each run of this call (forked workers or one process)
            parallel = workers > 1
            threads = max(1, _cpus() // workers) if parallel else params.threads or _default_threads()
            every = [(arm, seed, root / arm / f"seed-{seed}") for seed in seeds for arm in arms]
            sweep.intercept_run(jobs, every, lambda job: finish(_execute_selected(run_one, job)), section=reuse_section,
                                threads=threads)
        if workers > 1 and jobs:   # even one job left (a resumed execution): the thread count of its siblings
            global _RUN_ONE
            _RUN_ONE = run_one   # inherited by the forked workers: no pickling of notebook closures
            _run_parallel(jobs, workers, max(1, _cpus() // workers), finish)
        else:
            for job in jobs:
                finish(_execute(run_one, *job))
        ordered = [records[seed, arm] for seed in seeds for arm in arms]
        failed = [r for r in ordered if r.get("status", "ok") != "ok"]
        for r in failed:
            self.failed_runs[r["seed"], r["arm"]] = r
        for r in ordered:
            if r.get("status", "ok") == "ok":
                self.failed_runs.pop((r["seed"], r["arm"]), None)
        if failed and main:
            print(f"{len(failed)} of {len(ordered)} runs failed and are left out of the statistics:")
            for r in failed:
                error = r.get("error", "no reason recorded")
                print(f"  {error}" if error.startswith(f"{r['arm']} seed {r['seed']}") else
                      f"  {r['arm']} seed {r['seed']}: {error}")
        return [r for r in ordered if r.get("status", "ok") == "ok"]

    def plateau_gates(self, runs: list[dict], run_one_doubled: Callable[[str, int, pathlib.Path], dict],
                      params: Parameters, *, epochs_key: str | dict[str, str] = "epochs",
                      log: Callable[[str], None] | None = None, workers: int | None = None,
                      borrowed: list[dict] | None = None) -> tuple[dict[str, dict], list[dict]]:
        """Measure every ``plateau`` regime gate of this chapter's claims: train each gate's arm at twice the
        preset's epochs (``run_one_doubled``, the chapter's ``run_one`` with the doubled budget) for the gate's
        number of seeds (at most the execution's), and compare with ``runs`` at the preset's epochs.

        Returns ({gate id: measurement}, the doubled runs); pass the first as ``extra={"gates": ...}`` to
        ``report`` (which judges the gated claims with it) and the second as ``extra={"gate_runs": ...}`` so the
        results file holds every number the gate used. The doubled runs live in their own run directories (the
        doubled epoch count is part of their key) and resume like any run. ``epochs_key`` names the parameter
        holding the preset's epochs; a chapter whose arms train for different parameters (a main and a low-data
        regime) passes ``{arm: key}`` for its gate arms, and every named key is doubled. ``borrowed``: doubled
        runs of another chapter whose runs at the preset's epochs this one has shown to be identical
        (``lib.repro.bench.same_control``, records from ``bench.borrow``); a gate arm found there for every seed
        the gate needs is not trained again.
        """
        from .claims import plateau_measurement

        specs, arms_run = {}, {r["arm"] for r in runs}
        for claim in self.claims:   # a gate on an arm this execution did not run stays unmeasured
            if claim.gate and claim.gate.get("kind") == "plateau" and claim.gate["arm"] in arms_run:
                specs.setdefault(claim.gate["id"], claim.gate)
        if not specs:
            return {}, []
        arms = sorted({spec["arm"] for spec in specs.values()})
        key_of = epochs_key if isinstance(epochs_key, dict) else {arm: epochs_key for arm in arms}
        missing = [arm for arm in arms if arm not in key_of]
        if missing:
            raise ValueError(f"plateau_gates: epochs_key names no epochs parameter for gate arm(s) "
                             f"{', '.join(missing)}; given for: {', '.join(sorted(key_of)) or 'none'}")
        doubled_values = {**params.values, **{key: 2 * params[key] for key in set(key_of.values())},
                          "regime_gate": "doubled epochs"}
        doubled_params = Parameters(params.scale, params.seeds, params.threads, doubled_values, params.overrides)
        seeds = params.seed_list[:max(spec["seeds"] for spec in specs.values())]
        theirs = {(r["arm"], r["seed"]): r for r in borrowed or [] if r.get("status", "ok") == "ok"}
        taken = [arm for arm in arms if all((arm, s) in theirs for s in seeds)]
        for arm in taken:
            for s in seeds:
                trained_epochs, wanted = len(theirs[arm, s].get("history", [])), 2 * params[key_of[arm]]
                if trained_epochs != wanted:
                    raise ValueError(f"plateau_gates: the borrowed {arm} seed {s} trained {trained_epochs} epochs, "
                                     f"the gate needs {wanted}")
        doubled = [theirs[arm, s] for arm in taken for s in seeds]
        to_train = [arm for arm in arms if arm not in taken]
        if to_train:
            doubled += self.run(to_train, seeds, run_one_doubled, doubled_params, log=log, workers=workers,
                                reuse_section="gate_runs")
        measured = {gid: plateau_measurement(runs, doubled, spec["arm"], spec["metric"], params[key_of[spec["arm"]]],
                                             2 * params[key_of[spec["arm"]]])
                    for gid, spec in specs.items()}
        self.gate_parameters = doubled_params.as_dict()
        return measured, doubled

    def all_runs(self, runs: list[dict]) -> list[dict]:
        """``runs`` plus the failed runs that ``run`` kept aside (each (arm, seed) once), for the results file."""
        seen = {(r["seed"], r["arm"]) for r in runs}
        return list(runs) + [r for key, r in self.failed_runs.items() if key not in seen]

    def report(self, params: Parameters, runs: list[dict], *, costs: dict | None = None, data: dict | None = None,
               started: float | None = None, extra: dict | None = None) -> dict:
        """Judge every claim and write ``results/<scale>.json`` atomically; return the results dict."""
        sweep.intercept_report()
        runs = self.all_runs(runs)
        gates = {**measure_gates(self.claims, runs, params.as_dict()), **((extra or {}).get("gates") or {})}
        verdicts = annotate_verdicts(judge_chapter(self.claims, params.scale, runs, costs, gates), self.claims,
                                     runs, params.scale)
        failed = [f"{r['arm']} seed {r['seed']}: {r['error']}" for r in runs if r["status"] != "ok"]
        results = {
            "chapter": self.slug,
            "scale": params.scale,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": git_state(["lib", f"papers/{self.slug}/claims.yaml", f"papers/{self.slug}/scales.yaml"]),
            "code_key": self.code_key(),
            "environment": environment(),
            "parameters": params.as_dict(),
            "data": data or {},
            "costs": costs or {},
            "claims": verdicts,
            "failed_runs": failed,
            "gate_measurements": gates,
            "reused_runs": _reuse_summary(self.reused_runs),
            "gate_parameters": self.gate_parameters,
            "runs": runs,
            "wall_time_s": (time.time() - started) if started else sum(r["wall_time_s"] for r in runs),
            **(extra or {}),
        }
        results["git_commit"] = results["git"]["commit"]
        reused = results["reused_runs"]
        results["judged"] = {"method": METHOD, "commit": results["git_commit"],
                             "runs_commit": reused["from"]["git_commit"] if reused else results["git_commit"]}
        if reused:
            results["judged"]["previous"] = reused["from"]["previous"]
        if is_main_process():
            write_json_atomic(self.results_path(params.scale), results)
        return results
