"""Training runs: divergence, unreadable checkpoints, a full disk, concurrent writers, one trainer per run
directory, the thread count of every resumed segment."""
import errno
import os
import pathlib
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

import lib.train as train_module
from lib.data import ImageData
from lib.repro.store import StorageError, atomic_write, torch_save_atomic
from lib.train import (CheckpointError, DivergenceError, NonFiniteLossError, TrainConfig, check_loss, fit,
                       seed_everything)


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(n) % 4,
                     list("abcd"), "synthetic", "train")


def _model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))


def _fit(config, run_dir=None, **kwargs):
    seed_everything(0, threads=kwargs.pop("threads", 1))
    return fit(_model(), _data(), _data(32, 1), config, seed=0, run_dir=run_dir, progress=False, **kwargs)


def test_a_finite_divergence_stops_the_run_with_the_rule_and_the_values():
    def growing(model, x, labels, progress):   # finite, but 1000x its first value by the end
        logits = model(x)
        return F.cross_entropy(logits, labels) * (1 + 1000 * progress), logits

    with pytest.raises(DivergenceError, match=r"arm-x \(seed 0\): loss .* at epoch \d, step \d exceeds 100 x"):
        _fit(TrainConfig(epochs=3, batch_size=16), criterion=growing, label="arm-x")
    assert issubclass(DivergenceError, FloatingPointError)   # Chapter.run records it as a failed run


def test_divergence_rule_thresholds():
    check_loss(2.0, 2.3, 100.0, "r", "epoch 0, step 0")
    check_loss(229.0, 2.3, 100.0, "r", "epoch 0, step 1")
    with pytest.raises(DivergenceError):
        check_loss(231.0, 2.3, 100.0, "r", "epoch 0, step 1")
    with pytest.raises(NonFiniteLossError):
        check_loss(float("nan"), 2.3, 100.0, "r", "epoch 0, step 1")
    check_loss(1e9, 2.3, 0.0, "r", "epoch 0, step 1")   # factor 0 disables the rule


def test_a_corrupt_checkpoint_names_the_file_and_the_remedy(tmp_path):
    config = TrainConfig(epochs=2, batch_size=16)
    _fit(config, run_dir=tmp_path)
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])   # truncated, as by a full disk or a killed copy
    with pytest.raises(CheckpointError, match=rf"checkpoint {checkpoint} cannot be read.*Delete it"):
        _fit(config, run_dir=tmp_path)


def test_a_full_disk_while_checkpointing_names_the_path_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"previous checkpoint")
    real_save = torch.save

    def save_until_disk_full(obj, f, *args, **kwargs):
        f.write(b"partial data")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    with pytest.raises(StorageError, match=rf"could not write {target}.*Free space"):
        train_module._atomic_save({"x": 1}, target)
    monkeypatch.setattr(torch, "save", real_save)
    assert target.read_bytes() == b"previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_enospc_from_the_file_system_is_a_storage_error(tmp_path):
    def fail(handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match="No space left"):
        atomic_write(tmp_path / "results.json", fail)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_atomic_saves_of_one_path_all_succeed(tmp_path):
    path, errors = tmp_path / "checkpoint.pt", []

    def writer(i):
        try:
            for _ in range(20):
                torch_save_atomic({"writer": i, "payload": torch.zeros(2000)}, path)
        except Exception as error:   # the old fixed temp name raced: FileNotFoundError
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert torch.load(path)["writer"] in range(4)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_second_trainer_of_the_same_run_directory_waits_for_the_first(tmp_path):
    lock = FileLock(str(tmp_path / ".train.lock"))
    lock.acquire()   # another process is training this run
    done = {}
    worker = threading.Thread(target=lambda: done.update(r=_fit(TrainConfig(epochs=1, batch_size=16), tmp_path)))
    worker.start()
    time.sleep(1.5)
    assert worker.is_alive() and "r" not in done, "fit trained a run directory another process holds"
    lock.release()
    worker.join(60)
    assert done["r"]["history"]


def test_each_resumed_segment_records_its_thread_count_and_checkout(tmp_path, interrupt_at_evaluation, monkeypatch):
    import lib.repro.store as store

    checkouts = iter([{"commit": "aaa", "dirty": False}, {"commit": "bbb", "dirty": True}])
    monkeypatch.setattr(store, "git_state", lambda paths=None: next(checkouts))
    interrupt_at_evaluation(2)
    with pytest.raises(KeyboardInterrupt):
        _fit(TrainConfig(epochs=2, batch_size=16, eval_every=1), run_dir=tmp_path, threads=1)
    interrupt_at_evaluation.restore()
    result = _fit(TrainConfig(epochs=2, batch_size=16, eval_every=1), run_dir=tmp_path, threads=2)
    assert result["segments"] == [{"first_epoch": 0, "threads": 1, "commit": "aaa", "lib_modified": False},
                                  {"first_epoch": 1, "threads": 2, "commit": "bbb", "lib_modified": True}]
    assert [h["threads"] for h in result["history"]] == [1, 2]


def test_files_get_the_ordinary_mode(tmp_path):
    from lib.repro.store import write_json_atomic

    mask = os.umask(0o022)
    os.umask(mask)
    write_json_atomic(tmp_path / "results.json", {"a": 1})
    torch_save_atomic({"a": 1}, tmp_path / "checkpoint.pt")
    for name in ("results.json", "checkpoint.pt"):
        assert (pathlib.Path(tmp_path / name).stat().st_mode & 0o777) == 0o666 & ~mask


def test_temporary_files_of_a_killed_save_are_removed_on_the_next_start(tmp_path):
    stale = tmp_path / ".checkpoint.pt.k3j2.tmp"   # what a SIGKILL during torch.save leaves
    stale.write_bytes(b"half a checkpoint")
    _fit(TrainConfig(epochs=1, batch_size=16), run_dir=tmp_path)
    assert not stale.exists()
    assert (tmp_path / "checkpoint.pt").is_file()
