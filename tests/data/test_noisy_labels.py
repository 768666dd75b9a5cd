"""Symmetric label noise: exact rate, never the clean class, uniform over the others, seeded, digest."""
import hashlib

import pytest
import torch

from lib.data import label_digest, symmetric_noise


def test_exact_rate_and_flipped_labels_differ_from_the_clean_ones():
    clean = torch.arange(1000) % 10
    noisy, flipped = symmetric_noise(clean, 0.4, 10, seed=0)
    assert flipped.sum() == 400
    assert (noisy[flipped] != clean[flipped]).all() and (noisy[~flipped] == clean[~flipped]).all()
    assert torch.equal(symmetric_noise(clean, 0.0, 10, seed=0)[0], clean)


def test_flips_are_uniform_over_the_other_classes():
    clean = torch.zeros(90000, dtype=torch.long)
    noisy, flipped = symmetric_noise(clean, 1.0, 10, seed=1)
    counts = torch.bincount(noisy, minlength=10)
    assert counts[0] == 0
    expected = 10000
    assert ((counts[1:] - expected).abs() < 5 * expected ** 0.5).all()      # 5 sigma of a multinomial cell


def test_seeded_and_digest_is_stable():
    clean = torch.arange(500) % 10
    a, _ = symmetric_noise(clean, 0.2, 10, seed=3)
    b, _ = symmetric_noise(clean, 0.2, 10, seed=3)
    c, _ = symmetric_noise(clean, 0.2, 10, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert label_digest(a) == label_digest(b.int()) != label_digest(c)
    # little-endian int64 bytes, whatever the dtype: [0, 1] -> 16 bytes
    assert label_digest(torch.tensor([0, 1], dtype=torch.uint8)) == hashlib.sha256(bytes(8) + bytes([1]) + bytes(7)).hexdigest()


@pytest.mark.parametrize("args, match", [((1.5, 10), "noise rate"), ((0.2, 1), "2 classes")])
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        symmetric_noise(torch.arange(10) % 2, *args, seed=0)


def test_out_of_range_labels_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        symmetric_noise(torch.tensor([0, 3]), 0.5, 3, seed=0)


needs_mirror = pytest.mark.skipif(not __import__("os").environ.get("REPRO_DATA"), reason="REPRO_DATA is not set")


@needs_mirror
@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_carded_noisy_labels_regenerate_and_subsets_keep_their_rows_labels(rate):
    from lib.data import load
    from lib.data.domains import load_generated_card
    from lib.data.noisy_labels import noisy_train

    card = load_generated_card("cifar10-noisy-labels")
    full = load("cifar10", "train")
    assert label_digest(symmetric_noise(full.labels, rate, 10, card.seed)[0]) == \
        card.splits[f"train-noise{round(rate * 100)}"]["sha256"]
    noisy, clean = noisy_train("cifar10", rate, per_class=100)
    subset = load("cifar10", "train", per_class=100)
    assert torch.equal(noisy.images, subset.images) and torch.equal(clean, subset.labels)
    # the subset's rows keep the whole split's noisy labels (not a fresh draw on the subset)
    from lib.data import balanced_subset
    whole = symmetric_noise(full.labels, rate, 10, card.seed)[0]
    assert torch.equal(noisy.labels, whole[balanced_subset(full.labels, 100)])
    realised = (noisy.labels != clean).float().mean().item()
    assert abs(realised - rate) < 0.05 and noisy.source["label_noise"]["noise_rate_realised"] == pytest.approx(realised)
    with pytest.raises(ValueError, match="accepted: 0.2, 0.4"):
        noisy_train("cifar10", 0.3)


@needs_mirror
def test_load_labels_reads_the_label_column_without_decoding(tmp_path, monkeypatch):
    from lib.data import load, load_labels
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path))
    labels = load_labels("cifar10", "test")
    assert len(labels) == 10000 and not list(tmp_path.rglob("*.pt"))       # nothing decoded or cached
    subset = load("cifar10", "test", per_class=3)
    from lib.data import balanced_subset
    assert torch.equal(subset.labels, labels[balanced_subset(labels, 3)])
