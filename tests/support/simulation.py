"""A deterministic simulation of DT, in memory and on a virtual clock, that drives the protocol core with
no sockets and no sleeps: devices, an event ledger, history with an indexing delay and small newest-first
pages that shift as events are indexed, the stream with pings, and every fault the real service shows.

`SimulatedDT` answers the protocol's commands; `Run` drives one follower (a run of the tap, a trigger's
life) with a consumer that keeps a bookmark the way the tap does; `World` holds what outlives runs.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from tap_disruptive.client.protocol.bookmarks import bookmark_after
from tap_disruptive.client.protocol.clock import ServerClock
from tap_disruptive.client.protocol.commands import (
    TIMED_OUT,
    Answer,
    CloseStream,
    CollectSend,
    Command,
    Delivery,
    OpenStream,
    ReadStream,
    Send,
    Sleep,
    StartSend,
)
from tap_disruptive.client.protocol.errors import ConnectionFailed, DisruptiveError
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.follower import Follower
from tap_disruptive.client.protocol.http import HttpRequest, HttpResponse
from tap_disruptive.client.protocol.settings import ClientSettings, Credentials
from tap_disruptive.model.times import format_timestamp, stamp_and_seconds, timestamp_seconds

PROJECT = "c0simproject00000000"
EPOCH = 1_800_000_000.0
SETTINGS = ClientSettings(
    Credentials("c0simkey000000000000", "sim-secret-0123456789-0123456789", "sa@sim.serviceaccount.d21s.com"),
    api_url="https://sim.invalid/v2",
    token_url="https://sim.invalid/oauth2/token",
    slice_events=12,
    slice_seconds=300.0,
    # Smaller than a slice, so that a slice comes in several deliveries and a stop can fall between them.
    delivery_chunk=5,
    history_page_size=1000,
    max_attempts=6,
)
# DT's own limit on a history page, kept small so that every read goes over several pages.
PAGE_LIMIT = 3
STREAM_FAULTS = ("cut", "end", "stall", "blank", "garbage", "error", "error_v1", "bad_stamp", "ping_ahead")
HTTP_FAULTS = (
    "stream_503",
    "stream_429",
    "stream_502",
    "rest_503",
    "rest_429",
    "rest_not_json",
    "rest_401",
    "token_503",
)


@dataclass
class SimEvent:
    event_id: str
    device_id: str
    event_type: str
    timestamp: float  # the event's own time
    arrival: float  # when it reached DT (later for backfilled readings)
    indexed: float  # when history shows it
    stamp: str = ""

    def __post_init__(self) -> None:
        self.stamp, self.timestamp = stamp_and_seconds(self.timestamp)

    def raw(self) -> dict[str, Any]:
        stamp = self.stamp
        return {
            "eventId": self.event_id,
            "targetName": f"projects/{PROJECT}/devices/{self.device_id}",
            "eventType": self.event_type,
            "data": {self.event_type: {"updateTime": stamp}},
            "timestamp": stamp,
        }


@dataclass
class Device:
    device_id: str
    device_type: str
    labels: dict[str, str]

    def resource(self) -> dict[str, Any]:
        return {
            "name": f"projects/{PROJECT}/devices/{self.device_id}",
            "type": self.device_type,
            "labels": dict(self.labels),
        }


@dataclass
class Connection:
    """An open stream: what DT has written to it and the reader has not read yet."""

    opened: float
    event_types: frozenset[str] | None
    device_ids: set[str]
    buffer: bytearray = field(default_factory=bytearray)
    next_ping: float = 0.0
    stalled: bool = False
    # How the connection ends once its buffer is read: "cut", "end", or None while it lives.
    ending: str | None = None


class VirtualClock:
    def __init__(self, start: float = EPOCH) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now - EPOCH + 1_000.0


class SimulatedDT:
    """DT in memory: it answers the protocol's commands on the virtual clock."""

    def __init__(
        self, clock: VirtualClock, rng: random.Random, devices: list[Device], ping_interval: float
    ) -> None:
        self.clock = clock
        self.ping_interval = ping_interval
        self.rng = rng
        self.page_limit = PAGE_LIMIT
        # History requests answered, by device (429s included), to count what a catch-up costs.
        self.history_requests: dict[str, int] = {}
        self.devices = {device.device_id: device for device in devices}
        self.ledger: list[SimEvent] = []
        self.connection: Connection | None = None
        # Faults waiting for their requests: [kind, requests of that kind to let through first].
        self.pending_http: list[list[Any]] = []
        self.streamed: set[str] = set()
        self._ids = 0

    # --- the world -------------------------------------------------------------------------------------

    def publish(
        self,
        device_id: str,
        event_type: str,
        timestamp: float,
        index_delay: float,
        arrival: float | None = None,
    ) -> SimEvent:
        """An event reaching DT now, or at `arrival` (history from before the first run)."""
        self._ids += 1
        arrival = self.clock.now if arrival is None else arrival
        event = SimEvent(
            f"ev{self._ids:08d}", device_id, event_type, timestamp, arrival, arrival + index_delay
        )
        self.ledger.append(event)
        connection = self.connection
        if (
            connection is not None
            and not connection.stalled
            and connection.ending is None
            and (connection.event_types is None or event_type in connection.event_types)
            and device_id in connection.device_ids
        ):
            connection.buffer += _line({"result": {"event": event.raw()}})
            self.streamed.add(event.event_id)
        return event

    def stream_fault(self, kind: str) -> None:
        connection = self.connection
        if connection is None or connection.ending is not None:
            return
        if kind == "cut":
            # Cut in the middle of what was written: the rest of the buffer never arrives.
            del connection.buffer[self.rng.randint(0, len(connection.buffer)) :]
            connection.ending = "cut"
        elif kind == "end":
            connection.ending = "end"
        elif kind == "stall":
            connection.stalled = True
        elif kind == "blank":
            connection.buffer += b"\n"
        elif kind == "garbage":
            connection.buffer += b"<html>bad gateway</html>\n"
        elif kind == "bad_stamp":
            event = {
                "eventId": "evbadstamp",
                "targetName": f"projects/{PROJECT}/devices/x",
                "eventType": "touch",
            }
            connection.buffer += _line(
                {"result": {"event": {**event, "timestamp": "2026-11-28T25:61:00.000000Z"}}}
            )
        elif kind == "ping_ahead":
            # A ping stamped far beyond DT's time (a clock gone wrong upstream): it vouches for nothing.
            connection.buffer += _ping_line(self.clock.now + self.rng.uniform(120, 86_400))
        elif kind == "error":
            connection.buffer += _line({"error": {"code": 14, "message": "unavailable", "details": []}})
            connection.ending = "end"
        elif kind == "error_v1":
            body = {
                "grpcCode": 1,
                "httpCode": 408,
                "message": "closing stream",
                "httpStatus": "Request Timeout",
            }
            connection.buffer += _line({"error": body})
            connection.ending = "end"

    def http_fault(self, kind: str, after: int = 0) -> None:
        self.pending_http.append([kind, after])

    def clear_faults(self) -> None:
        self.pending_http.clear()

    def _tick_pings(self) -> None:
        connection = self.connection
        while connection is not None and not connection.stalled and connection.ending is None:
            if connection.next_ping > self.clock.now:
                return
            connection.buffer += _ping_line(connection.next_ping)
            connection.next_ping += self.ping_interval

    def next_stream_time(self) -> float | None:
        connection = self.connection
        if connection is None or connection.stalled or connection.ending is not None:
            return None
        return connection.next_ping

    # --- HTTP --------------------------------------------------------------------------------------------

    def _take_fault(self, prefix: str) -> str | None:
        for pending in self.pending_http:
            kind, after = pending
            if kind.startswith(prefix):
                if after > 0:
                    pending[1] -= 1
                    return None
                self.pending_http.remove(pending)
                return str(kind)
        return None

    def answer(self, request: HttpRequest) -> HttpResponse | ConnectionFailed:
        path = urlsplit(request.url).path
        if path.endswith("/oauth2/token"):
            if self._take_fault("token_") is not None:
                return self._response(503, b'{"error":"unavailable","code":503}')
            return self._response(200, b'{"access_token":"sim-token","expires_in":3600}')
        fault = self._take_fault("rest_")
        if fault == "rest_503":
            return self._response(503, b'{"error":"unavailable","code":503}')
        if fault == "rest_not_json":
            return self._response(200, b"<html>a proxy's page</html>")
        if fault == "rest_401":
            return self._response(401, b'{"error":"token expired","code":401}')
        if fault == "rest_429":
            body = b'{"error":"too many requests","code":429}'
            return self._response(429, body, {"retry-after": "1"})
        params = parse_qsl(urlsplit(request.url).query) + list(request.params)
        if path.endswith("/devices"):
            return self._json({"devices": self._list_devices(params), "nextPageToken": ""})
        if path.endswith("/events"):
            device_id = path.split("/")[-2]
            self.history_requests[device_id] = self.history_requests.get(device_id, 0) + 1
            return self._history(device_id, params)
        return self._response(404, b'{"error":"not found","code":404}')

    def _list_devices(self, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        wanted_types = {value for key, value in params if key == "device_types"}
        labels = [value for key, value in params if key == "label_filters"]
        chosen = []
        for device in self.devices.values():
            if wanted_types and device.device_type not in wanted_types:
                continue
            if all(_label_holds(device.labels, label) for label in labels):
                chosen.append(device.resource())
        return chosen

    def _history(self, device_id: str, params: list[tuple[str, str]]) -> HttpResponse:
        values = dict(params)
        start = timestamp_seconds(values["start_time"])
        end = timestamp_seconds(values["end_time"]) if "end_time" in values else self.clock.now
        types = {value for key, value in params if key == "event_types"}
        size = min(int(values.get("page_size", "100")), self.page_limit)
        offset = int(values.get("page_token") or 0)
        # Newest first, by offset, and with no cut-off pinned: an event indexed between two page reads
        # shifts the pages, as a stand-in for DT may well do.
        visible = [
            event
            for event in self.ledger
            if event.device_id == device_id
            and event.indexed <= self.clock.now
            and start <= event.timestamp < end
            and (not types or event.event_type in types)
        ]
        visible.sort(key=lambda event: (event.timestamp, event.event_id), reverse=True)
        page = visible[offset : offset + size]
        token = str(offset + size) if offset + size < len(visible) else ""
        return self._json({"events": [event.raw() for event in page], "nextPageToken": token})

    def open_stream(self, request: HttpRequest) -> HttpResponse | ConnectionFailed:
        self.connection = None
        fault = self._take_fault("stream_")
        if fault == "stream_503":
            return self._response(503, b'{"error":"unavailable","code":503}')
        if fault == "stream_429":
            return self._response(429, b'{"error":"slow down","code":429}', {"retry-after": "7"})
        if fault == "stream_502":
            return self._response(502, b"<html>502 Bad Gateway</html>", {"content-type": "text/html"})
        params = list(request.params)
        types = frozenset(value for key, value in params if key == "event_types") or None
        devices = {device["name"].rsplit("/", 1)[-1] for device in self._list_devices(params)}
        now = self.clock.now
        self.connection = Connection(now, types, devices, next_ping=now + self.ping_interval)
        return self._response(200, b"")

    def read(self) -> bytes | ConnectionFailed | None:
        """What the open stream has for the reader now; None if nothing yet."""
        self._tick_pings()
        connection = self.connection
        if connection is None:
            return ConnectionFailed("no stream is open", kind="cut")
        if connection.buffer:
            # Arbitrary chunking: a line may be split over reads.
            size = self.rng.randint(1, len(connection.buffer))
            chunk = bytes(connection.buffer[:size])
            del connection.buffer[:size]
            return chunk
        if connection.ending == "cut":
            self.connection = None
            return ConnectionFailed("stream read: connection reset", kind="cut")
        if connection.ending == "end":
            self.connection = None
            return b""
        return None

    def _json(self, body: Any) -> HttpResponse:
        return self._response(200, orjson.dumps(body))

    def _response(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> HttpResponse:
        # DT's Date header: its own time, to the second.
        date = format_datetime(datetime.fromtimestamp(int(self.clock.now), UTC), usegmt=True)
        return HttpResponse(status, {"date": date, **(headers or {})}, body)


def _line(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"


def _ping_line(stamp: float) -> bytes:
    ping = {
        "eventId": "ping",
        "targetName": f"projects/{PROJECT}",
        "eventType": "ping",
        "data": None,
        "timestamp": format_timestamp(stamp),
    }
    return _line({"result": {"event": ping}})


def _label_holds(labels: dict[str, str], label_filter: str) -> bool:
    key, _, value = label_filter.partition("=")
    return key in labels and (not value or labels[key] == value)


class Consumer:
    """What the tap does with deliveries: writes their events and keeps a bookmark, saved every few
    seconds (STATE) and at a graceful stop; a crash saves nothing."""

    SAVE_EVERY = 5.0

    def __init__(self, world: World, start: str | None) -> None:
        self.world = world
        self.start = start
        self.bookmark: str | None = None
        # How far single devices are complete, ahead of the bookmark (a catch-up planned per device).
        self.devices: dict[str, str] = dict(world.saved_devices)
        self.ids: list[str] = []
        self.last_save = world.clock.now

    def take(self, delivery: Delivery, taken: int | None = None) -> None:
        events = delivery.events
        taken = len(events) if taken is None else taken
        for event in events[:taken]:
            self.ids.append(event.event_id)
            self.world.written.setdefault(event.event_id, []).append(self.world.run_number)
        self.world.check_delivery(events)
        self.bookmark = bookmark_after(self.bookmark, events, delivery.complete_until, taken)
        device_id = delivery.device_id
        if device_id is not None:
            until = bookmark_after(self.devices.get(device_id), events, delivery.device_until, taken)
            if until is not None:
                self.devices[device_id] = until
        if self.bookmark is not None:
            self.devices = {d: until for d, until in self.devices.items() if until > self.bookmark}
        if self.world.clock.now - self.last_save >= self.SAVE_EVERY:
            self.save()

    def save(self) -> None:
        if self.bookmark is not None:
            self.world.saved = self.bookmark
        self.world.saved_devices = dict(self.devices)
        self.last_save = self.world.clock.now


class Run:
    """One follower and its consumer, driven a stretch of virtual time at a time."""

    def __init__(self, world: World, client_skew: float, live: bool) -> None:
        self.world = world
        clock = world.clock
        start = world.saved or world.origin
        server_clock = ServerClock(clock.monotonic, lambda: clock.now + client_skew)
        self.follower = Follower(
            world.settings,
            PROJECT,
            world.filter,
            start,
            live=live,
            in_order=world.in_order,
            device_starts=world.saved_devices,
            clock=server_clock,
            monotonic=clock.monotonic,
        )
        self.consumer = Consumer(world, start)
        self.steps: Generator[Command, Answer, None] = self.follower.run()
        self.command: Command | None = next(self.steps)
        self.wait_until: float | None = None  # the end of the sleep or read deadline in progress
        # Requests started (StartSend): when DT answers them, by handle.
        self.in_flight: dict[int, tuple[float, tuple[HttpRequest, ...]]] = {}
        self.handles = 0
        self.failed: DisruptiveError | None = None

    @property
    def alive(self) -> bool:
        return self.command is not None

    def _answer(self, answer: Answer) -> None:
        self.wait_until = None
        try:
            self.command = self.steps.send(answer)
        except StopIteration:
            self.command = None
        except DisruptiveError as error:  # given up, or fatal: the run ends as a crashed one would
            self.failed = error
            self.command = None

    def advance(self, seconds: float, stop_after: int | None = None) -> Delivery | None:
        """Drive the follower for `seconds` of virtual time (or until the `stop_after`-th delivery with
        events, which is returned untaken: the consumer stops in it)."""
        world, dt, clock = self.world, self.world.dt, self.world.clock
        end = clock.now + seconds
        deliveries = 0
        while self.command is not None:
            command = self.command
            if isinstance(command, Delivery):
                if command.events and stop_after is not None:
                    deliveries += 1
                    if deliveries >= stop_after:
                        return command
                self.consumer.take(command)
                world.check()
                self._answer(None)
            elif isinstance(command, Send | OpenStream):
                # Requests take time (up to half a second a round), so that a stop or a publish can
                # land in the middle of a catch-up.
                self.wait_until = self.wait_until or clock.now + world.rng.uniform(0.001, 0.5)
                if self.wait_until > end:
                    clock.now = max(clock.now, end)
                    return None
                clock.now = self.wait_until
                if isinstance(command, Send):
                    self._answer([dt.answer(request) for request in command.requests])
                else:
                    self._answer(dt.open_stream(command.request))
            elif isinstance(command, StartSend):
                # Answered by DT when collected, up to half a second later: deliveries and stops can
                # come while the requests are in flight.
                self.handles += 1
                self.in_flight[self.handles] = (clock.now + world.rng.uniform(0.001, 0.5), command.requests)
                self._answer(self.handles)
            elif isinstance(command, CollectSend):
                ready, requests = self.in_flight[command.handle]
                if ready > end:
                    clock.now = max(clock.now, end)
                    return None
                clock.now = max(clock.now, ready)
                del self.in_flight[command.handle]
                self._answer([dt.answer(request) for request in requests])
            elif isinstance(command, CloseStream):
                dt.connection = None
                self._answer(None)
            elif isinstance(command, Sleep):
                self.wait_until = self.wait_until or clock.now + command.seconds
                if self.wait_until > end:
                    clock.now = max(clock.now, end)
                    return None
                clock.now = self.wait_until
                self._answer(None)
            elif isinstance(command, ReadStream):
                self.wait_until = self.wait_until or clock.now + command.timeout
                chunk = dt.read()
                if chunk is not None:
                    self._answer(chunk)
                    continue
                wake = min(self.wait_until, dt.next_stream_time() or self.wait_until)
                if wake > end:
                    clock.now = max(clock.now, end)
                    return None
                clock.now = max(clock.now, wake)
                if clock.now >= self.wait_until:
                    self._answer(TIMED_OUT)
            else:  # pragma: no cover - every command is handled above
                raise TypeError(command)
        clock.now = max(clock.now, end)
        return None

    def stop(self, how: str) -> None:
        """End the run: "bound" (part way through a delivery, then STATE), "sigterm" (STATE), "crash"."""
        if how == "bound" and self.command is not None:
            delivery = self.advance(30.0, stop_after=1)
            if delivery is not None:
                taken = self.world.rng.randint(0, len(delivery.events))
                self.consumer.take(delivery, taken)
        if how in ("bound", "sigterm"):
            self.consumer.save()
        self.steps.close()
        self.world.dt.connection = None
        self.command = None


class World:
    """DT, the runs that follow it one after another, and what they wrote and saved."""

    def __init__(
        self,
        seed: int,
        event_filter: EventFilter | None = None,
        settings: ClientSettings = SETTINGS,
        history_hours: float = 1.0,
        in_order: bool = False,
    ) -> None:
        self.settings = settings
        self.in_order = in_order
        self.rng = random.Random(seed)
        self.clock = VirtualClock()
        devices = [
            Device(f"dev{number:02d}", device_type, {"room": room})
            for number, (device_type, room) in enumerate(
                [("temperature", "lab"), ("contact", "lab"), ("touch", "hall"), ("temperature", "hall")]
            )
        ]
        self.dt = SimulatedDT(self.clock, self.rng, devices, settings.ping_interval)
        self.filter = event_filter or EventFilter()
        # The first run starts from this much history.
        self.origin = format_timestamp(self.clock.now - history_hours * 3600)
        self.saved: str | None = None
        self.saved_devices: dict[str, str] = {}
        self.written: dict[str, list[int]] = {}
        self.run_number = 0
        self.run: Run | None = None
        self.resume_points: list[str | None] = []
        self._owed: list[SimEvent] = []
        self._owed_from = 0
        self._checked: tuple[str | None, str | None, int, str, str] = (None, None, -1, "", "")

    def start_run(self, client_skew: float = 0.0, live: bool = True) -> Run:
        self.run_number += 1
        self.resume_points.append(self.saved or self.origin)
        self.run = Run(self, client_skew, live)
        return self.run

    def publish(
        self, device_id: str, event_type: str, age: float = 0.0, index_delay: float = 0.0
    ) -> SimEvent:
        """An event stamped `age` seconds ago (negative: ahead) reaching DT now."""
        return self.dt.publish(device_id, event_type, self.clock.now - age, index_delay)

    def publish_history(self, device_id: str, event_type: str, age: float) -> SimEvent:
        """An event stamped `age` seconds ago that reached DT at its own time: history a run owes."""
        timestamp = self.clock.now - age
        return self.dt.publish(device_id, event_type, timestamp, 0.0, arrival=timestamp)

    def matches(self, event: SimEvent) -> bool:
        device = self.dt.devices[event.device_id]
        return self.filter.matches_event_type(event.event_type) and self.filter.matches_device(
            event.device_id, device.device_type, device.labels
        )

    def owed(self) -> list[SimEvent]:
        """Events the promise covers: matching, from the origin on, reaching DT no later than the overlap
        after their own time (not backfilled later) and no earlier than the indexing delay before it (a
        cloud connector's clock that far ahead)."""
        origin = timestamp_seconds(self.origin)
        ledger = self.dt.ledger
        self._owed += [
            event
            for event in ledger[self._owed_from :]
            if event.timestamp >= origin
            and -self.settings.indexing_delay <= event.arrival - event.timestamp <= self.settings.gap_overlap
            and self.matches(event)
        ]
        self._owed_from = len(ledger)
        return self._owed

    def check(self) -> None:
        """After every step: every owed event at or before the bookmark has been written, and the
        bookmark is never ahead of DT's time."""
        run = self.run
        bookmark = run.consumer.bookmark if run is not None else None
        devices = run.consumer.devices if run is not None else {}
        checked = (bookmark, self.saved, len(self.dt.ledger), str(devices), str(self.saved_devices))
        if self._checked == checked:
            return  # nothing changed since the last check
        self._checked = checked
        for mark in (bookmark, self.saved):
            if mark is None:
                continue
            assert timestamp_seconds(mark) <= self.clock.now, f"bookmark {mark} ahead of DT's time"
            missing = [e.event_id for e in self.owed() if e.stamp <= mark and e.event_id not in self.written]
            assert not missing, f"bookmark {mark} passes unwritten events {missing[:5]}"
        # A device's own frontier, ahead of the bookmark, holds for that device's events.
        for frontiers in (devices, self.saved_devices):
            for device_id, mark in frontiers.items():
                missing = [
                    e.event_id
                    for e in self.owed()
                    if e.device_id == device_id and e.stamp <= mark and e.event_id not in self.written
                ]
                assert not missing, f"device {device_id}'s frontier {mark} passes unwritten {missing[:5]}"

    def check_delivery(self, events: list[Any]) -> None:
        """Events read from history come in time order; no event comes twice within a run; an event a
        run writes again was written by an earlier run only after the bookmark this run resumed from."""
        if events and not any(event.event_id in self.dt.streamed for event in events):
            keys = [(event.timestamp, event.event_id) for event in events]
            assert keys == sorted(keys), "a delivery from history is not in time order"
        resumed_from = self.resume_points[-1]
        for event in events:
            runs = self.written.get(event.event_id, [])
            assert runs.count(self.run_number) <= 1, f"{event.event_id} delivered twice in one run"
            if len(set(runs)) > 1 and resumed_from is not None:
                assert event.timestamp >= resumed_from, (
                    f"{event.event_id} written again from before the resume"
                )
