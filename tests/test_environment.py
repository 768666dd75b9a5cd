"""The install files agree: environment.yml mirrors requirements.txt; the lock pins every requirement."""
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return sorted(line.split("#")[0].strip() for line in lines if line.split("#")[0].strip())


def _name(spec):
    return re.split(r"[<>=!~ ]", spec, maxsplit=1)[0].lower()


def test_environment_yml_mirrors_requirements_txt():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(s for s in pip if not s.startswith("-e")) == _requirements()


def test_lock_pins_every_requirement_exactly_and_torch_to_the_cpu_wheel_version():
    lock = {_name(line): line for line in (ROOT / "requirements.lock").read_text().splitlines()
            if line and not line.startswith("#")}
    assert all("==" in line for line in lock.values())
    for spec in _requirements():
        assert _name(spec) in lock, f"{spec} is not in requirements.lock"
    assert lock["torch"] == "torch==2.13.0"
    assert (ROOT / "constraints.txt").read_text().split() == ["torch==2.13.0"]
