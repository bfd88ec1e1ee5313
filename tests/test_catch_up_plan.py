"""What a catch-up costs DT, on the simulation: for random device densities (busy, quiet, silent, bursty),
a history-only run reads every event once, each device oldest first, in at most 1.5 x the fewest requests
DT's pages allow plus one a device; runs stopped part way and resumed from their STATE lose nothing and
read again only what each device had in flight (a window and two kept pages). And the pacer that spaces
every request, on a fake clock."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import replace
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from tap_disruptive.client.protocol.bookmarks import bookmark_after
from tap_disruptive.client.protocol.clock import ServerClock
from tap_disruptive.client.protocol.commands import CollectSend, Delivery, Send, Sleep, StartSend
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.follower import Follower
from tap_disruptive.client.protocol.http import HttpResponse
from tap_disruptive.client.protocol.pacing import RequestPacer
from tap_disruptive.client.protocol.settings import ClientSettings
from tap_disruptive.model.times import format_timestamp
from tests.support.simulation import PROJECT, SETTINGS, Device, SimulatedDT, VirtualClock

PAGE = 50
DAY = 86_400.0
PLAN_SETTINGS = replace(SETTINGS, history_page_size=PAGE, delivery_chunk=40, history_concurrency=4)

# A device's history over the day: how many events, and how they are spread.
densities = st.one_of(
    st.just(("silent", 0)),
    st.tuples(st.just("quiet"), st.integers(1, PAGE)),
    st.tuples(st.just("busy"), st.integers(PAGE + 1, 12 * PAGE)),
    st.tuples(st.just("bursty"), st.integers(PAGE + 1, 8 * PAGE)),
)


def _world(
    seed: int, kinds: list[tuple[str, int]], faults: int = 0
) -> tuple[SimulatedDT, VirtualClock, dict[str, int]]:
    rng = random.Random(seed)
    clock = VirtualClock()
    devices = [Device(f"dev{n:03d}", "temperature", {}) for n in range(len(kinds))]
    dt = SimulatedDT(clock, rng, devices, SETTINGS.ping_interval)
    dt.page_limit = PAGE
    counts = {}
    for device, (kind, count) in zip(devices, kinds, strict=True):
        if kind == "bursty":  # most of it within a few minutes, the rest spread over the day
            burst = rng.uniform(0, DAY - 600)
            stamps = [burst + rng.uniform(0, 300) for _ in range(count * 4 // 5)]
            stamps += [rng.uniform(0, DAY) for _ in range(count - len(stamps))]
        else:
            stamps = [rng.uniform(0, DAY) for _ in range(count)]
        for stamp in stamps:
            event_time = clock.now - DAY - 60 + stamp
            dt.publish(device.device_id, "temperature", event_time, 0.0)
        counts[device.device_id] = count
    for _ in range(faults):
        dt.http_fault(rng.choice(["rest_429", "rest_503", "rest_not_json"]), rng.randint(0, 40))
    return dt, clock, counts


class Reader:
    """Runs history-only followers one after another, each stopped (or not) after some deliveries,
    keeping the bookmark and the device frontiers as the tap's STATE does."""

    def __init__(
        self,
        dt: SimulatedDT,
        clock: VirtualClock,
        in_order: bool = False,
        client: ClientSettings = PLAN_SETTINGS,
    ) -> None:
        self.dt, self.clock, self.in_order, self.settings = dt, clock, in_order, client
        self.order: list[tuple[str, str]] = []
        self.census = 0
        self.slices = 0
        self.start = format_timestamp(clock.now - DAY - 120)
        self.bookmark: str | None = None
        self.devices: dict[str, str] = {}
        self.written: Counter[str] = Counter()
        self.by_device: dict[str, list[Event]] = {}
        self.requests = 0

    def run(self, stop_after: int | None, rng: random.Random) -> bool:
        """One run; True if it read to the end."""
        server_clock = ServerClock(self.clock.monotonic, lambda: self.clock.now)
        follower = Follower(
            self.settings,
            PROJECT,
            None,
            self.bookmark or self.start,
            live=False,
            in_order=self.in_order,
            device_starts=self.devices,
            clock=server_clock,
            monotonic=self.clock.monotonic,
        )
        steps = follower.run()
        answer: Any = None
        deliveries = 0
        in_flight: list[Any] = []
        try:
            while True:
                try:
                    command = steps.send(answer)
                except StopIteration:
                    return True
                answer = None
                if isinstance(command, Send):
                    self.clock.now += 0.05
                    answer = [self.dt.answer(request) for request in command.requests]
                elif isinstance(command, StartSend):
                    self.clock.now += 0.05
                    handle = len(in_flight)
                    in_flight.append([self.dt.answer(request) for request in command.requests])
                    answer = handle
                elif isinstance(command, CollectSend):
                    answer = in_flight[command.handle]
                elif isinstance(command, Sleep):
                    self.clock.now += command.seconds
                elif isinstance(command, Delivery):
                    taken = len(command.events)
                    if command.events and stop_after is not None:
                        deliveries += 1
                        if deliveries >= stop_after:
                            taken = rng.randint(0, len(command.events))
                    self.take(command, taken)
                    if taken < len(command.events) or (stop_after is not None and deliveries >= stop_after):
                        return False
        finally:
            steps.close()
            self.requests += follower.stats.history_requests
            self.census += follower.stats.census_requests
            self.slices += follower.stats.slices

    def take(self, delivery: Delivery, taken: int) -> None:
        for event in delivery.events[:taken]:
            self.written[event.event_id] += 1
            self.order.append((event.timestamp, event.event_id))
            self.by_device.setdefault(event.device_id, []).append(event)
        self.bookmark = bookmark_after(self.bookmark, delivery.events, delivery.complete_until, taken)
        if delivery.device_id is not None:
            until = bookmark_after(
                self.devices.get(delivery.device_id), delivery.events, delivery.device_until, taken
            )
            if until is not None:
                self.devices[delivery.device_id] = until
        self.check()

    def check(self) -> None:
        """Nothing at or before the bookmark, or a device's frontier, is unwritten."""
        for event in self.dt.ledger:
            mark = max(self.bookmark or "", self.devices.get(event.device_id, ""))
            assert event.stamp > mark or event.event_id in self.written, (
                f"{event.event_id} of {event.device_id} at {event.stamp} is behind {mark} but unwritten"
            )


