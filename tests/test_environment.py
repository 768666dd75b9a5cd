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


def test_lock_pins_every_requirement_exactly_and_torch_torchvision_to_the_constraints():
    lock = {_name(line): line for line in (ROOT / "requirements.lock").read_text().splitlines()
            if line and not line.startswith("#")}
    assert all("==" in line for line in lock.values())
    for spec in _requirements():
        assert _name(spec) in lock, f"{spec} is not in requirements.lock"
    constraints = (ROOT / "constraints.txt").read_text().split()
    assert constraints == ["torch==2.14.1", "torchvision==0.29.1"]
    for pin in constraints:
        assert lock[_name(pin)] == pin, f"requirements.lock has {lock[_name(pin)]}, constraints.txt {pin}"
        assert pin in _requirements(), f"{pin} is not pinned in requirements.txt"


def test_copyable_modules_import_only_torch_and_the_standard_library():
    """lib/nn, lib/losses and lib/models stay copyable: torchvision and timm belong to infrastructure and tests."""
    import ast
    import sys

    allowed = {"torch", "lib", "__future__"} | set(sys.stdlib_module_names)
    for folder in ("nn", "losses", "models"):
        for path in sorted((ROOT / "lib" / folder).glob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                for name in names:
                    assert name.split(".")[0] in allowed, f"{path.relative_to(ROOT)} imports {name}"


def test_the_field_stack_imports_and_works():
    """torchvision's compiled operators load beside this torch (the reason for the pin) and timm builds models."""
    import timm
    import torch
    import torchvision
    from torchvision.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torch.__version__.split("+")[0] == "2.14.1" and torchvision.__version__.split("+")[0] == "0.29.1"
    assert timm.__version__.startswith("1.0.")
    assert sum(p.numel() for p in timm.create_model("resnet18", pretrained=False).parameters()) == 11_689_512
