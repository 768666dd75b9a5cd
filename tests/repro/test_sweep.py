"""Seed sweeps (lib/repro/sweep.py, ci/sweep.py): planning lists exactly the unfinished runs of a stage and trains
nothing; one-run mode trains exactly the selected run; the CLI rejects bad input before any work and hands the
SLURM parameters to sbatch. End to end on a real chapter: tests/test_sweep_chapter.py."""
import json
import os
import pathlib
import shutil
import sys

import pytest
import yaml

from lib.repro import Chapter
from lib.repro import sweep
from lib.repro.sweep import SweepError, SweepStop

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A chapter with arms a, b, 2 seeds, and a plateau gate on b (2 seeds, twice the epochs)."""
    folder = tmp_path / "papers" / "toy"
    folder.mkdir(parents=True)
    (folder / "scales.yaml").write_text(yaml.safe_dump({"smoke": {"seeds": 2, "epochs": 2}}))
    gate = {"kind": "plateau", "metric": "acc", "max_change": 3.0, "seeds": 2, "arm": "b", "rule": "b at 2x"}
    (folder / "claims.yaml").write_text(yaml.safe_dump({
        "gates": {"plateau-b": gate},
        "claims": [{"id": "a-beats-b", "text": "t", "kind": "statistical", "source": "paper", "paper": {},
                    "arms": ["a", "b"], "metric": "acc", "claimed_effect": 1.0, "gate": "plateau-b"}]}))
    for name in (sweep.PLAN_ENV, sweep.RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    chapter = Chapter("toy", root=tmp_path)
    return chapter, chapter.parameters({"scale": "smoke"}, before=set())


class Trainer:
    """A run_one that records what it trained; the metric depends on (arm, seed, epochs) only."""

    def __init__(self, epochs: int = 2):
        self.trained, self.epochs = [], epochs

    def __call__(self, arm, seed, run_dir):
        import torch

        self.trained.append((arm, seed))
        return {"metrics": {"acc": 50.0 + seed + 2.0 * (arm == "a") + self.epochs}, "threads": torch.get_num_threads()}


def _plan(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def _records(root: pathlib.Path) -> list[str]:
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("record.json"))


def test_planning_lists_the_unfinished_runs_of_the_call_and_trains_nothing(toy, tmp_path, monkeypatch):
    chapter, params = toy
    train = Trainer()
    chapter.run(["b"], [1], train, params, workers=1)   # one run finished before the sweep (a resumed sweep)
    plan_file = tmp_path / "plan.json"
    monkeypatch.setenv(sweep.PLAN_ENV, str(plan_file))
    with pytest.raises(SweepStop):
        chapter.run(["a", "b"], [0, 1], train, params, workers=1)
    root = chapter.runs_root(params)
    plan = _plan(plan_file)
    assert [(j["arm"], j["seed"]) for j in plan["jobs"]] == [("a", 0), ("b", 0), ("a", 1)]
    expected = [("a", 0), ("b", 0), ("a", 1)]
    assert [j["run_dir"] for j in plan["jobs"]] == [str(root / arm / f"seed-{seed}") for arm, seed in expected]
    assert plan["section"] == "runs" and plan["done"] is False
    assert train.trained == [("b", 1)] and _records(tmp_path / "runs") == [f"toy/smoke/{root.name}/b/seed-1"]


def test_planning_passes_a_finished_stage_and_plans_the_gate_runs_next(toy, tmp_path, monkeypatch):
    chapter, params = toy
    plain = chapter.run(["a", "b"], [0, 1], Trainer(), params, workers=1)
    plan_file = tmp_path / "plan.json"
    monkeypatch.setenv(sweep.PLAN_ENV, str(plan_file))
    runs = chapter.run(["a", "b"], [0, 1], Trainer(), params, workers=1)   # finished: read back, no stop
    assert runs == plain
    with pytest.raises(SweepStop):
        chapter.plateau_gates(runs, Trainer(epochs=4), params, workers=1)
    plan = _plan(plan_file)
    assert plan["section"] == "gate_runs" and [(j["arm"], j["seed"]) for j in plan["jobs"]] == [("b", 0), ("b", 1)]
    assert all(pathlib.Path(j["run_dir"]).parents[1] != chapter.runs_root(params) for j in plan["jobs"])
    monkeypatch.delenv(sweep.PLAN_ENV)
    chapter.plateau_gates(runs, Trainer(epochs=4), params, workers=1)   # what a plain execution trains
    main_root = chapter.runs_root(params)
    gate_dirs = [str(p.parent) for p in (tmp_path / "runs").rglob("record.json") if main_root not in p.parents]
    assert sorted(gate_dirs) == sorted(j["run_dir"] for j in plan["jobs"])


def test_a_planning_execution_that_reaches_the_report_writes_an_empty_plan_and_no_results(toy, tmp_path, monkeypatch):
    chapter, params = toy
    runs = chapter.run(["a", "b"], [0, 1], Trainer(), params, workers=1)
    plan_file = tmp_path / "plan.json"
    monkeypatch.setenv(sweep.PLAN_ENV, str(plan_file))
    with pytest.raises(SweepStop):
        chapter.report(params, runs)
    assert _plan(plan_file) == {"done": True, "section": None, "threads": None, "jobs": []}
    assert not chapter.results_path("smoke").exists()


def test_the_plan_carries_the_threads_a_plain_execution_gives_each_run(toy, tmp_path, monkeypatch):
    chapter, params = toy
    plan_file = tmp_path / "plan.json"
    monkeypatch.setenv(sweep.PLAN_ENV, str(plan_file))
    with pytest.raises(SweepStop):
        chapter.run(["a", "b"], [0, 1], Trainer(), params)   # default workers: one per core on a CPU
    monkeypatch.delenv(sweep.PLAN_ENV)
    plain = chapter.run(["a", "b"], [0, 1], Trainer(), params)
    assert {r["threads"] for r in plain} == {_plan(plan_file)["threads"]}


def test_one_run_mode_trains_exactly_the_selected_run_and_stops(toy, tmp_path, monkeypatch):
    chapter, params = toy
    selected = chapter.runs_root(params) / "b" / "seed-1"
    monkeypatch.setenv(sweep.RUN_ENV, str(selected))
    train = Trainer()
    with pytest.raises(SweepStop, match="b seed 1 trained"):
        chapter.run(["a", "b"], [0, 1], train, params)
    assert train.trained == [("b", 1)]
    assert _records(tmp_path / "runs") == [str(selected.relative_to(tmp_path / "runs"))]
    assert json.loads((selected / "record.json").read_text())["metrics"] == {"acc": 53.0}
    again = Trainer()
    with pytest.raises(SweepStop, match="already finished"):   # a job submitted twice trains once
        chapter.run(["a", "b"], [0, 1], again, params)
    assert again.trained == []


def test_a_swept_run_has_the_plain_runs_record(toy, tmp_path, monkeypatch):
    """The same (arm, seed) trained by a one-run execution and by a plain one: the same metrics and threads."""
    chapter, params = toy
    plain = {(r["arm"], r["seed"]): r for r in chapter.run(["a", "b"], [0, 1], Trainer(), params)}
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "swept"))
    plan_file = tmp_path / "plan.json"
    monkeypatch.setenv(sweep.PLAN_ENV, str(plan_file))
    with pytest.raises(SweepStop):
        chapter.run(["a", "b"], [0, 1], Trainer(), params)
    monkeypatch.delenv(sweep.PLAN_ENV)
    monkeypatch.setenv("REPRO_THREADS", str(_plan(plan_file)["threads"]))   # what the local launcher passes
    for job in _plan(plan_file)["jobs"]:
        monkeypatch.setenv(sweep.RUN_ENV, job["run_dir"])
        with pytest.raises(SweepStop):
            chapter.run(["a", "b"], [0, 1], Trainer(), params)
        record = json.loads((pathlib.Path(job["run_dir"]) / "record.json").read_text())
        assert (record["metrics"], record["threads"]) == (plain[job["arm"], job["seed"]]["metrics"],
                                                          plain[job["arm"], job["seed"]]["threads"])


def test_one_run_mode_passes_finished_stages_and_rejects_runs_it_cannot_reach(toy, tmp_path, monkeypatch):
    chapter, params = toy
    runs = chapter.run(["a", "b"], [0, 1], Trainer(), params, workers=1)
    gate_root = tmp_path / "elsewhere"
    monkeypatch.setenv(sweep.RUN_ENV, str(gate_root / "b" / "seed-0"))
    assert chapter.run(["a", "b"], [0, 1], Trainer(), params, workers=1) == runs   # a finished stage is read back
    with pytest.raises(SweepError, match="not a run of this stage"):   # the gate stage is pending, not this run
        chapter.plateau_gates(runs, Trainer(epochs=4), params, workers=1)
    with pytest.raises(SweepError, match="not among the runs"):   # e.g. the code changed since planning
        chapter.report(params, runs)
    assert not chapter.results_path("smoke").exists()


def test_a_stop_is_a_clean_exit_of_a_script():
    import subprocess

    code = "from lib.repro.sweep import SweepStop\nraise SweepStop('done')\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (done.returncode, done.stderr) == (0, "")


# --- the CLI ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli(load_ci_script):
    return load_ci_script("sweep")


@pytest.mark.parametrize("argv, message", [
    (["nope", "--scale", "smoke"], "unknown chapter 'nope'; accepted: "),
    (["isda", "--scale", "tiny"], "unknown scale 'tiny'; accepted: smoke, reduced, full"),
    (["isda", "--scale", "smoke", "--launcher", "pbs"], "unknown launcher 'pbs'; accepted: local, slurm"),
    (["isda", "--scale", "smoke", "--time", "0:30"], "shorter than one minute"),
    (["isda", "--scale", "smoke", "--time", "1h"], "is not MINUTES, HH:MM:SS or D-HH:MM:SS"),
    (["isda", "--scale", "smoke", "--parallel", "0"], "--parallel must be a positive integer"),
    (["isda", "--scale", "smoke", "--nodes-per-job", "2"], "the local launcher runs on this machine only"),
])
def test_bad_input_is_an_error_naming_the_accepted_values_before_any_work(cli, argv, message, capsys, monkeypatch):
    monkeypatch.setattr(cli.sweep, "plan", lambda *a, **k: pytest.fail("planned despite bad input"))
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_slurm_without_sbatch_is_an_error_before_any_work(cli, capsys, monkeypatch):
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    monkeypatch.setattr(cli.sweep, "plan", lambda *a, **k: pytest.fail("planned without sbatch"))
    with pytest.raises(SystemExit):
        cli.main(["isda", "--scale", "full", "--launcher", "slurm"])
    assert "needs sbatch and srun on the PATH" in capsys.readouterr().err


@pytest.mark.parametrize("text, minutes", [("90", 90), ("30:00", 30), ("1:00:00", 60), ("24:00:00", 1440),
                                           ("2-0", 2880), ("1-12:30", 2190), ("0:1:01", 2)])
def test_time_limits_in_slurms_forms(cli, text, minutes):
    assert cli.parse_time(text) == minutes


def test_the_slurm_parameters_reach_the_sbatch_file(cli, tmp_path, monkeypatch):
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))   # as if srun were here
    parser = cli.build_parser()
    args = parser.parse_args(["isda", "--scale", "full", "--launcher", "slurm", "--partition", "gpu",
                              "--gpus-per-job", "4", "--cpus-per-task", "16", "--time", "2-00:00:00", "--mem-gb",
                              "64", "--array-parallelism", "10", "--dry-run"])
    cli.check_arguments(args, parser)
    executor = cli.make_executor(args, tmp_path)
    text = executor._executor._make_submission_file_text("python -m job", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=16",
                 "#SBATCH --time=2880", "#SBATCH --mem=64GB", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1"):
        assert line in text, f"{line} missing from the sbatch file:\n{text}"
    assert executor._executor.parameters["array_parallelism"] == 10
    job = cli.jobs_of(sweep.Plan(False, "runs", 1, [{"arm": "ce", "seed": 3, "run_dir": "/r/ce/seed-3"}]), args,
                      {"scale": "full"})[0]
    assert (job.procs, job.nodes, job.threads) == (4, 1, None)   # 4 GPUs: accelerate launch; the job's own CPUs


def test_a_multi_node_job_launches_accelerate_across_its_nodes(monkeypatch, tmp_path, load_ci_script):
    import submitit

    class Here:
        node, hostnames = 1, ["gpu-017", "gpu-018"]

    monkeypatch.setattr(submitit, "JobEnvironment", Here)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1007")          # array tasks on one node get their own port
    job = sweep.Job(slug="isda", arm="ce", seed=0, run_dir="/r", parameters={"scale": "full", "arms": ["ce"]},
                    procs=4, nodes=2)
    command = sweep._launch_command(job)
    assert command[1:] == [str(ROOT / "ci" / "run_chapter.py"), "isda", "--procs", "4", "--scale", "full",
                           "-p", "arms", '["ce"]', "--machines", "2", "--machine-rank", "1",
                           "--main-process-ip", "gpu-017", "--main-process-port", "29507"]
    run_chapter = load_ci_script("run_chapter")
    calls = []
    monkeypatch.setattr(run_chapter.subprocess, "run", lambda command, **kwargs: calls.append(command))
    (tmp_path / "papers" / "isda").mkdir(parents=True)
    shutil.copy(ROOT / "papers" / "isda" / "isda.ipynb", tmp_path / "papers" / "isda")
    monkeypatch.setattr(run_chapter, "ROOT", tmp_path)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setattr(sys, "argv", ["run_chapter.py", *command[2:]])
    assert run_chapter.main() == 0
    launch = calls[0]
    flags = dict(zip(launch[launch.index("--num_processes"):-1:2], launch[launch.index("--num_processes") + 1:-1:2]))
    assert flags == {"--num_processes": "8", "--num_machines": "2", "--mixed_precision": "no",
                     "--dynamo_backend": "no", "--machine_rank": "1", "--main_process_ip": "gpu-017",
                     "--main_process_port": "29507"}
    assert "--multi_gpu" in launch and launch[-1].endswith("isda.full.py")


class _FakeJob:
    def __init__(self, spec, error=None):
        self.spec, self.error, self.job_id = spec, error, f"{100 + spec.seed}"
        self.paths = type("Paths", (), {"stderr": f"/logs/{self.job_id}_0_log.err"})()

    def done(self):
        return True

    def result(self):
        if self.error:
            raise RuntimeError(f"Job (task=0) failed during processing with trace:\n----\n{self.error}")
        return {"arm": self.spec.arm, "seed": self.spec.seed, "status": "ok", "metrics": {"test_acc": 50.0}}


def test_a_failed_job_stops_the_sweep_after_its_stage_with_its_reason_and_log(cli, monkeypatch, capsys, tmp_path):
    jobs = [{"arm": "ce", "seed": s, "run_dir": str(tmp_path / f"ce/seed-{s}")} for s in range(3)]
    monkeypatch.setattr(cli.sweep, "plan", lambda *a, **k: sweep.Plan(False, "runs", 1, jobs))
    submitted = []

    class Executor:
        def submit(self, function, spec):
            submitted.append(spec.seed)
            return _FakeJob(spec, "SweepError: isda ce seed 1: the execution ended without record.json"
                            if spec.seed == 1 else None)

    monkeypatch.setattr(cli, "make_executor", lambda args, folder: Executor())
    monkeypatch.setattr(cli.subprocess, "run", lambda *a, **k: pytest.fail("the chapter was executed"))
    assert cli.main(["isda", "--scale", "smoke", "--launcher", "local", "--gpus-per-job", "0"]) == 1
    err = capsys.readouterr().err
    assert submitted == [0, 1, 2]   # the other jobs of the stage still ran
    assert "1 of 3 job(s) of stage 1 failed" in err
    assert "isda ce seed 1: SweepError: isda ce seed 1: the execution ended without record.json " \
           "(log: /logs/101_0_log.err)" in err


def test_flags_of_the_other_launcher_are_refused(cli, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["isda", "--scale", "smoke", "--launcher", "local", "--partition", "gpu", "--dry-run"])
    assert stop.value.code == 2 and "--partition applies to --launcher slurm only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        cli.main(["isda", "--scale", "smoke", "--launcher", "slurm", "--parallel", "2", "--dry-run"])
    assert stop.value.code == 2 and "--parallel applies to --launcher local only" in capsys.readouterr().err


def test_a_multi_node_job_reports_its_rank_zero_task(cli):
    class MultiTask(_FakeJob):
        def result(self):
            raise AssertionError("You should use `results()` if your job has subtasks")

        def results(self):
            return [super().result(), {"rank": 1}]

    spec = sweep.Job(slug="isda", arm="ce", seed=2, run_dir="/r", parameters={}, procs=4, nodes=2)
    assert cli._report(MultiTask(spec), spec) == []
