"""Chapter parameters are validated; results files are written atomically."""
import json
import os

import pytest

from lib.repro import ParameterError, resolve_parameters, write_json_atomic
from lib.repro.chapter import injected_names

PRESETS = {"smoke": {"seeds": 1, "epochs": 1, "lr": 0.1, "arms": ["a"], "precision": "fp32", "channels_last": True},
           "reduced": {"seeds": 5, "epochs": 4, "lr": 0.1, "arms": ["a"], "precision": "bf16", "channels_last": True}}


def test_preset_and_overrides():
    p = resolve_parameters(PRESETS, {"scale": "smoke", "seeds": None, "epochs": 3})
    assert (p.scale, p.seeds, p["epochs"], p.overrides) == ("smoke", 1, 3, {"epochs": 3})
    assert resolve_parameters(PRESETS, {"scale": "reduced"}).seed_list == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("given,match", [
    ({"scale": "huge"}, r"unknown scale 'huge'; accepted: smoke, reduced"),
    ({"scale": "smoke", "seeds": -1}, r"seeds must be a positive integer, got -1"),
    ({"scale": "smoke", "seeds": 0}, r"seeds must be a positive integer, got 0"),
    ({"scale": "smoke", "epoch": 3}, r"unknown parameter\(s\) epoch; accepted: arms, channels_last, epochs, lr, "
                                              r"precision, scale, seeds, threads"),
    ({"scale": "smoke", "epochs": "many"}, r"epochs='many'"),
    ({"scale": "smoke", "lr": -0.1}, r"lr=-0.1 must not be negative"),
    ({"scale": "smoke", "threads": 0}, r"threads must be a positive integer"),
    ({"scale": "smoke", "precision": "fp8"}, r"precision.*'fp8'.*fp32, bf16, fp16"),
    ({"scale": "smoke", "channels_last": "yes"}, r"channels_last.*'yes'"),
])
def test_bad_parameters_name_the_value_and_the_accepted_ones(given, match):
    with pytest.raises(ParameterError, match=match):
        resolve_parameters(PRESETS, given)


def test_injected_names_ignores_modules_functions_and_private_names():
    before = {"os"}
    namespace = {"os": os, "scale": "smoke", "_i3": "x", "json": json, "helper": print, "seeds": 2}
    assert injected_names(namespace, before) == {"scale": "smoke", "seeds": 2}


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "results" / "reduced.json"
    write_json_atomic(path, {"version": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_json_atomic(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in path.parent.iterdir()] == ["reduced.json"]   # no temporary file left behind


def test_atomic_write_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "x.json", {"x": float("nan")})


def test_git_state_names_changed_paths_exactly_and_survives_a_machine_without_git(tmp_path, monkeypatch):
    import subprocess

    import lib.repro.store as store

    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "lib" / "b.py").write_text("y = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "m")
    monkeypatch.setattr(store, "REPO_ROOT", tmp_path)
    assert store.git_state(["lib"])["dirty"] is False
    (tmp_path / "lib" / "a.py").write_text("x = 2\n")            # porcelain " M lib/a.py": leading space
    (tmp_path / "lib" / "c.py").write_text("z = 1\n")            # "?? lib/c.py"
    state = store.git_state(["lib"])
    assert state["dirty"] is True and state["dirty_paths"] == ["lib/a.py", "lib/c.py"]

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")
    monkeypatch.setattr(subprocess, "run", no_git)
    assert store.git_state(["lib"]) == {"commit": None, "dirty": False, "dirty_paths": []}
