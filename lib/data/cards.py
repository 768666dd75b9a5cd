"""Data cards: one Markdown file per dataset in ``data_cards/``, with YAML front matter.

A card states where a dataset comes from and exactly what the local mirror holds: the Hugging Face hub
id whose schema the mirror follows, license and citation, the features, the splits with their row
counts and files, and the sha256 of every data file. The body is a short datasheet in Markdown.

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
    hashes = meta["sha256"]
    if not isinstance(hashes, dict) or not hashes:
        raise ValueError(f"{where}: 'sha256' must be a non-empty mapping file -> sha256")
    for rel, digest in hashes.items():
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise ValueError(f"{where}: sha256 of {rel!r} is not 64 lowercase hex digits: {digest!r}")
    for split, spec in splits.items():
        if not isinstance(spec, dict) or "rows" not in spec or "files" not in spec:
            raise ValueError(f"{where}: split {split!r} needs 'rows' and 'files'")
        if not isinstance(spec["rows"], int) or spec["rows"] < 0:
            raise ValueError(f"{where}: split {split!r} has invalid rows {spec['rows']!r}")
        if not isinstance(spec["files"], list) or not spec["files"]:
            raise ValueError(f"{where}: split {split!r} lists no files")
        for rel in spec["files"]:
            if rel not in hashes:
                raise ValueError(f"{where}: file {rel!r} of split {split!r} has no sha256 entry")
    for key in ("features", "sha256"):
        if meta[key] is not None and not isinstance(meta[key], dict):
            raise ValueError(f"{where}: {key!r} must be a mapping or null")
    for key in ("label_names", "deviations"):
        if meta[key] is not None and not isinstance(meta[key], list):
            raise ValueError(f"{where}: {key!r} must be a list or null")


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
    extra = {k: v for k, v in meta.items() if k not in REQUIRED_KEYS}
    return DataCard(**known, body=body, path=path, extra=extra)
