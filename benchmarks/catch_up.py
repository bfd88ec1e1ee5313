"""Catching up from history: time and peak memory, ours against DT's official client, and ours over a
long span.

1. An hour of history on 1,000 devices (a reading a minute each: 60,000 events), read in time order.
   The official client reads each device with `EventHistory.list_events` one after another, and since
   DT returns each device's history newest first, a consumer that needs time order holds everything
   and sorts it. Ours reads time slices across every device at once (`history_concurrency` in flight)
   and hands each slice over sorted, holding one slice at a time.
2. Our peak memory catching up on 30 days of 100 devices, against 1 day of the same devices: flat
   memory means a ratio near 1.

Each reader runs in a process of its own, so that its peak resident memory is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp

DEVICES = 1000


def _official(info: dict[str, Any], start: str) -> int:
    import disruptive  # noqa: PLC0415 - only the child process needs it

    from benchmarks.official import use_official_client_at  # noqa: PLC0415

    use_official_client_at(info)
    devices = disruptive.Device.list_devices(info["project_id"])
    events: list[Any] = []
    for device in devices:
        events += disruptive.EventHistory.list_events(device.device_id, info["project_id"], start_time=start)
    events.sort(key=lambda event: event.raw["timestamp"])
    return len(events)


def read_ours(info: dict[str, Any], start: str) -> int:
    """Events our client reads from `start` to now (`live=False`), counted as they are delivered."""
    from tap_disruptive.client.drivers.sync import DisruptiveClient  # noqa: PLC0415
    from tap_disruptive.client.protocol.settings import ClientSettings, Credentials  # noqa: PLC0415

    credentials = Credentials(info["key_id"], info["key_secret"], info["email"])
    settings = ClientSettings(credentials, api_url=info["api_url"], token_url=info["token_url"])
    count = 0
    with DisruptiveClient(settings) as client:
        for delivery in client.follow(info["project_id"], start_time=start, live=False).deliveries():
            count += len(delivery.events)
    return count


def child(reader: str, info_json: str, start: str) -> None:
    """Run one reader and print (events, seconds, peak resident MiB) as JSON."""
    info = json.loads(info_json)
    started = time.perf_counter()
    count = (_official if reader == "official" else read_ours)(info, start)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"events": count, "seconds": seconds, "peak_mib": peak}))


def run_child(reader: str, emulator: EmulatorProcess, start: str) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.catch_up", reader, json.dumps(emulator.info), start]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(output.splitlines()[-1])
    return result


def main() -> None:
    args = ("--rate", "0", "--devices", str(DEVICES), "--history-span", "3600", "--history-interval", "60")
    with EmulatorProcess(*args) as emulator:
        start = format_timestamp(time.time() - 3700)
        official = run_child("official", emulator, start)
        ours = run_child("ours", emulator, start)
    assert official["events"] == ours["events"], (official, ours)
    print(
        f"an hour of {DEVICES:,} devices ({ours['events']:,.0f} events), in time order:\n"
        f"  official list_events loop: {official['seconds']:.2f} s, peak {official['peak_mib']:.0f} MiB\n"
        f"  ours:                      {ours['seconds']:.2f} s, peak {ours['peak_mib']:.0f} MiB\n"
        f"  ratio: {official['seconds'] / ours['seconds']:.2f}x faster, "
        f"{official['peak_mib'] / ours['peak_mib']:.2f}x less memory"
    )
    spans = {}
    day = 86_400
    args = ("--rate", "0", "--devices", "100", "--history-span", str(30 * day), "--history-interval", "900")
    with EmulatorProcess(*args, startup_timeout=300) as emulator:
        for days in (1, 30):
            spans[days] = run_child("ours", emulator, format_timestamp(time.time() - days * day - 60))
    print(
        f"our catch-up of 100 devices: 1 day ({spans[1]['events']:,.0f} events) peak "
        f"{spans[1]['peak_mib']:.0f} MiB in {spans[1]['seconds']:.1f} s; 30 days ({spans[30]['events']:,.0f} "
        f"events) peak {spans[30]['peak_mib']:.0f} MiB in {spans[30]['seconds']:.1f} s; "
        f"ratio of peaks {spans[30]['peak_mib'] / spans[1]['peak_mib']:.2f}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4:
        child(*sys.argv[1:])
    else:
        main()
