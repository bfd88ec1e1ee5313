"""The emulator must never be the bottleneck of a benchmark.

1. Fast feed: events/s delivered to one stream client that only counts lines, at a requested rate;
   the ratio delivered/requested must reach 1.0 for a rate of 50,000/s.
2. History: resident memory of an emulator holding 1,000 devices x 1,000 events, against the same
   emulator with no history (the baseline), and the rate at which that history is served.
"""

from __future__ import annotations

import time

from benchmarks.measure import cpu_seconds, rss_bytes
from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import client_settings

FEED_RATE = 50_000
WARM_UP, WINDOW = 2.0, 10.0


def fast_feed(rate: int = FEED_RATE) -> float:
    with EmulatorProcess("--rate", str(rate), "--history-span", "0", "--devices", "1000") as emulator:
        url = f"{emulator.api_url}/projects/{emulator.project_id}/devices:stream"
        with emulator.http.get(url, stream=True, timeout=30) as stream:
            chunks = stream.iter_content(chunk_size=None)
            started = time.perf_counter()
            while time.perf_counter() - started < WARM_UP:
                next(chunks)
            assert emulator._process is not None
            pid = emulator._process.pid
            cpu_before, lines, window_start = cpu_seconds(pid), 0, time.perf_counter()
            while (elapsed := time.perf_counter() - window_start) < WINDOW:
                lines += next(chunks).count(b"\n")
            cpu = (cpu_seconds(pid) - cpu_before) / elapsed
        status = emulator.status()
    delivered = lines / elapsed
    print(
        f"fast feed: requested {rate:,}/s, delivered {delivered:,.0f} lines/s to one client, "
        f"ratio {delivered / rate:.3f}; emulator CPU {cpu:.0%} of a core; "
        f"simulated events skipped {status['simulated_events_skipped']:,}"
    )
    return delivered / rate


def history_memory(devices: int = 1000, events_per_device: int = 1000) -> float:
    interval = 1.0
    args = ("--rate", "0", "--devices", str(devices), "--history-interval", str(interval))
    with EmulatorProcess(*args, "--history-span", "0") as empty:
        assert empty._process is not None
        baseline = rss_bytes(empty._process.pid)
    started = time.perf_counter()
    with EmulatorProcess(*args, "--history-span", str(events_per_device * interval)) as full:
        startup = time.perf_counter() - started
        assert full._process is not None
        loaded = rss_bytes(full._process.pid)
        total = full.status()["events_recorded"]
        with DisruptiveClient(client_settings(full)) as client:
            device_ids = [device.device_id for device in client.devices(full.project_id)][:100]
        read, started = 0, time.perf_counter()
        for device_id in device_ids:
            url = f"{full.api_url}/projects/{full.project_id}/devices/{device_id}/events"
            params: dict[str, str | int] = {"page_size": 1000, "start_time": "2000-01-01T00:00:00Z"}
            read += len(full.http.get(url, params=params, timeout=60).json()["events"])
        serve = read / (time.perf_counter() - started)
    print(
        f"history: {total:,} events in {loaded / 2**20:,.0f} MiB resident "
        f"(baseline without history {baseline / 2**20:,.0f} MiB, ratio {loaded / baseline:.1f}; "
        f"{(loaded - baseline) / total:,.0f} bytes per event); generated in {startup:.1f} s; "
        f"served {serve:,.0f} events/s over {read:,} events of 100 devices"
    )
    return loaded


def main() -> None:
    fast_feed()
    history_memory()


if __name__ == "__main__":
    main()
