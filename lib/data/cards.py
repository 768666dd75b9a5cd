"""Data cards: one Markdown file per dataset in ``data_cards/``, with YAML front matter.

A card states where a dataset comes from and exactly what the local mirror holds: the Hugging Face hub
id whose schema the mirror follows, license and citation, the features, the splits with their row
counts and files, and the sha256 of every data file. The body is a short datasheet in Markdown.

Paper-scale datasets that the offline mirror does not hold (ImageNet-1k, ADE20K, ...) have cards too, with
optional keys (``OPTIONAL_KEYS``): ``access`` (public, or gated and how to get it), ``offline_mirror`` (``false``,
or the splits it holds), ``git_sha1`` (git blob ids of files the book knows only from a public repository's tree),
and split ``files`` that may be glob patterns (``data/train-*.parquet``: hub shards whose number and checksums the
book has not recorded; ``lib.data`` then verifies them against the checksums recorded beside the user's copy).

>>> card = load_card("cifar10")            # doctest: +SKIP
>>> card.splits["train"]["rows"]           # 50000
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import yaml

CARDS_DIR = pathlib.Path(__file__).resolve().parents[2] / "data_cards"

REQUIRED_KEYS = (
    "name", "title", "hub_id", "hub_config", "license", "citation", "homepage", "format",
    "features", "label_names", "splits", "sha256", "deviations",
)
FORMATS = ("parquet", "raw")
# Optional front-matter keys, checked when present (everything else a card adds lands in ``DataCard.extra``).
OPTIONAL_KEYS = (
    "access",                 # how to get the data: "public download", or gated and what the user must do
    "offline_mirror",         # true (default): the offline mirror holds every file; false; or the splits it holds
    "git_sha1",               # file -> git blob id, for files the book knows only from a repository's tree
    "label_column",           # the default ClassLabel column when the features hold several
    "label_names_by_column",  # ClassLabel column -> its names, for columns other than the default
    "synsets",                # ImageFolder class-folder names in label order
    "imagefolder",            # split -> sub-folder of an ImageFolder tree (class folders below it)
    "hub_revision",           # the hub revision to load (e.g. the hub's automatic Parquet conversion)
    "image_stats",            # {mean: [...], std: [...]} on the 0..1 scale, for streamed sets
    "source_dataset",         # the card whose images a split list indexes (ImageNet-LT -> imagenet1k)
    "release_folders",        # split -> folder name in an official release tree (ADE20K: training, validation)
)
GLOB_CHARS = "*?["


def is_pattern(rel: str) -> bool:
    """Whether a split's file entry is a glob pattern (hub shards the card does not enumerate)."""
    return any(c in rel for c in GLOB_CHARS)


