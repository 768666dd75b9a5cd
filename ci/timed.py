"""Run a command and record its wall time: ``ci/timed.py <name> -- <command ...>``.

Writes ``_build/timings/<name>.json`` (seconds, command, exit status) and exits with the command's status.
`make test` reads these records to print the CI time per chapter and its projection (tests/conftest.py).
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "_build" / "timings"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: ci/timed.py <name> -- <command ...>", file=sys.stderr)
        return 2
    name, command = argv[0], argv[2:]
    tick = time.perf_counter()
    status = subprocess.call(command)
    seconds = time.perf_counter() - tick
    TIMINGS.mkdir(parents=True, exist_ok=True)
    (TIMINGS / f"{name}.json").write_text(json.dumps({"seconds": seconds, "command": command, "status": status}))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
