"""A chapter's experiment: validated parameters, arms × seeds with resume, verdicts, the results file.

A notebook uses it in four steps::

    chapter = Chapter("coord-attention")
    P = chapter.parameters(globals(), before=_names_before_parameters)   # scale preset + overrides
    runs = chapter.run(arms, P.seed_list, run_one, P)                    # resumable, paired seeds
    report = chapter.report(P, runs, costs=..., data=...)                # verdicts + results/<scale>.json
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pathlib
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import yaml

from .claims import SCALES, judge, load_claims
from .store import REPO_ROOT, environment, git_state, hash_files, lib_files, write_json_atomic

FIXED_PARAMETERS = ("scale", "seeds", "threads")


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


def _init_worker(threads: int) -> None:
    import torch

    os.environ["REPRO_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _execute(run_one: Callable, arm: str, seed: int, run_dir: pathlib.Path) -> dict:
    tick = time.perf_counter()
    try:
        record = {"arm": arm, "seed": seed, "status": "ok", **run_one(arm, seed, run_dir)}
    except FloatingPointError as error:
        record = {"arm": arm, "seed": seed, "status": "failed", "error": str(error),
                  "traceback": traceback.format_exc(limit=3)}
    record["wall_time_s"] = record.get("wall_time_s", time.perf_counter() - tick)
    record["environment"] = environment()
    return record


def _run_job(job: tuple) -> dict:
    return _execute(_RUN_ONE, *job)


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
    if isinstance(preset, bool) or isinstance(value, bool):
        ok = isinstance(preset, bool) and isinstance(value, bool)
    elif isinstance(preset, (int, float)):
        ok = isinstance(value, (int, float))
        if ok and isinstance(preset, int) and not isinstance(value, int):
            ok = float(value).is_integer()
            value = int(value)
    else:
        ok = isinstance(value, type(preset))
    if not ok:
        raise ParameterError(f"parameter {name}={value!r} has type {type(value).__name__}; "
                             f"expected {type(preset).__name__} like the preset value {preset!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ParameterError(f"parameter {name}={value!r} must not be negative")
    return value


def resolve_parameters(presets: dict, given: dict) -> Parameters:
    """Apply ``given`` (name → value from the notebook's parameters cell and papermill) to the presets.

    ``scale`` picks the preset; ``seeds``/``threads`` None mean the preset / all available CPUs; every
    other name must be a key of the preset. Unknown names and bad values raise ParameterError naming
    the value and the accepted ones.
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
        self.presets = yaml.safe_load((self.dir / "scales.yaml").read_text())
        self.header, self.claims = load_claims(self.dir / "claims.yaml")

    def parameters(self, namespace: dict, before: set) -> Parameters:
        return resolve_parameters(self.presets, injected_names(namespace, before))

    def results_path(self, scale: str) -> pathlib.Path:
        """``papers/<slug>/results/<scale>.json``, or ``$REPRO_RESULTS_DIR/<scale>.json`` (the nightly
        re-execution writes there so that the committed reference is never overwritten)."""
        base = os.environ.get("REPRO_RESULTS_DIR")
        return (pathlib.Path(base) if base else self.dir / "results") / f"{scale}.json"

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
        base = os.environ.get("REPRO_RUNS_DIR")
        return (pathlib.Path(base) if base else REPO_ROOT / "runs") / self.slug / params.scale / key

    def run(self, arms: list[str], seeds: list[int], run_one: Callable[[str, int, pathlib.Path], dict],
            params: Parameters, *, workers: int | None = None, log: Callable[[str], None] | None = None) -> list[dict]:
        """Run every (seed, arm) and return one record per run, ordered by seed then arm.

        A finished run's record is read back instead of re-run; an interrupted one resumes from its
        checkpoint (``run_one`` passes ``run_dir`` to ``fit``). A run that raises FloatingPointError
        (non-finite loss) is recorded as failed. ``workers`` > 1 trains that many runs at once in forked
        processes, each with ``cpus // workers`` threads (``default_workers``: as many as the CPUs allow
        when several seeds run on a CPU; ``bench/`` measures why). Jobs are queued seeds-outermost, so an
        interruption leaves complete pairs.
        """
        root = self.runs_root(params)
        main = is_main_process()
        if main:
            root.mkdir(parents=True, exist_ok=True)
        workers = default_workers(len(seeds)) if workers is None else workers
        if params.threads is not None or not main or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            workers = 1   # explicit threads, or a data-parallel launch: one run at a time
        jobs, records = [], {}
        for seed in seeds:
            for arm in arms:
                done = root / arm / f"seed-{seed}" / "record.json"
                if done.is_file():
                    records[seed, arm] = json.loads(done.read_text())
                else:
                    jobs.append((arm, seed, root / arm / f"seed-{seed}"))

        def finish(record: dict) -> None:
            records[record["seed"], record["arm"]] = record
            if not main:
                return
            write_json_atomic(root / record["arm"] / f"seed-{record['seed']}" / "record.json", record)
            metric = record.get("metrics", {}).get("test_acc")
            line = (f"{record['arm']} seed {record['seed']}: {record['status']}"
                    + (f", test_acc {metric:.2f}" if metric is not None else "") + f", {record['wall_time_s']:.0f} s")
            with open(root / "progress.log", "a") as handle:   # `tail -f` it to follow a long execution
                handle.write(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {line}\n")
            if log is not None:
                log(line)

        if workers > 1 and len(jobs) > 1:
            global _RUN_ONE
            _RUN_ONE = run_one   # inherited by the forked workers: no pickling of notebook closures
            threads = max(1, _cpus() // workers)
            context = multiprocessing.get_context("fork")
            with context.Pool(workers, initializer=_init_worker, initargs=(threads,), maxtasksperchild=1) as pool:
                for record in pool.imap_unordered(_run_job, jobs):
                    finish(record)
        else:
            for job in jobs:
                finish(_execute(run_one, *job))
        return [records[seed, arm] for seed in seeds for arm in arms]

    def report(self, params: Parameters, runs: list[dict], *, costs: dict | None = None, data: dict | None = None,
               started: float | None = None, extra: dict | None = None) -> dict:
        """Judge every claim and write ``results/<scale>.json`` atomically; return the results dict."""
        verdicts = [judge(claim, params.scale, runs, costs) for claim in self.claims]
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
            "runs": runs,
            "wall_time_s": (time.time() - started) if started else sum(r["wall_time_s"] for r in runs),
            **(extra or {}),
        }
        results["git_commit"] = results["git"]["commit"]
        if is_main_process():
            write_json_atomic(self.results_path(params.scale), results)
        return results
