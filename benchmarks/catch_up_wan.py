"""Catching up from history over a remote DT's network: what it costs in requests, 429s and time.

An emulator answers each request 60 ms later and allows 40 a second (`--latency 0.06 --rate-limit 40`),
as measured of a real network; it holds a day of 200 devices, an event each every 5 minutes (57,600),
and simulates nothing more. Four readers read the whole day of every device, one after another, each in
a process of its own (for its own peak memory), with the emulator's counts read before and after each:

1. ours: `DisruptiveClient.follow(project, start_time=..., live=False)`;
2. DT's official client, `EventHistory.list_events` one device after another;
3. the same on 8 threads;
4. the minimum: one request per page of 1,000 events per device, paced at the rate limit (plain
   `requests`, HTTP Basic).

The minimum of requests is the sum over devices of ceil(events / 1,000), at least 1 each (from the
emulator's ledger); the least time is that over the rate limit. The goals compare ours to them.

`python -m benchmarks catch_up_wan` takes CATCH_UP_WAN_LATENCY, CATCH_UP_WAN_RATE_LIMIT,
CATCH_UP_WAN_DEVICES and CATCH_UP_WAN_DAYS from the environment;
`python -m benchmarks.catch_up_wan --latency 0.06 --rate-limit 40 --devices 200 --days 1` takes them as
arguments. It reports and exits 0 whatever the figures, unless a reader loses events.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from benchmarks.catch_up import read_ours
from benchmarks.measure import peak_rss_bytes
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.ids import split_target_name
from tap_disruptive.model.times import format_timestamp, timestamp_seconds

DAY = 86_400.0
INTERVAL = 300.0  # one event per device every 5 minutes
PAGE = 1000  # the emulator's largest history page, and what the minimum reader asks for
THREADS = 8
# Our reader's fixed costs before history pays: a token and the device list, a few round trips.
START_UP = 1.0
READERS = ("ours", "official", "official_8_threads", "minimum")


# --- the readers, each run in a child process --------------------------------------------------------------


def _ours(info: dict[str, Any], start: str, _rate: float) -> tuple[int, int]:
    return read_ours(info, start), 0


def _official_reads(info: dict[str, Any], start: str, threads: int) -> tuple[int, int]:
    """Events read, and devices whose reading raised (DT's client gives up after 3 retries of a 429)."""
    import disruptive  # noqa: PLC0415 - only this reader's process pays for it

    from benchmarks.official import use_official_client_at  # noqa: PLC0415

    use_official_client_at(info)
    project = info["project_id"]
    devices = [device.device_id for device in disruptive.Device.list_devices(project)]

    def read(device_id: str) -> int | None:
        try:
            return len(disruptive.EventHistory.list_events(device_id, project, start_time=start))
        except disruptive.errors.DTApiError as error:
            print(f"{device_id}: {type(error).__name__}", file=sys.stderr)
            return None

    if threads == 1:
        counts = [read(device_id) for device_id in devices]
    else:
        with ThreadPoolExecutor(threads) as pool:
            counts = list(pool.map(read, devices))
    return sum(n for n in counts if n is not None), sum(n is None for n in counts)


def _official(info: dict[str, Any], start: str, _rate: float) -> tuple[int, int]:
    return _official_reads(info, start, 1)


def _official_8_threads(info: dict[str, Any], start: str, _rate: float) -> tuple[int, int]:
    return _official_reads(info, start, THREADS)


class Pacer:
    """Hands out request slots `1 / rate` seconds apart, to any number of threads (none with rate 0)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            slot = max(self._next, time.monotonic())
            self._next = slot + self._interval
        time.sleep(max(0.0, slot - time.monotonic()))


def _minimum(info: dict[str, Any], start: str, rate: float) -> tuple[int, int]:
    pacer = Pacer(rate)
    session = requests.Session()
    session.auth = (info["key_id"], info["key_secret"])
    base = f"{info['api_url']}/projects/{info['project_id']}/devices"

    def pages(url: str, key: str, params: dict[str, Any]) -> list[Any]:
        found: list[Any] = []
        token = ""
        while True:
            pacer.wait()
            response = session.get(url, params={**params, "page_token": token}, timeout=60)
            if response.status_code == 429:  # not expected when paced; waited out if it comes
                time.sleep(int(response.headers["Retry-After"]))
                continue
            response.raise_for_status()
            page = response.json()
            found += page[key]
            token = page["nextPageToken"]
            if not token:
                return found

    devices = [device["name"].rsplit("/", 1)[1] for device in pages(base, "devices", {"page_size": 100})]
    history = {"start_time": start, "page_size": PAGE}
    with ThreadPoolExecutor(THREADS) as pool:
        counts = pool.map(
            lambda device_id: len(pages(f"{base}/{device_id}/events", "events", history)), devices
        )
        return sum(counts), 0


CHILDREN: dict[str, Callable[[dict[str, Any], str, float], tuple[int, int]]] = {
    "ours": _ours,
    "official": _official,
    "official_8_threads": _official_8_threads,
    "minimum": _minimum,
}


def child(reader: str, info_json: str, start: str, rate: str) -> None:
    """Run one reader and print (events, failed devices, seconds, peak resident MiB) as JSON."""
    info = json.loads(info_json)
    started = time.perf_counter()
    events, failed = CHILDREN[reader](info, start, float(rate))
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes(os.getpid()) / 2**20
    print(json.dumps({"events": events, "failed": failed, "seconds": seconds, "peak_mib": peak}))


# --- the parent: the emulator, the readers in turn, the report ------------------------------------------


def run_reader(reader: str, emulator: EmulatorProcess, start: str, rate: float) -> dict[str, Any]:
    before = emulator.status()
    command = [sys.executable, "-m", "benchmarks.catch_up_wan", "child", reader, json.dumps(emulator.info)]
    result = subprocess.run([*command, start, str(rate)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"reader {reader} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    after = emulator.status()
    row: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    requests_made = _made(before["requests"], after["requests"])
    row["history_requests"] = requests_made["history"]
    row["requests"] = sum(requests_made.values())
    row["throttled"] = sum(_made(before["throttled"], after["throttled"]).values())
    return row


def _made(before: dict[str, int], after: dict[str, int]) -> Counter[str]:
    return Counter({kind: after.get(kind, 0) - before.get(kind, 0) for kind in after})


def minimum_requests(emulator: EmulatorProcess, start: float, devices: int) -> tuple[int, int]:
    """From the ledger: the events since `start`, and the fewest history requests that read them,
    ceil(events / page) per device and at least one (a device without events still costs one)."""
    events, _ = emulator.ledger()
    per_device = Counter(split_target_name(event["targetName"])[1] for event in events)
    since = sum(1 for event in events if timestamp_seconds(event["timestamp"]) >= start)
    least = sum(max(1, math.ceil(n / PAGE)) for n in per_device.values()) + devices - len(per_device)
    return since, least


def _options(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m benchmarks.catch_up_wan")
    parser.add_argument("--latency", type=float, default=float(env("CATCH_UP_WAN_LATENCY", "0.06")))
    parser.add_argument("--rate-limit", type=float, default=float(env("CATCH_UP_WAN_RATE_LIMIT", "40")))
    parser.add_argument("--devices", type=int, default=int(env("CATCH_UP_WAN_DEVICES", "200")))
    parser.add_argument("--days", type=float, default=float(env("CATCH_UP_WAN_DAYS", "1")))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = _options(argv or [])
    span = options.days * DAY
    args = ["--rate", "0", "--devices", str(options.devices), "--indexing-delay", "0"]
    args += ["--history-span", f"{span:g}", "--history-interval", f"{INTERVAL:g}"]
    pace = {"latency": options.latency, "rate_limit": options.rate_limit}
    rows: dict[str, dict[str, Any]] = {}
    with EmulatorProcess(*args, startup_timeout=600, **pace) as emulator:
        start_seconds = time.time() - span - 60
        start = format_timestamp(start_seconds)
        expected, least = minimum_requests(emulator, start_seconds, options.devices)
        for reader in READERS:
            rows[reader] = run_reader(reader, emulator, start, options.rate_limit)
            print(json.dumps({"reader": reader, **rows[reader]}), flush=True)
    report(options, expected, least, rows)


# The table's columns: title, row key, format, width.
COLUMNS = [
    ("events", "events", ",", 8),
    ("history req", "history_requests", ",", 12),
    ("all req", "requests", ",", 8),
    ("429s", "throttled", ",", 6),
    ("wall s", "seconds", ".1f", 8),
    ("peak MiB", "peak_mib", ".0f", 9),
]


def report(options: argparse.Namespace, expected: int, least: int, rows: dict[str, dict[str, Any]]) -> None:
    rate, devices = options.rate_limit, options.devices
    limit = f"{rate:g} requests/s" if rate > 0 else "no rate limit"
    print(f"{devices} devices x {options.days:g} day(s), {expected:,} events in the ledger; ", end="")
    print(f"{options.latency * 1000:g} ms a request, {limit}")
    print(f"  {'reader':<20}" + "".join(f"{title:>{width}}" for title, _, _, width in COLUMNS))
    for reader, row in rows.items():
        cells = "".join(f"{row[key]:>{width}{shape}}" for _, key, shape, width in COLUMNS)
        print(f"  {reader:<20}{cells}")
    ours, threaded = rows["ours"], rows["official_8_threads"]
    least_seconds = least / rate if rate > 0 else 0.0
    print(f"goals: at least {least} history requests (the minimum reader made ", end="")
    print(f"{rows['minimum']['history_requests']}), {least_seconds:.1f} s at the rate limit")
    _goal("ours' history requests", ours["history_requests"], 1.5 * least + devices, "1.5*minimum + devices")
    wall_goal = 1.3 * least_seconds + START_UP
    _goal("ours' wall s", ours["seconds"], wall_goal, f"1.3*(minimum/rate) + {START_UP:g} s start-up")
    _goal("ours' 429 share", ours["throttled"] / max(1, ours["requests"]), 0.05, "of all its requests")
    ratio = ours["seconds"] / threaded["seconds"]
    print(f"  wall of ours / official on {THREADS} threads: {ratio:.2f} (below 1: ours is faster)")
    lost = [
        f"{reader} read {row['events']:,} of {expected:,} ({row['failed']} devices failed)"
        for reader, row in rows.items()
        if row["events"] != expected or row["failed"]
    ]
    if lost:
        sys.exit("events lost: " + "; ".join(lost))


def _goal(what: str, value: float, bound: float, formula: str) -> None:
    shown = f"{value:.1%}" if bound < 1 else f"{value:,.4g}"
    wanted = f"{bound:.0%}" if bound < 1 else f"{bound:,.4g}"
    print(f"  {what}: {shown}; goal at most {wanted} ({formula}): {'met' if value <= bound else 'missed'}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "child":
        child(*sys.argv[2:])
    else:
        main(sys.argv[1:])
