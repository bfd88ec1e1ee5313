"""Run every benchmark: `python -m benchmarks [name ...]`."""

from __future__ import annotations

import sys

from benchmarks import emulator_feed

BENCHMARKS = {"emulator_feed": emulator_feed.main}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    for name in names:
        print(f"== {name}", flush=True)
        BENCHMARKS[name]()


main()