def _minimum(counts: dict[str, int]) -> int:
    return sum(max(1, math.ceil(count / PAGE)) for count in counts.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kinds=st.lists(densities, min_size=1, max_size=12))
def test_a_catch_up_reads_every_event_once_in_near_the_fewest_requests(
    seed: int, kinds: list[tuple[str, int]]
) -> None:
    dt, clock, counts = _world(seed, kinds)
    reader = Reader(dt, clock)
    assert reader.run(None, random.Random(seed))
    assert sorted(reader.written) == sorted(event.event_id for event in dt.ledger)
    assert max(reader.written.values(), default=1) == 1
    for events in reader.by_device.values():
        keys = [(event.timestamp, event.event_id) for event in events]
        assert keys == sorted(keys), "a device's events come oldest first"
    bound = 1.5 * _minimum(counts) + len(counts)
    assert reader.requests <= bound, (reader.requests, _minimum(counts), counts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    kinds=st.lists(densities, min_size=1, max_size=8),
    stops=st.lists(st.integers(1, 12), max_size=6),
    faults=st.integers(0, 6),
)
def test_runs_stopped_anywhere_lose_nothing_and_read_again_only_what_was_in_flight(
    seed: int, kinds: list[tuple[str, int]], stops: list[int], faults: int
) -> None:
    dt, clock, counts = _world(seed, kinds, faults)
    reader = Reader(dt, clock)
    rng = random.Random(seed)
    finished = False
    for stop_after in stops:
        if reader.run(stop_after, rng):
            finished = True
            break
    if not finished:
        assert reader.run(None, rng)
    assert set(reader.written) == {event.event_id for event in dt.ledger}
    runs = len(stops) + 1
    # Each resume may read again what its predecessor had read but not delivered: a device's window and
    # the pages it kept (at most two).
    bound = 1.5 * _minimum(counts) + len(counts) + (runs - 1) * 3 * len(counts)
    assert reader.requests <= bound, (reader.requests, _minimum(counts), runs, counts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    quiet=st.lists(st.sampled_from([("silent", 0), ("quiet", 3), ("quiet", 10)]), min_size=1, max_size=10),
    busy=st.lists(st.integers(2 * PAGE, 6 * PAGE), min_size=1, max_size=3),
)
def test_a_catch_up_in_time_order_asks_quiet_devices_once_and_busy_ones_by_slice(
    seed: int, quiet: list[tuple[str, int]], busy: list[int]
) -> None:
    kinds = quiet + [("busy", count) for count in busy]
    dt, clock, _ = _world(seed, kinds)
    # Room to keep every quiet device's events (past `slice_events` kept, a device is read by slice), and
    # slices that the busy devices fill several times over.
    reader = Reader(dt, clock, in_order=True, client=replace(PLAN_SETTINGS, slice_events=4 * PAGE))
    assert reader.run(None, random.Random(seed))
    assert sorted(reader.written) == sorted(event.event_id for event in dt.ledger)
    assert max(reader.written.values(), default=1) == 1
    assert reader.order == sorted(reader.order), "in time order across devices"
    # One census request a device; after it, only the busy devices are asked, slice by slice, but for
    # the last slice of a history-only run, read up to DT's own now, past what the census covered.
    assert reader.census == len(kinds)
    quiet_asked = [dt.history_requests.get(f"dev{n:03d}", 0) for n in range(len(quiet))]
    assert all(asked <= 2 for asked in quiet_asked), (quiet_asked, dt.history_requests)
    assert reader.slices >= 3, reader.slices


