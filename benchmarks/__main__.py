"""Run every benchmark: `python -m benchmarks [name ...]`."""

from __future__ import annotations

import sys

from benchmarks import emulator_feed, follower_throughput, gap_fill, tap_throughput, trigger_latency

BENCHMARKS = {
    "emulator_feed": emulator_feed.main,
    "follower_throughput": follower_throughput.main,
    "gap_fill": gap_fill.main,
    "tap_throughput": tap_throughput.main,
    "trigger_latency": trigger_latency.main,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    for name in names:
        print(f"== {name}", flush=True)
        BENCHMARKS[name]()


main()
