"""The digits domain-adaptation bench: real and procedurally shifted digit domains in one format.

Every domain is an ``ImageData`` of ``(N, 3, 28, 28)`` uint8 images and labels 0..9, so one backbone reads
all of them and any pair can be a (source, target) task:

* ``mnist`` — MNIST (LeCun et al., 1998), grey replicated to three channels;
* ``usps`` — USPS (Hull, 1994), 16 × 16 resized to 28 × 28 (bilinear, antialiased), grey to three channels;
* generated from MNIST, each by a deterministic function of the MNIST split and a fixed seed, and described
  by a data card in ``data_cards/generated/`` that names the generator, its version, its seed, its sources
  and the sha256 of the generated tensors (``tests/data/test_domains.py`` regenerates every split and
  compares):

  - ``mnist-m`` — an MNIST-M-like target: MNIST digits blended over colour patches (Ganin & Lempitsky,
    ICML 2015, describe the blending only in words). The blend follows the widely used re-creation script
    ``create_mnistm.py`` of pumpikano/tf-dann: the digit is binarised (``x > 0`` → 255) and the image is the
    per-channel difference ``|patch − digit|``. The 28 × 28 patches are cropped from CIFAR-10 (the original
    uses BSDS500 photographs, not in the mirror): train digits over CIFAR-10 *train* images, test digits over
    CIFAR-10 *test* images;
  - ``mnist-inverted`` — ``255 − x``;
  - ``mnist-colored`` — a random foreground and background colour per image, ``x·c_fg + (1 − x)·c_bg``;
  - ``mnist-rotated`` — every digit rotated by a fixed angle (45° counter-clockwise; torchvision's bilinear
    ``rotate``, zero fill).

Variants for the settings of the part's papers:

* ``restrict_classes(data, classes)`` — a partial-DA target (BA3US: the target holds a subset of the
  source's classes), labels kept as they are;
* ``lib.nn.domain_adaptation.BlackBoxPredictor`` — a source model that exposes only its softmax outputs
  (DINE, BETA).

``load_domain(name, split, per_class=...)`` returns the domain (a class-balanced subset with ``per_class``,
chosen by ``lib.data.balanced_subset``). The generated tensors are cached beside the decoded mirror data,
keyed by the card's digest, and checked against it whenever they are generated.
"""
from __future__ import annotations

import hashlib
import pathlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import yaml
from filelock import FileLock

from .cards import parse_front_matter
from .images import ChecksumError, ImageData, balanced_subset, cache_dir, load, load_cache, save_cache

GENERATED_CARDS_DIR = pathlib.Path(__file__).resolve().parents[2] / "data_cards" / "generated"
SIZE = 28
REAL = ("mnist", "usps")
GENERATED = ("mnist-m", "mnist-inverted", "mnist-colored", "mnist-rotated")
DOMAINS = REAL + GENERATED
GENERATED_KEYS = ("name", "title", "generator", "generator_version", "seed", "parameters", "sources", "license",
                  "splits", "deviations")


def tensor_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """sha256 over the images' bytes (uint8, C-contiguous) then the labels as little-endian int64."""
    digest = hashlib.sha256(images.contiguous().numpy().tobytes())
    digest.update(labels.long().numpy().astype("<i8").tobytes())
    return digest.hexdigest()


@dataclass
class GeneratedCard:
    """The front matter of ``data_cards/generated/<name>.md`` and its body."""

    name: str
    title: str
    generator: str
    generator_version: int
    seed: int
    parameters: dict
    sources: list[str]
    license: str
    splits: dict[str, dict]
    deviations: list[str]
    body: str = ""
    path: pathlib.Path | None = None


def generated_card_names(cards_dir: pathlib.Path | None = None) -> list[str]:
    folder = GENERATED_CARDS_DIR if cards_dir is None else pathlib.Path(cards_dir)
    return sorted(p.stem for p in folder.glob("*.md")) if folder.is_dir() else []


