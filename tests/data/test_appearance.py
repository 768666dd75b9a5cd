"""Appearance shifts: each split regenerates bit for bit from its card, pairs row by row with the clean subset, and
each transform does what it says."""
import os

import pytest
import torch

from lib.data import load
from lib.data.appearance import SHIFTS, appearance_shift, load_shifted
from lib.data.domains import load_generated_card, tensor_digest

needs_mirror = pytest.mark.skipif(not os.environ.get("REPRO_DATA"), reason="REPRO_DATA is not set: no local mirror")


@needs_mirror
@pytest.mark.parametrize("shift", SHIFTS)
def test_shifted_split_is_reproducible_bit_for_bit_from_its_card(shift):
    card = load_generated_card("cifar10-shifted")
    base = load("cifar10", "test")
    assert tensor_digest(appearance_shift(base.images, shift), base.labels) == card.splits[f"test-{shift}"]["sha256"]


@needs_mirror
def test_shifted_subset_pairs_with_the_clean_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path))
    clean = load("cifar10", "test", per_class=5)
    shifted = load_shifted("cifar10", "test", "inverted", per_class=5)
    assert torch.equal(shifted.labels, clean.labels) and torch.equal(shifted.images, 255 - clean.images)
    assert shifted.source["indices_sha256"] == clean.source["indices_sha256"]


def test_each_transform_by_its_defining_property():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 8, 8), generator=g, dtype=torch.uint8)
    grey = appearance_shift(x, "grayscale")
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    luma = (0.299 * x[:, 0].float() + 0.587 * x[:, 1].float() + 0.114 * x[:, 2].float())
    assert (grey[:, 0].float() - luma).abs().max() < 1.5          # torchvision truncates to uint8
    assert torch.equal(appearance_shift(x, "channel-permuted"), x[:, [2, 0, 1]])
    assert torch.equal(appearance_shift(x, "inverted"), 255 - x)
    low = appearance_shift(x, "low-contrast").float()
    assert low.std() < 0.6 * x.float().std()                       # contrast halved (up to rounding)
    with pytest.raises(ValueError, match="accepted: grayscale, low-contrast"):
        appearance_shift(x, "sepia")
