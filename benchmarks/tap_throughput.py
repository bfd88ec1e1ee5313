"""The tap's records/s on stdout from the emulator's fast feed, against DT's official client consuming the
same feed in the same run; and the tap's peak memory over 1,000,000 events, which must stay flat.

The tap runs as users run it (the console script, RECORD lines on stdout, read here by a pipe); the
official client only iterates `Stream.event_stream`, doing far less per event.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import disruptive

from benchmarks.follower_throughput import measure
from benchmarks.official import use_official_client
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import tap_config

# Faster than either consumer, but not so much faster that a million events leave the emulator holding a
# backlog past its slow-consumer limit (it would cut the tap off, as a real server does).
FEED_RATE = 40_000
EVENTS = 1_000_000
TAP = Path(sys.executable).parent / "tap-disruptive"


def peak_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:  # the process has just ended
        pass
    return 0


def main(events: int = EVENTS) -> None:
    args = ("--rate", str(FEED_RATE), "--history-span", "0", "--devices", "1000")
    with EmulatorProcess(*args) as emulator, tempfile.TemporaryDirectory() as tmp:
        use_official_client(emulator)

        def official() -> Iterator[int]:
            for _event in disruptive.Stream.event_stream(emulator.project_id):
                yield 1

        base_rate, base_cpu_rate, _ = measure(official())
        config = tap_config(emulator, max_events=events)
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config))
        tap = subprocess.Popen(
            [str(TAP), "--config", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert tap.stdout is not None
        records, started, early_peak, final_peak = 0, 0.0, 0, 0
        marker = b'"type":"RECORD","stream":"events"'
        while chunk := tap.stdout.read1(1 << 20):  # type: ignore[attr-defined]
            found = chunk.count(marker)
            if found and not started:
                started = time.perf_counter()
            records += found
            # The peak resident size only grows; the last reading before the tap exits is its peak.
            final_peak = max(final_peak, peak_rss(tap.pid))
            if not early_peak and records >= 100_000:
                early_peak = final_peak
        elapsed = time.perf_counter() - started
        tap.wait()
    rate = records / elapsed
    print(
        f"official client: {base_rate:,.0f} events/s ({base_cpu_rate:,.0f} per CPU-second)\n"
        f"tap: {records:,} records in {elapsed:.1f} s = {rate:,.0f} records/s on stdout\n"
        f"ratio tap / official client: {rate / base_rate:.2f}\n"
        f"tap peak memory: {early_peak / 2**20:,.0f} MiB after 100,000 records, "
        f"{final_peak / 2**20:,.0f} MiB after {records:,} (ratio {final_peak / max(early_peak, 1):.2f})"
    )


if __name__ == "__main__":
    main()
