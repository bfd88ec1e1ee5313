"""Run every benchmark: `python -m benchmarks [name ...]`."""

from __future__ import annotations

import sys

from benchmarks import (
    catch_up,
    catch_up_scale,
    catch_up_wan,
    deployment_latency,
    emulator_feed,
    follower_throughput,
    push_latency,
    receiver_throughput,
    tap_throughput,
    trigger_latency,
    watcher_requests,
)

BENCHMARKS = {
    "catch_up": catch_up.main,
    "catch_up_scale": catch_up_scale.main,
    "catch_up_wan": catch_up_wan.main,
    "deployment_latency": deployment_latency.main,
    "emulator_feed": emulator_feed.main,
    "follower_throughput": follower_throughput.main,
    "push_latency": push_latency.main,
    "receiver_throughput": receiver_throughput.main,
    "tap_throughput": tap_throughput.main,
    "trigger_latency": trigger_latency.main,
    "watcher_requests": watcher_requests.main,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    for name in names:
        print(f"== {name}", flush=True)
        BENCHMARKS[name]()


main()
