"""A history-only catch-up at scale, in memory: requests, time and peak memory for 100, 1,000 and 10,000
devices over 1 and 30 days, each device reporting every 5 minutes.

DT is faked in memory (`GeneratedDT`): a device's events are computed when a page asks for them, never
stored, so a run of millions of events holds only what the client holds. A history-only `Follower` is
driven to the end on a virtual clock, each request answered at once (no sockets, no sleeps), with a
consumer that counts events and keeps the bookmark and the device frontiers, as the tap does.

Figures per configuration: history requests made against the fewest DT's pages allow (each device
max(1, ceil(events / 1000))); the time those requests take at DT's rate limit, computed (requests /
rate), not measured; the CPU time of the in-memory run itself; peak resident memory (VmHWM) of the
process that ran it, each configuration in a process of its own. 10,000 devices over 30 days (86 M
events) is not run: a device's requests do not depend on the other devices (the plan reads each on its
own, and every device here has the same density), so its requests are those of the 1,000-device 30-day
run times ten, marked computed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit

from benchmarks.measure import peak_rss_bytes
from tap_disruptive.client.protocol.bookmarks import bookmark_after
from tap_disruptive.client.protocol.clock import ServerClock
from tap_disruptive.client.protocol.commands import CollectSend, Delivery, Send, Sleep, StartSend
from tap_disruptive.client.protocol.errors import ConnectionFailed
from tap_disruptive.client.protocol.follower import Follower
from tap_disruptive.client.protocol.http import HttpRequest, HttpResponse
from tap_disruptive.client.protocol.settings import ClientSettings, Credentials
from tap_disruptive.model.times import micros_stamp, stamp_micros

PROJECT = "c0benchproject000000"
DAY = 86_400
# DT's time during a run: fixed, to the second (its Date header has no finer grain).
NOW = 1_800_000_000
# Each device's first event: a little more than the longest span back.
ORIGIN_MICROS = (NOW - 30 * DAY - 3_600) * 1_000_000
PERIOD_MICROS = 300 * 1_000_000
# Every event is stamped before this, so that a run's span (up to DT's time) is whole.
WORLD_END_MICROS = (NOW - 60) * 1_000_000
PAGE_LIMIT = 1000
DEVICE_PAGE = 100
SEED = 0x5EED
# DT's rate limit, the stand-in: requests a second.
RATE = 40.0
CONFIGURATIONS = [(100, 1), (100, 30), (1000, 1), (1000, 30), (10_000, 1), (10_000, 30)]
# Too long to run (86 M events); computed from the run of the same span on fewer devices.
COMPUTED = {(10_000, 30): (1000, 30)}
SETTINGS = ClientSettings(
    Credentials(
        "c0benchkey0000000000", "bench-secret-0123456789-012345678", "sa@bench.serviceaccount.d21s.com"
    ),
    api_url="https://bench.invalid/v2",
    token_url="https://bench.invalid/oauth2/token",
)


def _jitter(device: int, index: int) -> int:
    """Where within its 5 minutes event `index` of a device falls, in microseconds: seeded, and less
    than the period, so that a device's events stay in order, one per period."""
    mixed = (device * 0x9E3779B97F4A7C15 + index * 0xC2B2AE3D27D4EB4F + SEED) & 0xFFFFFFFFFFFFFFFF
    mixed = ((mixed ^ (mixed >> 31)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return (mixed ^ (mixed >> 29)) % PERIOD_MICROS


def _stamp(device: int, index: int) -> int:
    return ORIGIN_MICROS + index * PERIOD_MICROS + _jitter(device, index)


# Events per device: all those stamped before the world's end (the same count for every device, since
# event k always falls in period k).
EVENTS_PER_DEVICE = (WORLD_END_MICROS - ORIGIN_MICROS) // PERIOD_MICROS


def first_at(device: int, micros: int) -> int:
    """Index of the device's first event stamped at or after `micros`: its period, or the next one."""
    index = (micros - ORIGIN_MICROS) // PERIOD_MICROS
    if index < 0:
        return 0
    if index >= EVENTS_PER_DEVICE:
        return EVENTS_PER_DEVICE
    return index if _stamp(device, index) >= micros else min(index + 1, EVENTS_PER_DEVICE)


def device_id(device: int) -> str:
    return f"c0bench{device:013d}"


class GeneratedDT:
    """DT's token, devices and history endpoints over generated events; counts what is asked."""

    def __init__(self, devices: int) -> None:
        self.devices = devices
        self.history_requests = 0
        self.device_requests = 0
        self.token_requests = 0
        self.date = format_datetime(datetime.fromtimestamp(NOW, UTC), usegmt=True)

    def answer(self, request: HttpRequest) -> HttpResponse | ConnectionFailed:
        path = urlsplit(request.url).path
        params = dict(parse_qsl(urlsplit(request.url).query) + list(request.params))
        if path.endswith("/oauth2/token"):
            self.token_requests += 1
            return self._response(b'{"access_token":"bench-token","expires_in":3600}')
        if path.endswith("/devices"):
            self.device_requests += 1
            return self._devices(int(params.get("page_token") or 0))
        if path.endswith("/events"):
            self.history_requests += 1
            return self._history(int(path.split("/")[-2][7:]), params)
        return HttpResponse(404, {"date": self.date}, b'{"error":"not found","code":404}')

    def _response(self, body: bytes) -> HttpResponse:
        return HttpResponse(200, {"date": self.date, "content-type": "application/json"}, body)

    def _devices(self, offset: int) -> HttpResponse:
        end = min(offset + DEVICE_PAGE, self.devices)
        listed = [
            {"name": f"projects/{PROJECT}/devices/{device_id(n)}", "type": "temperature", "labels": {}}
            for n in range(offset, end)
        ]
        token = str(end) if end < self.devices else ""
        return self._response(json.dumps({"devices": listed, "nextPageToken": token}).encode())

    def _history(self, device: int, params: dict[str, str]) -> HttpResponse:
        """A page of the device's events stamped in [start_time, end_time), newest first, from the offset
        its token holds; only the page's events are made."""
        low = first_at(device, stamp_micros(params["start_time"]))
        high = (
            first_at(device, stamp_micros(params["end_time"])) if "end_time" in params else EVENTS_PER_DEVICE
        )
        size = min(int(params.get("page_size", "100")), PAGE_LIMIT)
        offset = int(params.get("page_token") or 0)
        top = high - offset
        bottom = max(low, top - size)
        target = f"projects/{PROJECT}/devices/{device_id(device)}"
        events = []
        for index in range(top - 1, bottom - 1, -1):
            stamp = micros_stamp(_stamp(device, index))
            value = f"{15 + _jitter(device, index) % 1000 / 100:.2f}"
            events.append(
                f'{{"eventId":"e{device:07d}{index:012d}","targetName":"{target}","eventType":"temperature",'
                f'"data":{{"temperature":{{"value":{value},"updateTime":"{stamp}","samples":[{{"value":'
                f'{value},"sampleTime":"{stamp}"}}],"isBackfilled":false}}}},"timestamp":"{stamp}"}}'
            )
        token = str(offset + size) if bottom > low else ""
        body = f'{{"events":[{",".join(events)}],"nextPageToken":"{token}"}}'
        return self._response(body.encode())


def minimum_requests(devices: int, start_micros: int) -> tuple[int, int]:
    """(events in the span, the fewest history requests DT's pages allow for them)."""
    events = fewest = 0
    for device in range(devices):
        count = EVENTS_PER_DEVICE - first_at(device, start_micros)
        events += count
        fewest += max(1, math.ceil(count / PAGE_LIMIT))
    return events, fewest


def run(devices: int, days: int) -> dict[str, float]:
    """One history-only catch-up to the end, answered at once on a virtual clock."""
    now = float(NOW)
    dt = GeneratedDT(devices)

    def monotonic() -> float:
        return now - NOW + 1_000.0

    start_micros = NOW * 1_000_000 - days * DAY * 1_000_000
    expected, fewest = minimum_requests(devices, start_micros)
    follower = Follower(
        SETTINGS,
        PROJECT,
        start_time=micros_stamp(start_micros),
        live=False,
        clock=ServerClock(monotonic, lambda: now),
        monotonic=monotonic,
    )
    consumer = Consumer()
    steps = follower.run()
    answer: list[HttpResponse | ConnectionFailed] | int | None = None
    # Answers of requests started and not yet collected, by handle (the list's index).
    in_flight: list[list[HttpResponse | ConnectionFailed]] = []
    started = time.process_time()
    while True:
        try:
            command = steps.send(answer)
        except StopIteration:
            break
        answer = None
        if isinstance(command, Send):
            answer = [dt.answer(request) for request in command.requests]
        elif isinstance(command, StartSend):
            in_flight.append([dt.answer(request) for request in command.requests])
            answer = len(in_flight) - 1
        elif isinstance(command, CollectSend):
            answer = in_flight[command.handle]
            in_flight[command.handle] = []
        elif isinstance(command, Sleep):
            now += command.seconds
        elif isinstance(command, Delivery):
            consumer.take(command)
        else:
            raise AssertionError(f"a history-only run asked for {command!r}")
    seconds = time.process_time() - started
    if consumer.events != expected or follower.stats.history_requests != dt.history_requests:
        raise SystemExit(
            f"{devices:,} devices x {days} days: {consumer.events:,} events delivered of {expected:,}; "
            f"{follower.stats.history_requests:,} history requests counted, {dt.history_requests:,} answered"
        )
    return {
        "events": consumer.events,
        "minimum": fewest,
        "requests": follower.stats.history_requests,
        "device_requests": dt.device_requests,
        "token_requests": dt.token_requests,
        "seconds": seconds,
        "peak_mib": peak_rss_bytes(os.getpid()) / 2**20,
    }


class Consumer:
    """Counts events, and keeps the bookmark and the device frontiers as the tap's STATE does."""

    def __init__(self) -> None:
        self.events = 0
        self.bookmark: str | None = None
        self.frontiers: dict[str, str] = {}
        self.last_seen: dict[str, str] = {}

    def take(self, delivery: Delivery) -> None:
        events = delivery.events
        self.events += len(events)
        if events:
            # A device's events come oldest first, each once: its stamps only grow (one event a stamp).
            device = events[0].device_id
            previous = self.last_seen.get(device, "")
            for event in events:
                if event.device_id != device or event.timestamp <= previous:
                    raise SystemExit(f"{event.event_id} out of order or again after {previous}")
                previous = event.timestamp
            self.last_seen[device] = previous
        self.bookmark = bookmark_after(self.bookmark, events, delivery.complete_until, len(events))
        if delivery.device_id is not None:
            frontier = self.frontiers.get(delivery.device_id)
            until = bookmark_after(frontier, events, delivery.device_until, len(events))
            if until is not None:
                self.frontiers[delivery.device_id] = until


def child(devices: str, days: str) -> None:
    """Run one configuration and print its figures as JSON."""
    print(json.dumps(run(int(devices), int(days))))


def run_child(devices: int, days: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.catch_up_scale", str(devices), str(days)]
    output = subprocess.run(command, capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise SystemExit(f"{devices:,} devices x {days} days failed:\n{output.stderr}{output.stdout}")
    result: dict[str, float] = json.loads(output.stdout.splitlines()[-1])
    return result


def computed(devices: int, days: int, measured: dict[str, float], sample: int) -> dict[str, float]:
    """Requests of a configuration not run: each device costs what a device of the run on `sample`
    devices over the same span cost, on average; events and the minimum are exact arithmetic."""
    events, fewest = minimum_requests(devices, NOW * 1_000_000 - days * DAY * 1_000_000)
    scale = devices / sample
    return {
        "events": events,
        "minimum": fewest,
        "requests": round(measured["requests"] * scale),
        "device_requests": math.ceil(devices / DEVICE_PAGE),
        "token_requests": measured["token_requests"],
        "seconds": math.nan,
        "peak_mib": math.nan,
    }


def main() -> None:
    results: dict[tuple[int, int], dict[str, float]] = {}
    for devices, days in CONFIGURATIONS:
        if (devices, days) in COMPUTED:
            sample = COMPUTED[devices, days]
            results[devices, days] = computed(devices, days, results[sample], sample[0])
        else:
            results[devices, days] = run_child(devices, days)
    print(
        f"history-only catch-up, one event a device every 5 minutes, pages of {PAGE_LIMIT}; "
        f"time at {RATE:.0f} requests/s is computed (history requests / {RATE:.0f}), not measured"
    )
    header = (
        f"{'devices':>8} {'days':>4} {'events':>12} {'minimum':>8} {'requests':>9} {'ratio':>6} "
        f"{'bound':>7} {f'at {RATE:.0f}/s':>10} {'run s':>8} {'peak MiB':>9}"
    )
    print(header)
    for (devices, days), result in results.items():
        bound = 1.5 * result["minimum"] + devices
        mark = "*" if (devices, days) in COMPUTED else " "
        run_seconds = "-" if math.isnan(result["seconds"]) else f"{result['seconds']:.1f}"
        peak = "-" if math.isnan(result["peak_mib"]) else f"{result['peak_mib']:.0f}"
        print(
            f"{devices:>8,} {days:>4} {result['events']:>12,.0f} {result['minimum']:>8,.0f} "
            f"{result['requests']:>8,.0f}{mark} {result['requests'] / result['minimum']:>6.2f} "
            f"{bound:>7,.0f} {_duration(result['requests'] / RATE):>10} {run_seconds:>8} {peak:>9}"
        )
    print(
        "requests: history requests (the follower's count, equal to the fake DT's); besides them, one token "
        f"request and one devices request per {DEVICE_PAGE} devices. bound: 1.5 x minimum + devices. "
        "run s: CPU time of the in-memory run (fake DT included)"
    )
    for (devices, days), (sample_devices, sample_days) in COMPUTED.items():
        print(
            f"* {devices:,} devices x {days} days not run: requests are those of "
            f"{sample_devices:,} devices x {sample_days} days x {devices // sample_devices} (the plan reads "
            "each device on its own, and every device here is as dense); events and minimum are exact"
        )
    flat = results[1000, 30]["peak_mib"] / results[1000, 1]["peak_mib"]
    print(
        f"peak memory, 1,000 devices: 30 days {results[1000, 30]['peak_mib']:.0f} MiB against 1 day "
        f"{results[1000, 1]['peak_mib']:.0f} MiB: ratio {flat:.2f} (goal: under 200 MiB, ratio near 1)"
    )
    # The plan holds what the devices in flight hold (`history_concurrency` of them), whatever their
    # number: at a given density, peak memory should not grow with the devices.
    by_devices = ", ".join(
        f"{devices:,} devices {result['peak_mib']:.0f} MiB"
        for (devices, days), result in results.items()
        if days == 30 and not math.isnan(result["peak_mib"])
    )
    print(f"peak memory over 30 days by devices: {by_devices}")
    over = [key for key, result in results.items() if result["requests"] > 1.5 * result["minimum"] + key[0]]
    if over:
        print(f"requests over 1.5 x minimum + devices: {over}")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


if __name__ == "__main__":
    if len(sys.argv) == 3:
        child(*sys.argv[1:])
    else:
        main()
