"""Generated sections inside a page that also holds other text: ``<!-- begin: name -->`` ... ``<!-- end: name -->``.

A generator (``make bench``, ``ci/drift_report.py``) rewrites only its own section, so several generators
and hand-written prose share one page without overwriting each other.
"""
from __future__ import annotations

import pathlib
import re

from .store import atomic_write, write_json_atomic


def replace_section(path: str | pathlib.Path, name: str, body: str, *, title: str | None = None) -> str:
    """Put ``body`` between the markers of section ``name`` in ``path`` (appended if absent); returns the page.

    ``title`` is the page's first line when the file does not exist yet. The file is replaced atomically.
    """
    path = pathlib.Path(path)
    begin, end = f"<!-- begin: {name} (generated; do not edit by hand) -->", f"<!-- end: {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else (f"# {title}\n" if title else "")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))
    return text


def publish(record: str | pathlib.Path, data: dict, page: str | pathlib.Path, name: str, body: str, *,
            title: str | None = None) -> str:
    """Commit-ready output of a generator: ``data`` as the JSON ``record`` it was rendered from, and ``body``
    as section ``name`` of ``page``; both written atomically. Returns the page."""
    write_json_atomic(record, data)
    return replace_section(page, name, body, title=title)
