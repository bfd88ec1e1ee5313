"""The event stream: fan-out to connected clients, NDJSON or SSE framing, pings, and stream faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from tap_disruptive.emulator.faults import Fault
from tap_disruptive.emulator.queries import DeviceFilter
from tap_disruptive.emulator.store import RecordedEvent
from tap_disruptive.model.event_types import LABELS_CHANGED
from tap_disruptive.model.ids import project_name
from tap_disruptive.model.times import format_timestamp

# A client this far behind is cut off, as a server must do to protect itself from a stuck consumer.
MAX_BUFFERED_EVENTS = 1_000_000
MAX_EVENTS_PER_CHUNK = 1000
_ENVELOPE_HEAD = b'{"result":{"event":'
_ENVELOPE_TAIL = b"}}"
_BETWEEN_EVENTS = _ENVELOPE_TAIL + b"\n" + _ENVELOPE_HEAD


@dataclass
class PendingFault:
    fault: Fault
    # Events this connection still sends before the fault fires.
    remaining: int


class Subscriber:
    """One open stream connection: its filter, the events waiting to be written, its pending faults."""

    def __init__(self, project_id: str, event_filter: DeviceFilter, sse: bool) -> None:
        self.project_id = project_id
        self.filter = event_filter
        self.sse = sse
        self.buffer: list[bytes] = []
        self.faults: list[PendingFault] = []
        self.wake = asyncio.Event()
        self.overflowed = False
        self.closing = False
        self._matches: dict[str, bool] = {}
        self._unfiltered = event_filter == DeviceFilter()

    def offer(self, events: list[RecordedEvent]) -> None:
        """Take the events this stream's filter selects."""
        if self.overflowed:
            return
        before = len(self.buffer)
        if self._unfiltered:
            self.buffer.extend(text for _device, _type, text in events)
        else:
            wanted_type, matches = self.filter.matches_event_type, self._matches
            for device, event_type, text in events:
                if not wanted_type(event_type):
                    continue
                match = matches.get(device.device_id)
                if match is None:
                    match = matches[device.device_id] = self.filter.matches_device(device)
                if match:
                    self.buffer.append(text)
        if len(self.buffer) > MAX_BUFFERED_EVENTS:
            self.overflowed = True
            self.buffer.clear()
        if len(self.buffer) > before and not self.wake.is_set():
            self.wake.set()

    def forget_matches(self) -> None:
        self._matches.clear()

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(PendingFault(fault, fault.after_events))
        self.wake.set()

    def frame(self, lines: list[bytes]) -> bytes:
        """Lines as written on the wire: one JSON object and a newline each, or SSE `data:` messages."""
        if self.sse:
            return b"".join(b"data: " + line + b"\n\n" for line in lines)
        return b"\n".join(lines) + b"\n"

    def frame_events(self, events: list[bytes]) -> bytes:
        """Events in the `{"result":{"event":...}}` envelope, framed; one join for a whole batch."""
        if self.sse:
            return b"".join(b"data: " + _ENVELOPE_HEAD + event + _ENVELOPE_TAIL + b"\n\n" for event in events)
        return _ENVELOPE_HEAD + _BETWEEN_EVENTS.join(events) + _ENVELOPE_TAIL + b"\n"