def load_generated_card(name: str, cards_dir: pathlib.Path | None = None) -> GeneratedCard:
    """Read and validate ``data_cards/generated/<name>.md``; errors name the card and the bad key."""
    names = generated_card_names(cards_dir)
    if name not in names:
        raise ValueError(f"no card for generated dataset {name!r}; accepted: {', '.join(names) or '(none)'}")
    path = (GENERATED_CARDS_DIR if cards_dir is None else pathlib.Path(cards_dir)) / f"{name}.md"
    meta, body = parse_front_matter(path.read_text(encoding="utf-8"))
    where = f"generated data card {path}"
    for key in GENERATED_KEYS:
        if key not in meta:
            raise ValueError(f"{where}: missing required key {key!r}")
    if meta["name"] != name:
        raise ValueError(f"{where}: name {meta['name']!r} differs from the file name {name!r}")
    for split, spec in meta["splits"].items():
        digest = spec.get("sha256") if isinstance(spec, dict) else None
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise ValueError(f"{where}: split {split!r} needs a 'sha256' of 64 lowercase hex digits, got {digest!r}")
        if not isinstance(spec.get("rows"), int):
            raise ValueError(f"{where}: split {split!r} needs an integer 'rows'")
    return GeneratedCard(**{k: meta[k] for k in GENERATED_KEYS}, body=body, path=path)


# --- the transforms (pure functions of their inputs and a seed) -------------------------------------------------

def to_rgb28(images: torch.Tensor) -> torch.Tensor:
    """``(N, 1|3, H, W)`` uint8 → ``(N, 3, 28, 28)`` uint8: bilinear antialiased resize, grey replicated."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 1|3, H, W) uint8 images, got {tuple(images.shape)} {images.dtype}")
    if images.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(images.float(), size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
        images = x.round().clamp(0, 255).to(torch.uint8)
    return images.expand(-1, 3, -1, -1).contiguous() if images.shape[1] == 1 else images.contiguous()


def blend_with_patches(digits: torch.Tensor, backgrounds: torch.Tensor, seed: int) -> torch.Tensor:
    """MNIST-M-like blend: the binarised digit (``x > 0`` → 255) subtracted from one random 28 × 28 crop of a
    random background image, ``|patch − digit|`` per channel. ``digits (N, 3, 28, 28)``, ``backgrounds
    (M, 3, H ≥ 28, W ≥ 28)``, both uint8."""
    g = torch.Generator().manual_seed(seed)
    n, (h, w) = len(digits), backgrounds.shape[-2:]
    which = torch.randint(0, len(backgrounds), (n,), generator=g)
    top = torch.randint(0, h - SIZE + 1, (n,), generator=g)
    left = torch.randint(0, w - SIZE + 1, (n,), generator=g)
    rows = (top[:, None] + torch.arange(SIZE))[:, :, None]                     # (N, 28, 1)
    cols = (left[:, None] + torch.arange(SIZE))[:, None, :]                    # (N, 1, 28)
    chosen = backgrounds[which]                                                # (N, 3, H, W)
    patches = chosen[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)   # (N, 3, 28, 28)
    binary = (digits > 0).short() * 255
    return (patches.short() - binary).abs().to(torch.uint8)


def colorize(digits: torch.Tensor, seed: int) -> torch.Tensor:
    """A random foreground and background colour per image: ``x·c_fg + (1 − x)·c_bg`` with ``x`` the grey level
    in [0, 1]; the two colours are drawn uniformly in RGB and re-drawn until they differ by ≥ 0.5 in mean."""
    g = torch.Generator().manual_seed(seed)
    n = len(digits)
    fg, bg = torch.rand(n, 3, generator=g), torch.rand(n, 3, generator=g)
    for _ in range(100):
        close = (fg - bg).abs().mean(1) < 0.5
        if not close.any():
            break
        fg[close], bg[close] = torch.rand(int(close.sum()), 3, generator=g), torch.rand(int(close.sum()), 3, generator=g)
    x = digits[:, :1].float() / 255.0
    out = x * fg[:, :, None, None] + (1 - x) * bg[:, :, None, None]
    return (out * 255.0).round().clamp(0, 255).to(torch.uint8)


def rotate(digits: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate every image by ``degrees`` counter-clockwise about its centre (torchvision's ``rotate``, bilinear,
    zero fill), in chunks."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    return torch.cat([TF.rotate(chunk, float(degrees), interpolation=InterpolationMode.BILINEAR)
                      for chunk in digits.split(8192)]).contiguous()


def generate(name: str, split: str, seed: int, parameters: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of the generated domain ``name`` for ``split``, from the mirror's MNIST (and CIFAR-10)."""
    if name not in GENERATED:
        raise ValueError(f"unknown generated domain {name!r}; accepted: {', '.join(GENERATED)}")
    mnist = load("mnist", split)
    digits = to_rgb28(mnist.images)
    if name == "mnist-m":
        backgrounds = load("cifar10", split).images
        images = blend_with_patches(digits, backgrounds, seed)
    elif name == "mnist-inverted":
        images = 255 - digits
    elif name == "mnist-colored":
        images = colorize(digits, seed)
    else:
        images = rotate(digits, float(parameters["degrees"]))
    return images.contiguous(), mnist.labels.clone()


