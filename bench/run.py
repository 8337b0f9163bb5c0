"""Run every benchmark in bench/ one after the other (what `make bench` does), then list the results.

Usage: .venv/bin/python bench/run.py [NAME ...]   (names without .py; default: all of them)
Each script writes its figures to bench/results/NAME.json; BENCHMARKS.md records them by hand.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Cheapest first, so a broken setup shows early; each one is independent of the others.
ALL = [
    "cells_at",
    "shelters",
    "sse_latency",
    "risk_writes",
    "targeted_warnings",
    "tiles_vs_tipg",
    "grid_import",
    "risk_sources_bulk",
    "soak",
]


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or ALL:
        print(f"\n=== bench/{name}.py ===", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent)
        print(f"=== {name}: {'ok' if code == 0 else f'exit {code}'} in {time.monotonic() - started:.0f} s")
        if code:
            failed.append(name)
    print(f"\nresults in {HERE / 'results'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