class StreamHub:
    """Every open stream, fed by the event store; also where stream faults are delivered."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[Subscriber]] = {}
        self._pending_faults: list[Fault] = []
        self.connections_served = 0

    def on_events(self, events: list[RecordedEvent]) -> None:
        if not any(self.subscribers.values()):
            return
        by_project: dict[str, list[RecordedEvent]] = {}
        for event in events:
            by_project.setdefault(event[0].project_id, []).append(event)
        # Labels are matched as they are now: after a change, every stream matches devices afresh.
        relabelled = any(event_type == LABELS_CHANGED for _device, event_type, _text in events)
        for project_id, project_events in by_project.items():
            for subscriber in self.subscribers.get(project_id, ()):
                if relabelled:
                    subscriber.forget_matches()
                subscriber.offer(project_events)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.setdefault(subscriber.project_id, set()).add(subscriber)
        self.connections_served += 1
        for fault in self._pending_faults:
            subscriber.add_fault(fault)
        self._pending_faults.clear()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.get(subscriber.project_id, set()).discard(subscriber)

    def open_count(self) -> int:
        return sum(len(group) for group in self.subscribers.values())

    def inject(self, fault: Fault) -> int:
        """Deliver a stream fault to every open stream, or hold it for the next one; returns streams hit."""
        targets = [subscriber for group in self.subscribers.values() for subscriber in group]
        if not targets:
            self._pending_faults.append(fault)
        for subscriber in targets:
            subscriber.add_fault(fault)
        return len(targets)

    def clear_faults(self) -> None:
        self._pending_faults.clear()

    def close_all(self) -> None:
        for group in self.subscribers.values():
            for subscriber in group:
                subscriber.closing = True
                subscriber.wake.set()


def error_line(fault: Fault) -> bytes:
    if fault.kind == "error_v1":
        error: dict[str, object] = {
            "grpcCode": 1,
            "httpCode": 408,
            "message": "closing stream",
            "httpStatus": "Request Timeout",
            "details": [],
        }
    else:
        error = {"code": fault.code, "message": "stream closed by server", "details": []}
    return json.dumps({"error": error}, separators=(",", ":")).encode()


class StreamWriter:
    """Writes one subscriber's events and pings to its response until the connection ends."""

    def __init__(
        self,
        *,
        request: web.Request,
        response: web.StreamResponse,
        subscriber: Subscriber,
        ping_interval: float,
        new_id: Callable[[float], str],
        clock: Callable[[], float],
    ) -> None:
        self.request = request
        self.response = response
        self.subscriber = subscriber
        self.ping_interval = ping_interval
        self.new_id = new_id
        self.clock = clock

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        subscriber = self.subscriber
        next_ping = loop.time() + self.ping_interval
        while not subscriber.closing:
            if not subscriber.buffer and not self._fault_due():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscriber.wake.wait(), max(0.0, next_ping - loop.time()))
                subscriber.wake.clear()
            if subscriber.overflowed:
                await self._write_lines([error_line(Fault("error", code=8))])
                await self.response.write_eof()
                return
            if not await self._write_events():
                return
            if loop.time() >= next_ping:
                await self._write_lines([self._ping()])
                next_ping = loop.time() + self.ping_interval
        await self.response.write_eof()

    def _fault_due(self) -> bool:
        faults = self.subscriber.faults
        return bool(faults) and faults[0].remaining == 0

    async def _write_events(self) -> bool:
        """Write what is buffered, firing due faults in place; False once the connection is over."""
        subscriber = self.subscriber
        batch, subscriber.buffer = subscriber.buffer, []
        while True:
            faults = subscriber.faults
            if not faults or faults[0].remaining > len(batch):
                if faults:
                    faults[0].remaining -= len(batch)
                await self._write_event_chunks(batch)
                return True
            pending = faults.pop(0)
            fault, before = pending.fault, pending.remaining
            if before:
                await self._write_event_chunks(batch[:before])
            batch = batch[before:]
            if not await self._apply(fault, batch):
                return False

    async def _write_event_chunks(self, events: list[bytes]) -> None:
        # A backlog (a slow client) goes out in chunks of bounded size, as a real server's would.
        for start in range(0, len(events), MAX_EVENTS_PER_CHUNK):
            await self.response.write(
                self.subscriber.frame_events(events[start : start + MAX_EVENTS_PER_CHUNK])
            )

    async def _apply(self, fault: Fault, rest: list[bytes]) -> bool:
        """Act out one fault; True if the connection goes on."""
        if fault.kind == "blank":
            await self.response.write(b"\n")
            return True
        if fault.kind == "garbage":
            await self._write_lines([b"<html>upstream hiccup: this line is not JSON</html>"])
            return True
        self.subscriber.closing = True
        if fault.kind in ("error", "error_v1"):
            await self._write_lines([error_line(fault)])
            await self.response.write_eof()
        elif fault.kind == "end":
            await self.response.write_eof()
        elif fault.kind == "cut":
            wire = self.subscriber.frame_events(rest[:1]) if rest else self.subscriber.frame([self._ping()])
            self._cut_mid_chunk(wire)
        elif fault.kind == "stall":
            self.subscriber.buffer.clear()
            await asyncio.sleep(fault.seconds)
            self._abort()
        return False

    def _cut_mid_chunk(self, wire: bytes) -> None:
        # Announce a whole chunk, send half of it, and drop the connection.
        transport = self.request.transport
        if transport is not None:
            transport.write(b"%x\r\n" % len(wire) + wire[: len(wire) // 2])
        self._abort()

    def _abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def _ping(self) -> bytes:
        now = self.clock()
        ping = {
            "eventId": self.new_id(now),
            "targetName": project_name(self.subscriber.project_id),
            "eventType": "ping",
            "data": None,
            "timestamp": format_timestamp(now),
        }
        return b'{"result":{"event":' + json.dumps(ping, separators=(",", ":")).encode() + b"}}"

    async def _write_lines(self, lines: list[bytes]) -> None:
        await self.response.write(self.subscriber.frame(lines))
