"""The digits bench: every generated domain regenerates bit for bit from its card; transforms by hand; errors."""
import os

import pytest
import torch

from lib.data import ChecksumError, DOMAINS, load_domain, restrict_classes
from lib.data.domains import (GENERATED, blend_with_patches, colorize, generate, generated_card_names,
                              load_generated_card, rotate, tensor_digest, to_rgb28)

needs_mirror = pytest.mark.skipif(not os.environ.get("REPRO_DATA"), reason="REPRO_DATA is not set: no local mirror")


def test_every_generated_domain_has_a_card_naming_generator_seed_sources_and_digests():
    assert set(GENERATED) <= set(generated_card_names())
    for name in GENERATED:
        card = load_generated_card(name)
        assert card.sources[0] == "mnist" and isinstance(card.seed, int) and card.generator.startswith("lib.data.domains")
        assert set(card.splits) == {"train", "test"} and card.body.strip()


@needs_mirror
@pytest.mark.parametrize("name", GENERATED)
@pytest.mark.parametrize("split", ["train", "test"])
def test_generated_split_is_reproducible_bit_for_bit_from_its_card(name, split):
    card = load_generated_card(name)
    images, labels = generate(name, split, card.seed, card.parameters)
    assert images.shape == (card.splits[split]["rows"], 3, 28, 28) and images.dtype == torch.uint8
    assert tensor_digest(images, labels) == card.splits[split]["sha256"]


@needs_mirror
def test_load_domain_gives_one_format_for_every_domain_and_balanced_subsets(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path))
    for name in DOMAINS:
        data = load_domain(name, "test", per_class=3)
        assert data.images.shape == (30, 3, 28, 28) and data.images.dtype == torch.uint8
        assert torch.equal(torch.bincount(data.labels, minlength=10), torch.full((10,), 3))
    generated = load_domain("mnist-inverted", "test")
    assert generated.source["origin"] == "generated" and generated.source["tensors_sha256"] == \
        load_generated_card("mnist-inverted").splits["test"]["sha256"]
    mnist = load_domain("mnist", "test")
    assert torch.equal(generated.images, 255 - mnist.images) and torch.equal(generated.labels, mnist.labels)
    assert torch.equal(load_domain("mnist-inverted", "test").images, generated.images)      # from the cache


@needs_mirror
def test_a_generated_split_that_differs_from_its_card_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path))
    import lib.data.domains as domains
    real = domains.generate
    monkeypatch.setattr(domains, "generate", lambda *a: (lambda im, lab: (im ^ 1, lab))(*real(*a)))
    with pytest.raises(ChecksumError, match="mnist-inverted/test has sha256"):
        load_domain("mnist-inverted", "test")
    assert not list((tmp_path / "generated").rglob("*.pt")), "a refused split must not be cached"


def test_blend_is_the_absolute_difference_of_the_binarised_digit_and_the_drawn_crop():
    digits = torch.zeros(2, 3, 28, 28, dtype=torch.uint8)
    digits[:, :, 10:18, 12:14] = 255
    digits[:, :, 20, 5] = 40                             # a grey stroke pixel counts as stroke (binarised)
    backgrounds = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(2, 3, 32, 32)
    out = blend_with_patches(digits, backgrounds, seed=5)
    g = torch.Generator().manual_seed(5)
    which, top, left = (torch.randint(0, 2, (2,), generator=g), torch.randint(0, 5, (2,), generator=g),
                        torch.randint(0, 5, (2,), generator=g))
    for i in range(2):
        patch = backgrounds[which[i], :, top[i]:top[i] + 28, left[i]:left[i] + 28]
        binary = (digits[i] > 0).short() * 255
        assert torch.equal(out[i], (patch.short() - binary).abs().to(torch.uint8))


def test_colorize_maps_black_to_background_and_white_to_foreground():
    digits = torch.zeros(4, 3, 28, 28, dtype=torch.uint8)
    digits[:, :, :, 14:] = 255
    out = colorize(digits, seed=0).float() / 255
    bg, fg = out[:, :, 0, 0], out[:, :, 0, 27]
    assert (out[:, :, :, :14] == out[:, :, :1, :1]).all() and (out[:, :, :, 14:] == out[:, :, :1, 27:]).all()
    assert ((fg - bg).abs().mean(1) >= 0.5 - 1 / 255).all()


def test_rotate_by_90_degrees_is_an_exact_counter_clockwise_quarter_turn_and_0_is_identity():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3, 3, 28, 28), generator=g, dtype=torch.uint8)
    assert torch.equal(rotate(x, 0), x)
    assert torch.equal(rotate(x, 90), torch.rot90(x, 1, dims=(2, 3)))


def test_to_rgb28_resizes_and_replicates_grey():
    usps_like = torch.full((2, 1, 16, 16), 200, dtype=torch.uint8)
    out = to_rgb28(usps_like)
    assert out.shape == (2, 3, 28, 28) and (out == 200).all()
    with pytest.raises(ValueError, match="uint8"):
        to_rgb28(usps_like.float())


def test_restrict_classes_keeps_only_those_labels():
    from lib.data import ImageData
    data = ImageData(torch.zeros(20, 3, 28, 28, dtype=torch.uint8), torch.arange(20) % 10, [str(i) for i in range(10)],
                     "mnist", "test")
    part = restrict_classes(data, [0, 3, 3, 7])
    assert sorted(part.labels.unique().tolist()) == [0, 3, 7] and len(part) == 6 and part.source["classes"] == [0, 3, 7]
    with pytest.raises(ValueError, match="subset of 0..9"):
        restrict_classes(data, [10])


def test_unknown_domain_and_split_are_named():
    with pytest.raises(ValueError, match="accepted: mnist, usps, mnist-m"):
        load_domain("svhn", "train")
    with pytest.raises(ValueError, match="accepted: train, test"):
        load_domain("mnist", "valid")
