"""Shared fixtures: a tiny image dataset in the hub's parquet schema with its own data card; ci/ scripts as
modules."""
from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import pytest
import yaml


@pytest.fixture
def tiny_mirror(tmp_path, monkeypatch):
    """A mirror ``tiny/`` (train 40 rows, 4 classes, 8×8 RGB) + its card; REPRO_DATA/REPRO_CACHE point at tmp."""
    import datasets

    from fakes import encoded

    rng = np.random.default_rng(0)
    mirror, cards, cache = tmp_path / "mirror", tmp_path / "cards", tmp_path / "cache"
    (mirror / "tiny").mkdir(parents=True)
    cards.mkdir()
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c", "d"])})
    rows = {"img": [], "label": []}
    for i in range(40):
        rows["img"].append({"bytes": encoded(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "PNG"), "path": None})
        rows["label"].append(i % 4)
    path = mirror / "tiny" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))
    front = {
        "name": "tiny", "title": "Tiny", "hub_id": None, "hub_config": None, "license": "CC0", "citation": "none",
        "homepage": None, "format": "parquet", "features": {"img": "Image", "label": "ClassLabel(4)"},
        "label_names": ["a", "b", "c", "d"],
        "splits": {"train": {"rows": 40, "files": [path.name]}},
        "sha256": {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}, "deviations": [],
    }
    (cards / "tiny.md").write_text("---\n" + yaml.safe_dump(front) + "---\nA test dataset.\n")
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", cards)
    monkeypatch.setenv("REPRO_DATA", str(mirror))
    monkeypatch.setenv("REPRO_CACHE", str(cache))
    return pathlib.Path(mirror)


# --- CI time per chapter and its projection (printed at the end of `make test`) ---------------------------
CHAPTER_COUNT_TARGET = 122
_durations: dict[str, float] = {}
_session_start: list[float] = []


def pytest_sessionstart(session):
    import time

    _session_start.append(time.perf_counter())


def pytest_runtest_logreport(report):
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def _timing(name: str):
    import json

    path = pathlib.Path(__file__).resolve().parents[1] / "_build" / "timings" / f"{name}.json"
    return json.loads(path.read_text())["seconds"] if path.is_file() else None


def ci_projection(durations: dict[str, float], wall: float, workers: int, book_s: float | None,
                  install_s: float | None, target: int = CHAPTER_COUNT_TARGET) -> dict:
    """Per-chapter CI seconds and the projection to ``target`` chapters.

    Chapter work is every test item of a chapter: its nbval smoke execution (``<slug>.ipynb::Cell n``) and
    its structural test (``[<slug>]``); the rest is shared (lib tests, the representative papermill
    probes). Chapter work divides across the workers; the book build is charged to the chapters in full
    (an upper bound: part of it is fixed).
    """
    chapters = sorted({nodeid.split("::")[0].rsplit("/", 1)[-1][:-len(".ipynb")]
                       for nodeid in durations if nodeid.split("::")[0].endswith(".ipynb")})
    chapter_s = sum(d for nodeid, d in durations.items()
                    if any(nodeid.split("::")[0].endswith(f"/{slug}.ipynb") or nodeid.endswith(f"[{slug}]")
                           for slug in chapters))
    shared_s = sum(durations.values()) - chapter_s
    n = max(1, len(chapters))
    per_chapter = chapter_s / workers / n + (book_s or 0.0) / n
    projected = (install_s or 0.0) + shared_s / workers + target * per_chapter
    return {"chapters": len(chapters), "workers": workers, "chapter_compute_s": chapter_s,
            "shared_compute_s": shared_s, "per_chapter_s": per_chapter, "book_s": book_s,
            "install_s": install_s, "wall_s": wall, "projected_s": projected, "target": target}


def pytest_terminal_summary(terminalreporter, config):
    import json
    import time

    if hasattr(config, "workerinput") or not _session_start:
        return
    workers = getattr(config.option, "numprocesses", None) or 1
    p = ci_projection(_durations, time.perf_counter() - _session_start[0], int(workers), _timing("book"),
                      _timing("install"))
    if not p["chapters"]:
        return
    out = pathlib.Path(__file__).resolve().parents[1] / "_build" / "timings" / "tests.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(p, indent=1))
    book = f" + {p['book_s'] / p['chapters']:.1f} s book build" if p["book_s"] else ""
    terminalreporter.write_sep("-", "CI time per chapter")
    terminalreporter.write_line(
        f"{p['chapters']} chapters on {p['workers']} workers: "
        f"{p['chapter_compute_s'] / p['chapters']:.1f} s of smoke execution per chapter "
        f"= {p['chapter_compute_s'] / p['chapters'] / p['workers']:.1f} s of CI{book} "
        f"= {p['per_chapter_s']:.1f} s per chapter (goal <= 12 s)")
    terminalreporter.write_line(
        f"projection for {p['target']} chapters: {p['projected_s'] / 60:.1f} min "
        f"(install {(p['install_s'] or 0) / 60:.1f} min + shared tests {p['shared_compute_s'] / p['workers'] / 60:.1f} min"
        f" + {p['target']} x {p['per_chapter_s']:.1f} s; aim <= 25 min, limit 90 min)")


@pytest.fixture
def interrupt_at_evaluation(monkeypatch):
    """``interrupt(n)`` makes lib.train's ``n``-th evaluation raise KeyboardInterrupt (a run stopped after the
    epoch that evaluation closes); ``interrupt.restore()`` puts the real evaluation back for the resume."""
    import lib.train as train_module

    original = train_module.evaluate

    def interrupt(n: int) -> None:
        calls = {"n": 0}

        def evaluate(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        monkeypatch.setattr(train_module, "evaluate", evaluate)

    interrupt.restore = lambda: monkeypatch.setattr(train_module, "evaluate", original)
    return interrupt


@pytest.fixture(scope="session")
def load_ci_script():
    """``load_ci_script("run_chapter")``: a fresh module object of ``ci/<name>.py`` (the scripts are not a package)."""
    import importlib.util

    root = pathlib.Path(__file__).resolve().parents[1]

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, root / "ci" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