def _hex(value, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


class UnknownDatasetError(ValueError):
    """A dataset name that has no card in ``data_cards/``."""


@dataclass
class DataCard:
    """The front matter of ``data_cards/<name>.md`` plus its Markdown body."""

    name: str
    title: str
    hub_id: str | None
    hub_config: str | None
    license: str
    citation: str
    homepage: str | None
    format: str
    features: dict[str, str] | None
    label_names: list[str] | None
    splits: dict[str, dict]
    sha256: dict[str, str]
    deviations: list[str]
    body: str = ""
    path: pathlib.Path | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def in_offline_mirror(self, split: str) -> bool:
        """Whether the offline mirror (``$REPRO_DATA`` as the book ships it) holds ``split``'s files."""
        held = self.extra.get("offline_mirror", True)
        return split in held if isinstance(held, list) else bool(held)

    def expected_checksum(self, rel: str) -> tuple[str, str] | None:
        """``("sha256", hex)`` or ``("git-sha1", hex)`` the card states for file ``rel``, or None."""
        if rel in self.sha256:
            return "sha256", self.sha256[rel]
        if rel in (self.extra.get("git_sha1") or {}):
            return "git-sha1", self.extra["git_sha1"][rel]
        return None

    def label_names_of(self, column: str | None) -> list[str] | None:
        """Names of ClassLabel ``column`` (the default label column's are ``label_names``)."""
        if column is None or column == self.extra.get("label_column", column):
            return self.label_names
        return (self.extra.get("label_names_by_column") or {}).get(column)

    def split_files(self, split: str) -> list[str]:
        """File names of ``split``, relative to the dataset's mirror folder."""
        if split not in self.splits:
            raise ValueError(
                f"unknown split {split!r} for dataset {self.name!r}; accepted: {', '.join(self.splits)}")
        return list(self.splits[split]["files"])

    def data_files(self, root: str | pathlib.Path) -> dict[str, list[str]]:
        """``{split: [absolute paths]}`` under ``root/<name>/``, ready for ``datasets.load_dataset("parquet", ...)``."""
        base = pathlib.Path(root) / self.name
        return {split: [str(base / f) for f in spec["files"]] for split, spec in self.splits.items()}

    @property
    def num_rows(self) -> dict[str, int]:
        return {split: spec["rows"] for split, spec in self.splits.items()}


def parse_front_matter(text: str) -> tuple[dict, str]:
    """Split ``---``-delimited YAML front matter from a Markdown text: ``(front_matter, body)``."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ValueError("no YAML front matter: the text must start with a line '---'")
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            meta = yaml.safe_load("".join(lines[1:i]))
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                raise ValueError(f"front matter must be a YAML mapping, got {type(meta).__name__}")
            body = "".join(lines[i + 1:]).lstrip("\n")
            return meta, body
    raise ValueError("front matter is not closed: no second line '---'")


def _cards_dir(cards_dir: str | pathlib.Path | None) -> pathlib.Path:
    return CARDS_DIR if cards_dir is None else pathlib.Path(cards_dir)


def card_names(cards_dir: str | pathlib.Path | None = None) -> list[str]:
    """Sorted names of all datasets that have a card."""
    folder = _cards_dir(cards_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.md") if not p.name.startswith(("_", ".")))


def _validate(meta: dict, path: pathlib.Path) -> None:
    where = f"data card {path}"
    for key in REQUIRED_KEYS:
        if key not in meta:
            raise ValueError(f"{where}: missing required key {key!r}")
    if meta["name"] != path.stem:
        raise ValueError(f"{where}: name {meta['name']!r} differs from the file name {path.stem!r}")
    if meta["format"] not in FORMATS:
        raise ValueError(f"{where}: format {meta['format']!r} is not one of {', '.join(FORMATS)}")
    for key in ("title", "license", "citation"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise ValueError(f"{where}: {key!r} must be a non-empty string")
    splits = meta["splits"]
    if not isinstance(splits, dict) or not splits:
        raise ValueError(f"{where}: 'splits' must be a non-empty mapping split -> {{rows, files}}")
    hashes = meta["sha256"] if meta["sha256"] is not None else {}
    if not isinstance(hashes, dict):
        raise ValueError(f"{where}: 'sha256' must be a mapping file -> sha256 (or null when no listed file has one)")
    for rel, digest in hashes.items():
        if not _hex(digest, 64):
            raise ValueError(f"{where}: sha256 of {rel!r} is not 64 lowercase hex digits: {digest!r}")
    blobs = meta.get("git_sha1") or {}
    if not isinstance(blobs, dict):
        raise ValueError(f"{where}: 'git_sha1' must be a mapping file -> git blob id")
    for rel, digest in blobs.items():
        if not _hex(digest, 40):
            raise ValueError(f"{where}: git_sha1 of {rel!r} is not 40 lowercase hex digits: {digest!r}")
    for split, spec in splits.items():
        if not isinstance(spec, dict) or "rows" not in spec or "files" not in spec:
            raise ValueError(f"{where}: split {split!r} needs 'rows' and 'files'")
        if not isinstance(spec["rows"], int) or spec["rows"] < 0:
            raise ValueError(f"{where}: split {split!r} has invalid rows {spec['rows']!r}")
        if not isinstance(spec["files"], list) or not spec["files"]:
            raise ValueError(f"{where}: split {split!r} lists no files")
        for rel in spec["files"]:
            if not is_pattern(rel) and rel not in hashes and rel not in blobs:
                raise ValueError(f"{where}: file {rel!r} of split {split!r} has no sha256 (or git_sha1) entry")
    if meta["features"] is not None and not isinstance(meta["features"], dict):
        raise ValueError(f"{where}: 'features' must be a mapping or null")
    for key in ("label_names", "deviations"):
        if meta[key] is not None and not isinstance(meta[key], list):
            raise ValueError(f"{where}: {key!r} must be a list or null")
    _validate_optional(meta, where)


def _validate_optional(meta: dict, where: str) -> None:
    if "access" in meta and not (isinstance(meta["access"], str) and meta["access"].strip()):
        raise ValueError(f"{where}: 'access' must be a non-empty string")
    held = meta.get("offline_mirror", True)
    if not isinstance(held, (bool, list)) or (isinstance(held, list) and not set(held) <= set(meta["splits"])):
        raise ValueError(f"{where}: 'offline_mirror' must be true, false or a list of the card's splits, got {held!r}")
    features = meta["features"] or {}
    column = meta.get("label_column")
    if column is not None and not str(features.get(column, "")).startswith("ClassLabel"):
        raise ValueError(f"{where}: label_column {column!r} is not a ClassLabel feature of {sorted(features)}")
    for name, names in (meta.get("label_names_by_column") or {}).items():
        if not str(features.get(name, "")).startswith("ClassLabel") or not isinstance(names, list):
            raise ValueError(f"{where}: label_names_by_column[{name!r}] must list the names of a ClassLabel feature")
    for key in ("synsets",):
        if key in meta and not (isinstance(meta[key], list) and len(set(meta[key])) == len(meta[key])):
            raise ValueError(f"{where}: {key!r} must be a list of distinct names")
    if "imagefolder" in meta and not (isinstance(meta["imagefolder"], dict)
                                      and set(meta["imagefolder"]) <= set(meta["splits"])):
        raise ValueError(f"{where}: 'imagefolder' must map some of the card's splits to sub-folders")
    stats = meta.get("image_stats")
    if stats is not None and not (isinstance(stats, dict) and set(stats) == {"mean", "std"}
                                  and all(isinstance(stats[k], list) and len(stats[k]) == 3 for k in stats)):
        raise ValueError(f"{where}: 'image_stats' must be {{mean: [r, g, b], std: [r, g, b]}}")


def load_card(name: str, cards_dir: str | pathlib.Path | None = None) -> DataCard:
    """Read and validate ``<cards_dir>/<name>.md`` (default ``data_cards/``).

    Raises UnknownDatasetError (a ValueError) for a name without a card, listing the accepted names,
    and ValueError when the card lacks a required key or is malformed.
    """
    names = card_names(cards_dir)
    if name not in names:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; accepted names: {', '.join(names) if names else '(none: no cards found)'}")
    path = _cards_dir(cards_dir) / f"{name}.md"
    try:
        meta, body = parse_front_matter(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"data card {path}: {exc}") from exc
    _validate(meta, path)
    known = {k: meta[k] for k in REQUIRED_KEYS}
    known["sha256"] = meta["sha256"] or {}   # a card whose files are all patterns or git blobs may list none
    extra = {k: v for k, v in meta.items() if k not in REQUIRED_KEYS}
    return DataCard(**known, body=body, path=path, extra=extra)
