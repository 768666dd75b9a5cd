"""Results on disk: atomic JSON writes, the environment of a run, the code version it ran on."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata

import torch

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


PATH_VARIABLES = ("REPRO_DATA", "REPRO_CACHE", "REPRO_RUNS_DIR", "REPRO_RESULTS_DIR")


class StorageError(OSError):
    """A file could not be written (disk full, read-only directory, ...); the message names the path."""


def caller_directory() -> pathlib.Path:
    """The working directory of the command the user typed: ``$PWD`` when it names a directory, else the cwd.

    A notebook kernel runs in ``papers/<slug>/`` but inherits ``$PWD`` from the shell that started
    papermill, make or the nightly, so relative paths given there mean what the user meant.
    """
    pwd = os.environ.get("PWD")
    if pwd and os.path.isabs(pwd) and os.path.isdir(pwd):
        return pathlib.Path(pwd)
    return pathlib.Path.cwd()


def resolve_path_variables(names: tuple[str, ...] = PATH_VARIABLES, base: str | os.PathLike | None = None) -> dict:
    """Make the relative ``REPRO_*`` path variables absolute, once, against ``base`` (default: the caller's
    working directory) and write them back to ``os.environ`` so every child process sees the same paths."""
    base = pathlib.Path(base) if base is not None else caller_directory()
    resolved = {}
    for name in names:
        value = os.environ.get(name)
        if not value:
            continue
        path = pathlib.Path(value).expanduser()
        if not path.is_absolute():
            path = (base / path).resolve()
            os.environ[name] = str(path)
        resolved[name] = path
    return resolved


def env_path(name: str) -> pathlib.Path | None:
    """The absolute path in the environment variable ``name`` (relative values: against the caller's
    working directory, see ``resolve_path_variables``), or None when it is unset or empty."""
    return resolve_path_variables((name,)).get(name)


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask is not thread-safe)."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write, *, binary: bool = True) -> pathlib.Path:
    """Write ``path`` atomically: ``write(handle)`` fills a uniquely named temporary file in the same
    directory, which is flushed, fsynced and renamed over ``path`` (``os.replace`` is atomic on POSIX).

    Readers see the old file or the complete new one; two writers never share a temporary file; the file
    gets the ordinary mode (0666 minus the umask, typically 0644). On any failure (disk full, a crash in
    ``write``) the temporary file is removed and the previous file is left intact; a full or read-only
    disk raises StorageError naming the path and the free space.
    """
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise StorageError(error.errno, f"cannot write {path}: {error.strerror or error}; "
                                        f"check that {path.parent} exists and is writable") from error
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        pathlib.Path(tmp).unlink(missing_ok=True)
        if isinstance(error, (OSError, RuntimeError)) and _disk_error(error):
            free = _free_bytes(path.parent)
            raise StorageError(getattr(error, "errno", None) or 28,
                               f"could not write {path}: {error}. The partial temporary file was removed and "
                               f"the previous {path.name} (if any) is intact; {free} free on {path.parent}. "
                               f"Free space (or choose another directory) and run again.") from error
        raise
    return path


def _disk_error(error: BaseException) -> bool:
    """An error from the file system rather than from the caller's code (torch wraps ENOSPC in RuntimeError)."""
    if isinstance(error, OSError):
        return True
    text = str(error)
    return any(s in text for s in ("inline_container", "No space left", "file write failed", "PytorchStreamWriter"))


def _free_bytes(folder: pathlib.Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown space"
    return f"{free / 2**20:.1f} MiB"


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete the temporary files ``atomic_write`` leaves for ``path`` when its process is killed mid-write
    (call it under the lock that guards ``path``)."""
    path = pathlib.Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def torch_save_atomic(obj, path: str | os.PathLike) -> pathlib.Path:
    """``torch.save`` through ``atomic_write``: checkpoints and caches are complete or absent."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def check_writable(folder: str | os.PathLike, what: str = "results") -> pathlib.Path:
    """Create ``folder`` if needed and prove it is writable (a probe file), before any work is done."""
    folder = pathlib.Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise StorageError(error.errno, f"the {what} directory {folder} is not writable ({error.strerror or error}); "
                                        f"nothing was trained. Fix its permissions or point the variable "
                                        f"for it (REPRO_RESULTS_DIR, REPRO_RUNS_DIR, REPRO_CACHE) elsewhere."
                           ) from error
    return folder


def write_json_atomic(path: str | os.PathLike, data) -> pathlib.Path:
    """Write ``data`` as JSON so that readers see either the old file or the complete new one.

    The text is written to a temporary file in the same directory, flushed and fsynced, then renamed
    over ``path`` (``os.replace`` is atomic on POSIX); a crash leaves the previous file intact.
    """
    text = json.dumps(data, indent=1, sort_keys=False, allow_nan=False, default=_jsonable) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode()))


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
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        except OSError:   # no git on this machine: nothing to record
            return subprocess.CompletedProcess(args, 1, "", "")

    commit = git("rev-parse", "HEAD").stdout.strip() or None
    status = git("status", "--porcelain", "--", *(paths or ["."])).stdout   # "XY path": not stripped, X may be " "
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(changed), "dirty_paths": changed}


def hash_files(paths) -> str:
    """sha256 over the names and contents of ``paths`` (sorted), for cache and resume keys."""
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(p) for p in paths):
        digest.update(str(path.relative_to(REPO_ROOT) if path.is_absolute() else path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def lib_files() -> list[pathlib.Path]:
    return sorted((REPO_ROOT / "lib").rglob("*.py"))
