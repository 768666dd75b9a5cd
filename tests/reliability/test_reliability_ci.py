"""ci/run_chapter.py (make chapter): the committed notebook is replaced only after a successful execution;
-p values are parsed as papermill does; make forwards ARGS; relative REPRO_* paths are fixed before the kernel."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def run_chapter(tmp_path, monkeypatch, load_ci_script):
    module = load_ci_script("run_chapter")
    (tmp_path / "papers" / "toy").mkdir(parents=True)
    (tmp_path / "papers" / "toy" / "toy.ipynb").write_text("committed reference outputs")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    calls = []

    def execute(source, target, parameters, **kwargs):
        calls.append({"source": source, "target": target, "parameters": parameters})
        pathlib.Path(target).write_text("partially executed")   # papermill writes the output as it goes
        if module.FAIL:
            raise RuntimeError("the chapter failed in cell 12")
        pathlib.Path(target).write_text("executed")

    monkeypatch.setattr(module.papermill, "execute_notebook", execute)
    module.FAIL, module.CALLS = False, calls
    return module


def _main(module, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["run_chapter.py", "toy", *args])
    return module.main()


def test_a_failed_reduced_run_leaves_the_committed_notebook_unchanged(run_chapter, monkeypatch, tmp_path):
    run_chapter.FAIL = True
    with pytest.raises(RuntimeError, match="cell 12"):
        _main(run_chapter, monkeypatch, "--scale", "reduced")
    assert (tmp_path / "papers" / "toy" / "toy.ipynb").read_text() == "committed reference outputs"
    assert (tmp_path / "_build" / "chapters" / "toy.reduced.failed.ipynb").read_text() == "partially executed"


def test_an_interrupted_run_leaves_the_committed_notebook_unchanged(run_chapter, monkeypatch, tmp_path):
    def interrupted(source, target, parameters, **kwargs):
        pathlib.Path(target).write_text("partially executed")
        raise KeyboardInterrupt

    monkeypatch.setattr(run_chapter.papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _main(run_chapter, monkeypatch, "--scale", "reduced")
    assert (tmp_path / "papers" / "toy" / "toy.ipynb").read_text() == "committed reference outputs"


def test_a_successful_run_replaces_the_notebook_and_leaves_no_temporary_file(run_chapter, monkeypatch, tmp_path):
    assert _main(run_chapter, monkeypatch, "--scale", "reduced") == 0
    assert (tmp_path / "papers" / "toy" / "toy.ipynb").read_text() == "executed"
    assert run_chapter.CALLS[0]["target"] != str(tmp_path / "papers" / "toy" / "toy.ipynb")
    assert not list((tmp_path / "_build" / "chapters").glob("*.partial.ipynb"))


def test_parameters_are_parsed_as_papermill_and_yaml_do(run_chapter, monkeypatch):
    _main(run_chapter, monkeypatch, "--scale", "smoke", "-p", "lr", "0.05", "-p", "channels_last", "False",
          "-p", "epochs", "2", "-p", "weight_decay", "1e-4", "-p", "arms", "[none, ca]", "-p", "dataset", "cifar10",
          "-p", "seeds", "None")
    assert run_chapter.CALLS[0]["parameters"] == {"scale": "smoke", "lr": 0.05, "channels_last": False, "epochs": 2,
                                                  "weight_decay": 1e-4, "arms": ["none", "ca"], "dataset": "cifar10",
                                                  "seeds": None}


def test_relative_repro_paths_are_made_absolute_against_the_callers_directory(run_chapter, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPRO_DATA", "mirror")
    monkeypatch.setenv("REPRO_RUNS_DIR", "../runs")
    _main(run_chapter, monkeypatch, "--scale", "smoke")
    assert os.environ["REPRO_DATA"] == str(tmp_path / "mirror")
    assert os.environ["REPRO_RUNS_DIR"] == str(tmp_path.parent / "runs")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_chapter_forwards_args():
    out = subprocess.run(["make", "-n", "chapter", "PAPER=coord-attention", "SCALE=smoke", "ARGS=-p epochs 2"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "ci/run_chapter.py coord-attention --scale smoke --procs 1 -p epochs 2" in out
