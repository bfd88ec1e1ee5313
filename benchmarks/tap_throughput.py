"""The tap's records/s on stdout against DT's official client, both whole processes reading the same
stream in the same run; and the tap's peak memory over 1,000,000 events, which must stay flat.

The stream comes from `replay_feed`, a stand-in that serves a million events made up front as fast as
they are read, so that the clients, not the server, set the pace. A bare reader (requests, counting
lines) shows the ceiling of the transport. The tap runs as users run it: the console script, RECORD
lines on stdout (into a file in memory, counted once it has ended). The official client only
iterates `Stream.event_stream`, doing far less per event than the tap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EVENTS = 1_000_000
ROUNDS = 3
TAP = Path(sys.executable).parent / "tap-disruptive"
RECORD = b'"type":"RECORD","stream":"events"'


def peak_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:  # the process has just ended
        pass
    return 0


def start_feed(events: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    feed = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.replay_feed", "--events", str(events)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert feed.stdout is not None
    return feed, json.loads(feed.stdout.readline())


OFFICIAL = """
import sys, time, disruptive
info = {info!r}
disruptive.base_url = info["api_url"]
auth = disruptive.Auth.service_account(info["key_id"], info["key_secret"], info["email"])
auth.token_endpoint = info["token_url"]
disruptive.default_auth = auth
count, started = 0, None
for event in disruptive.Stream.event_stream(info["project_id"]):
    if started is None:
        started = time.perf_counter()
    count += 1
    if count >= {events}:
        break
print(count / (time.perf_counter() - started))
"""

BARE = """
import time, requests
info = {info!r}
url = f"{{info['api_url']}}/projects/{{info['project_id']}}/devices:stream"
lines, started = 0, None
with requests.get(url, stream=True, timeout=30) as response:
    for chunk in response.iter_content(chunk_size=1 << 16):
        if started is None:
            started = time.perf_counter()
        lines += chunk.count(b"\\n")
        if lines >= {events}:
            break
print(lines / (time.perf_counter() - started))
"""


def script_rate(script: str, info: dict[str, Any], events: int) -> float:
    code = script.format(info=info, events=events)
    return float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )


def count_records(path: Path) -> int:
    """RECORD lines of the events stream in a file, read a piece at a time (a marker split between two
    pieces is counted once)."""
    count, tail = 0, b""
    with path.open("rb") as lines:
        while piece := lines.read(1 << 24):
            text = tail + piece
            count += text.count(RECORD)
            tail = text[-(len(RECORD) - 1) :]
    return count


def tap_run(info: dict[str, Any], events: int) -> tuple[float, int, int, int]:
    """(records/s, records, peak bytes after 100,000 records, peak bytes at the end).

    The tap writes its RECORD lines to a file in memory (tmpfs), as cheap a destination as a pipe
    without a third process reading it; the rate runs from its first record to its exit.
    """
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        config = {
            "project_ids": [info["project_id"]],
            "key_id": info["key_id"],
            "key_secret": info["key_secret"],
            "email": info["email"],
            "api_url": info["api_url"],
            "token_url": info["token_url"],
            "max_events": events,
        }
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        output = Path(tmp) / "output.jsonl"
        with output.open("wb") as out:
            tap = subprocess.Popen([str(TAP), "--config", str(path)], stdout=out, stderr=subprocess.DEVNULL)
            started, early_peak, final_peak = 0.0, 0, 0
            while tap.poll() is None:
                size = output.stat().st_size
                if size and not started:
                    started = time.perf_counter()
                # The peak resident size only grows; the last reading before the tap exits is its peak.
                final_peak = max(final_peak, peak_rss(tap.pid))
                if not early_peak and size >= 100_000 * 400:  # about 100,000 records
                    early_peak = final_peak
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
        records = count_records(output)
    return records / elapsed, records, early_peak, final_peak


def main(events: int = EVENTS, rounds: int = ROUNDS) -> None:
    """Rounds of official client then tap, on the same feed: this machine's load drifts, so each round's
    ratio compares two runs made moments apart, and the median round is the figure."""
    feed, info = start_feed(events)
    try:
        bare = script_rate(BARE, info, events)
        results = []
        for _ in range(rounds):
            official = script_rate(OFFICIAL, info, events)
            rate, records, early_peak, final_peak = tap_run(info, events)
            results.append((rate / official, official, rate, records, early_peak, final_peak))
    finally:
        feed.kill()
        feed.wait()
    print(f"the same {events:,} events, each reader a process of its own, {rounds} rounds:")
    print(f"  bare reader (requests, counting lines): {bare:,.0f} lines/s")
    for ratio, official, rate, records, _, _ in results:
        print(
            f"  round: DT's official client {official:,.0f} events/s; the tap {rate:,.0f} records/s "
            f"({records:,} RECORD lines); ratio {ratio:.2f}"
        )
    ratio, official, rate, records, early_peak, final_peak = sorted(results)[len(results) // 2]
    print(
        f"  median round: ratio tap / official client {ratio:.2f} ({rate:,.0f} vs {official:,.0f} per s)\n"
        f"  tap peak memory: {early_peak / 2**20:,.0f} MiB after 100,000 records, "
        f"{final_peak / 2**20:,.0f} MiB after {records:,} (ratio {final_peak / max(early_peak, 1):.2f})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else EVENTS)
