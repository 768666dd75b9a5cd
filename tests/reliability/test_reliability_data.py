"""The decoded-data cache is verified on every load; relative REPRO_* paths mean the caller's directory; without
a mirror and a reachable hub the error comes in seconds and names REPRO_DATA."""
import os
import time

import pytest
import torch
import yaml

import lib.data.images as images
from lib.data import MissingDataError, load


def _cache_file(tiny_mirror):
    files = sorted((tiny_mirror.parent / "cache" / "tiny").glob("*.pt"))
    assert len(files) == 1, files
    return files[0]


def test_a_flipped_byte_in_the_cache_is_detected_and_the_data_decoded_again(tiny_mirror):
    first = load("tiny", "train")
    path = _cache_file(tiny_mirror)
    data = bytearray(path.read_bytes())
    at = bytes(data).find(first.images.numpy().tobytes()[:64])   # inside the stored pixels
    assert at > 0
    data[at + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=rf"{path}.*corrupted.*decoding the data again"):
        second = load("tiny", "train")
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    assert images.load_cache(path) is not None   # rebuilt with a matching digest


def test_a_truncated_cache_file_is_named_deleted_and_rebuilt(tiny_mirror):
    first = load("tiny", "train")
    path = _cache_file(tiny_mirror)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match=rf"{path}"):
        second = load("tiny", "train")
    assert torch.equal(second.images, first.images)


def test_a_cache_file_without_its_digest_is_rebuilt(tiny_mirror):
    load("tiny", "train")
    path = _cache_file(tiny_mirror)
    path.with_name(path.name + ".sha256").unlink()
    with pytest.warns(RuntimeWarning, match="no .sha256 digest"):
        load("tiny", "train")
    assert path.with_name(path.name + ".sha256").is_file()


def test_relative_repro_data_means_the_callers_directory(tiny_mirror, monkeypatch, tmp_path):
    caller = tmp_path
    monkeypatch.setenv("REPRO_DATA", os.path.relpath(tiny_mirror, caller))
    monkeypatch.setenv("REPRO_CACHE", "cache")
    monkeypatch.setenv("PWD", str(caller))
    kernel_dir = tmp_path / "papers" / "tiny"
    kernel_dir.mkdir(parents=True)
    monkeypatch.chdir(kernel_dir)   # a notebook kernel runs in papers/<slug>/
    assert images.mirror_root() == tiny_mirror.resolve()
    assert images.cache_dir() == caller / "cache"
    assert len(load("tiny", "train")) == 40
    assert os.environ["REPRO_DATA"] == str(tiny_mirror.resolve())   # fixed once for every child process


def test_no_mirror_and_no_hub_fails_fast_naming_repro_data(tiny_mirror, monkeypatch):
    card = tiny_mirror.parent / "cards" / "tiny.md"
    text = card.read_text()
    front = yaml.safe_load(text.split("---")[1])
    front["hub_id"] = "someone/tiny"
    card.write_text("---\n" + yaml.safe_dump(front) + "---\nA test dataset.\n")
    monkeypatch.delenv("REPRO_DATA")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # nothing listens there: an offline machine
    tick = time.perf_counter()
    with pytest.raises(MissingDataError, match=r"REPRO_DATA is not set.*cannot be reached.*Set REPRO_DATA"):
        load("tiny", "train")
    assert time.perf_counter() - tick < 10


def test_an_unwritable_cache_directory_is_named_with_its_variable(tiny_mirror, monkeypatch, tmp_path):
    from lib.repro.store import StorageError

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(StorageError, match=r"decoded-data cache \(REPRO_CACHE\) directory .* is not writable"):
        load("tiny", "train")


def test_temporary_files_of_a_killed_cache_write_are_removed(tiny_mirror):
    load("tiny", "train")
    path = _cache_file(tiny_mirror)
    stale = path.with_name(f".{path.name}.x1y2.tmp")
    stale.write_bytes(b"half a cache")
    load("tiny", "train")
    assert not stale.exists()
