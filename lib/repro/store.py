"""Results on disk: atomic JSON writes, the environment of a run, the code version it ran on."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
from importlib import metadata

import torch

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def write_json_atomic(path: str | os.PathLike, data) -> pathlib.Path:
    """Write ``data`` as JSON so that readers see either the old file or the complete new one.

    The text is written to a temporary file in the same directory, flushed and fsynced, then renamed
    over ``path`` (``os.replace`` is atomic on POSIX); a crash leaves the previous file intact.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, sort_keys=False, allow_nan=False, default=_jsonable) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(value):
    if isinstance(value, (pathlib.Path,)):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a results file")


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """What a run depended on besides code and data: library versions, CPU/GPU, threads."""
    versions = {}
    for package in ("torch", "accelerate", "datasets", "numpy", "scipy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": versions,
    }
    return env


def git_state(paths: list[str] | None = None) -> dict:
    """The commit checked out and whether ``paths`` (default: everything) differ from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)

    commit = git("rev-parse", "HEAD").stdout.strip() or None
    status = git("status", "--porcelain", "--", *(paths or ["."])).stdout.strip()
    return {"commit": commit, "dirty": bool(status), "dirty_paths": [line[3:] for line in status.splitlines()]}


def hash_files(paths) -> str:
    """sha256 over the names and contents of ``paths`` (sorted), for cache and resume keys."""
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(p) for p in paths):
        digest.update(str(path.relative_to(REPO_ROOT) if path.is_absolute() else path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def lib_files() -> list[pathlib.Path]:
    return sorted((REPO_ROOT / "lib").rglob("*.py"))