# --- loading ----------------------------------------------------------------------------------------------------

def load_domain(name: str, split: str, *, per_class: int | None = None, subset_seed: int = 0) -> ImageData:
    """Domain ``name`` (one of ``DOMAINS``), ``split`` train|test, as ``(N, 3, 28, 28)`` uint8 ``ImageData``."""
    if name not in DOMAINS:
        raise ValueError(f"unknown digit domain {name!r}; accepted: {', '.join(DOMAINS)}")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r} for domain {name!r}; accepted: train, test")
    if name in REAL:
        base = load(name, split)
        data = ImageData(to_rgb28(base.images), base.labels, base.classes, name, split,
                         {**base.source, "transform": "to_rgb28"})
    else:
        card = load_generated_card(name)
        spec = card.splits[split]
        path = cache_dir() / "generated" / name / f"{split}-v{card.generator_version}-{spec['sha256'][:16]}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            cached = load_cache(path, keys=("images", "labels"))
            if cached is None:
                images, labels = generate(name, split, card.seed, card.parameters)
                digest = tensor_digest(images, labels)
                if digest != spec["sha256"]:
                    raise ChecksumError(
                        f"generated {name}/{split} has sha256 {digest}, but its card {card.path} states "
                        f"{spec['sha256']}: the generator, its sources or the platform's arithmetic changed")
                cached = {"images": images, "labels": labels}
                save_cache(cached, path)
        data = ImageData(cached["images"], cached["labels"], [str(i) for i in range(10)], name, split,
                         {"origin": "generated", "card": name, "generator": card.generator,
                          "generator_version": card.generator_version, "seed": card.seed,
                          "tensors_sha256": spec["sha256"], "rows": len(cached["labels"])})
    if per_class is not None:
        data = data.subset(balanced_subset(data.labels, per_class, subset_seed))
    return data


def restrict_classes(data: ImageData, classes) -> ImageData:
    """The rows of ``data`` whose label is in ``classes`` (a partial-DA target); labels unchanged."""
    classes = sorted({int(c) for c in classes})
    bad = [c for c in classes if not 0 <= c < data.num_classes]
    if not classes or bad:
        raise ValueError(f"classes must be a non-empty subset of 0..{data.num_classes - 1}, got {classes}")
    keep = torch.isin(data.labels, torch.tensor(classes))
    out = data.subset(torch.nonzero(keep).flatten())
    out.source = {**out.source, "classes": classes}
    return out


def card_front_matter(name: str, split_digests: dict[str, tuple[int, str]], **meta) -> str:
    """YAML front matter for a generated card (used once, to write the card; the digests are computed)."""
    splits = {s: {"rows": rows, "sha256": digest} for s, (rows, digest) in split_digests.items()}
    return yaml.safe_dump({"name": name, **meta, "splits": splits}, sort_keys=False, allow_unicode=True)