# --- the pacer ---------------------------------------------------------------------------------------


def _answer(status: int, **headers: str) -> HttpResponse:
    return HttpResponse(status, {name.replace("_", "-"): value for name, value in headers.items()}, b"")


def _start_all(pacer: RequestPacer, count: int, now: float) -> float:
    """Start `count` requests as soon as the pacer lets them; the time of the last."""
    for _ in range(count):
        now = max(now, now + pacer.delay(now))
        pacer.started(now)
    return now


def test_the_pacer_lets_a_seconds_worth_go_at_once_then_spaces_requests_at_its_rate() -> None:
    pacer = RequestPacer(start_rate=10.0)
    assert _start_all(pacer, 10, 0.0) == 0.0
    assert _start_all(pacer, 10, 0.0) == pytest.approx(1.0)  # then 0.1 s apart
    assert pacer.requests == 20
    assert pacer.delay(1.05) > 0  # nothing saved up while it was busy
    assert pacer.delay(10.0) <= 0


def test_the_pacer_doubles_while_requests_wait_and_only_then() -> None:
    pacer = RequestPacer(start_rate=10.0)
    now = _start_all(pacer, 20, 0.0)
    pacer.answered(now - 0.1, now, _answer(200))
    assert pacer.rate == 20.0
    idle = RequestPacer(start_rate=10.0)
    idle.started(0.0)
    idle.answered(0.0, 5.0, _answer(200))  # one request in five seconds: no sign a higher rate is used
    assert idle.rate == 10.0


def test_a_burst_of_429s_cuts_the_rate_once_and_pauses_every_request_for_retry_after() -> None:
    pacer = RequestPacer(start_rate=40.0)
    sent = [0.0, 0.01, 0.02]
    for at in sent:
        pacer.started(at)
    for at in sent:  # three answers to requests sent before the cut: one cut
        pacer.answered(at, 0.1, _answer(429, retry_after="2"))
    assert pacer.rate == 40.0 * 0.5
    assert pacer.throttled == 3
    assert pacer.delay(0.1) == 2.0
    assert not pacer.probing
    pacer.started(2.2)
    pacer.answered(2.2, 2.3, _answer(429, retry_after="1"))  # a request sent after the cut: cut again
    assert pacer.rate == 40.0 * 0.5 * 0.5


def test_a_rate_limit_policy_header_sets_the_rate_and_max_request_rate_caps_it() -> None:
    pacer = RequestPacer(start_rate=10.0)
    pacer.answered(0.0, 0.1, _answer(200, ratelimit_policy="100;w=10"))
    assert pacer.rate == 0.95 * 10
    capped = RequestPacer(start_rate=50.0, max_rate=5.0)
    assert capped.rate == 5.0
    now = _start_all(capped, 30, 0.0)
    capped.answered(now, now + 1.5, _answer(200))
    assert capped.rate == 5.0
