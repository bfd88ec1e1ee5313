"""The follower: DT's event stream with nothing lost, within a run and across runs.

With a start time it first catches up from history: a scan in time slices across every selected device,
each slice delivered in time order. Close enough to now, it opens the stream and reads the rest of
history before it reads the stream. After any disconnect it reconnects with backoff and reads the gap
from history, from the last sign of life minus an overlap. DT indexes events into history with a delay,
so the stretch of each read that could still change is read once more after that delay. Events seen
twice (stream and history) are dropped by id.

Every delivery says up to when everything has been delivered (`complete_until`): never past history
still to be read, never past the last time DT vouched for (a ping, a Date header), whatever the events'
own stamps say. A run resumed from there loses nothing. All decisions are here; a driver does the I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from tap_disruptive.client.protocol.auth import TokenCache
from tap_disruptive.client.protocol.clock import ServerClock
from tap_disruptive.client.protocol.commands import (
    TIMED_OUT,
    Answer,
    CloseStream,
    Command,
    Delivery,
    ReadStream,
    Sleep,
    Steps,
)
from tap_disruptive.client.protocol.decoding import BadLine, Ping, StreamDecoder, StreamError
from tap_disruptive.client.protocol.dedupe import RecentIds
from tap_disruptive.client.protocol.errors import (
    AuthenticationError,
    BadRequest,
    ConnectionFailed,
    DisruptiveError,
    TransientError,
)
from tap_disruptive.client.protocol.events import Event, sort_key
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.history import ProjectHistory
from tap_disruptive.client.protocol.http import HttpResponse, status_error
from tap_disruptive.client.protocol.plan import CatchUpPlan
from tap_disruptive.client.protocol.rest import Rest
from tap_disruptive.client.protocol.retry import Backoff
from tap_disruptive.client.protocol.scan import HistoryReader
from tap_disruptive.client.protocol.settings import ClientSettings
from tap_disruptive.client.protocol.stats import ClientStats
from tap_disruptive.model.devices import Device
from tap_disruptive.model.times import (
    canonical_timestamp,
    format_timestamp,
    just_before,
    shift,
    timestamp_seconds,
)

logger = logging.getLogger(__name__)

# A device listing older than this is taken again before history is read from it.
DEVICE_LIST_MAX_AGE = 600.0


@dataclass
class PendingRead:
    """History still to be read: from `start` to before `end` (None: up to now)."""

    start: str
    end: str | None
    # When it may be read, on the monotonic clock. A re-read waits for DT's indexing delay, counted from
    # when the stream opened (None: the stream has not opened since the read it repeats).
    due: float | None
    # A re-read needs no re-read of its own: the stream was open throughout its stretch.
    recheck: bool
    # A re-read of what reached DT before the stream opened: until it is done, events from the stream
    # wait, so that everything is delivered in time order across the opening.
    holds_stream: bool = False


class Follower:
    """Follows one project's events through the filter. `run()` is the protocol; a driver runs it."""

    def __init__(
        self,
        settings: ClientSettings,
        project_id: str,
        event_filter: EventFilter | None = None,
        start_time: str | None = None,
        *,
        live: bool = True,
        end_time: str | None = None,
        in_order: bool = False,
        device_starts: Mapping[str, str] | None = None,
        tokens: TokenCache | None = None,
        clock: ServerClock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not project_id or "/" in project_id:
            raise BadRequest(f"not a DT project id: {project_id!r}")
        self.settings = settings
        self.project_id = project_id
        self.filter = event_filter or EventFilter()
        self._filtering = self.filter != EventFilter()
        self.live = live
        # Whether events from the stream wait, after it opens, for history that could come before them
        # (up to `indexing_delay`), so that all come in time order; else they come as they arrive.
        self.in_order = in_order
        self.start_time = canonical_timestamp(start_time) if start_time else None
        self.stats = ClientStats()
        self._monotonic = monotonic
        self.clock = clock or ServerClock(monotonic)
        self.tokens = tokens or TokenCache(settings)
        self.rest = Rest(settings, self.tokens, self.stats, self.clock)
        self._history = ProjectHistory(settings, self.rest, project_id, self.filter, self.stats)
        self._reader = HistoryReader(self._history)
        # A catch-up in time order reads slices across devices (`_reader`); otherwise it is planned per
        # device by cost (`plan`), each device from its own start where a resumed run knows one.
        self._device_starts = {
            device_id: canonical_timestamp(stamp) for device_id, stamp in (device_starts or {}).items()
        }
        self._plan: CatchUpPlan | None = None
        # Ids of events delivered lately: long enough to cover every history read a gap can cause.
        self._recent = RecentIds(
            retention=settings.gap_overlap + settings.indexing_delay + 120.0,
            capacity=settings.dedupe_capacity,
            now_stamp=self.clock.now_stamp,
        )
        # What the follower owes: events from its start time on. Following from now (no start time), the
        # claims are what the stream itself vouches for, nothing more.
        self._origin = self.start_time
        # History to read: the catch-up or a gap (at most one), and re-reads after the indexing delay.
        self._gap = PendingRead(self.start_time, None, 0.0, False) if self.start_time else None
        self._rechecks: list[PendingRead] = []
        # Events from the stream waiting for a re-read of what came before it (see `holds_stream`),
        # and the earliest time among them, which the bookmark must not pass.
        self._held: list[Event] = []
        self._held_from: str | None = None
        # DT's time up to which the open stream has been whole: its opening, then each ping; and that
        # less `gap_overlap`, up to which everything has come.
        self._alive: str | None = None
        self._alive_claim: str | None = None
        self._connected = False
        self._devices: dict[str, Device] = {}
        self._selected: list[str] = []
        self._listed_at: float | None = None
        # Where a history-only run stops (None: now), and whether it got there.
        self._history_end = canonical_timestamp(end_time) if end_time else None
        self._history_read = False

    def __repr__(self) -> str:
        return f"Follower(project {self.project_id}, {self.filter.to_json()})"

    # --- the bookmark --------------------------------------------------------------------------------

    def complete_until(self) -> str | None:
        """A time up to which every matching event has been delivered, as far as can be known now.

        The earliest of: the start of history still to be read (catch-up, gap, re-reads), and the last
        sign of life of the stream less `gap_overlap` (an event can reach the stream that much after its
        own time). Nothing before the origin is owed. None while nothing is known.
        """
        claims = self._pending_claims()
        if self._plan is not None:
            claims.append(self._plan.claim())
        elif self._gap is not None:
            claims.append(just_before(self._gap.start))
        if self._alive_claim is not None:
            claims.append(self._alive_claim)
        if not claims:
            return None if self._origin is None else just_before(self._origin)
        claim = min(claims)
        if self._origin is not None and claim < self._origin:
            return just_before(self._origin)
        return claim

    def _pending_claims(self) -> list[str]:
        """Claims of what is still to come for every device alike: re-reads, and stream events held."""
        claims = [just_before(read.start) for read in self._rechecks]
        if self._held_from is not None:
            claims.append(just_before(self._held_from))
        return claims

    def _device_cap(self) -> str | None:
        """How far a device's own frontier may go: not past what is still to come for every device."""
        return min(self._pending_claims(), default=None)

    # --- the protocol --------------------------------------------------------------------------------

    def run(self) -> Steps:
        """The protocol as commands; waits longer than `heartbeat` are cut into heartbeat deliveries."""
        steps = self._follow()
        heartbeat = self.settings.heartbeat
        answer: Answer = None
        try:
            while True:
                try:
                    command = steps.send(answer)
                except StopIteration:
                    return
                if type(command) is Sleep and command.seconds > heartbeat:
                    remaining = command.seconds
                    while remaining > 0:
                        yield Sleep(min(heartbeat, remaining))
                        remaining -= heartbeat
                        if remaining > 0:
                            yield Delivery([], self.complete_until())
                    answer = None
                else:
                    answer = yield command
        finally:
            steps.close()

    def _follow(self) -> Steps:
        retry = Backoff(self.settings)
        while True:
            try:
                yield from self._catch_up(retry)
                if not self.live:
                    return
                head = yield from self._connect()
                yield from self._fill_after_connect(retry)
                yield from self._read(head, retry)
            except TransientError as error:
                self.stats.faults[error.kind] += 1
                yield from self._release_held()
                yield CloseStream()
                if self._connected:
                    self._connected = False
                    self.stats.reconnects += 1
                    # Back to before the last sign of life: an event can reach the stream late.
                    assert self._alive_claim is not None
                    self._read_gap_from(self._alive_claim)
                yield Sleep(retry.next_wait(error))

    def _read_gap_from(self, start: str) -> None:
        if self._gap is None:
            self._gap = PendingRead(start, None, 0.0, False)
        elif start < self._gap.start:
            self._gap.start = start

    def _catch_up(self, retry: Backoff) -> Steps:
        """Read history without the stream while far behind; a history-only run reads it all, up to its
        end time or now."""
        while self._gap is not None and not self._history_read:
            yield from self._list_devices(max_age=0.0)
            now = self.clock.now_stamp()
            if not self.live:
                end = self._history_end
                if end is None or self._gap.start < end:
                    if self.in_order:
                        yield from self._scan_in_order(self._gap, end, now, retry)
                    else:
                        # Up to DT's own now, which the estimate `now` may trail (even the start).
                        until = end or max(now, self._gap.start)
                        yield from self._plan_catch_up(self._gap, until, now, retry, open_end=end is None)
                self._history_read = True
            elif self._plan is None and (
                timestamp_seconds(now) - timestamp_seconds(self._gap.start) <= self.settings.live_lag
            ):
                return
            elif self.in_order:
                yield from self._scan_in_order(self._gap, now, now, retry)
            else:
                yield from self._plan_catch_up(self._gap, now, now, retry)

    def _scan_in_order(self, read: PendingRead, until: str | None, now: str, retry: Backoff) -> Steps:
        """A catch-up in time order: slices across devices up to `until` (None: DT's now), after a census
        over a long span (up to `until`, else the estimate of DT's now), so that a device with few events
        or none costs one request a census, not one a slice."""
        census_until = until or max(now, read.start)
        if not self._reader.long_span(read.start, census_until):
            yield from self._scan(read, until, retry)
            return
        yield from self._reader.take_census(self._selected, read.start, census_until)
        try:
            # The census's span, then (with an open end) the rest up to DT's now, every device asked.
            yield from self._scan(read, census_until, retry)
        finally:
            self._reader.end_census()
        if until is None:
            yield from self._scan(read, None, retry)

    def _plan_catch_up(
        self, read: PendingRead, until: str, now: str, retry: Backoff, open_end: bool = False
    ) -> Steps:
        """Read every selected device from its start to `until`, a device at a time, planned by cost; a
        plan cut short by a fault is taken up where it stood. `open_end`: a history-only run reads up to
        DT's own now (see `CatchUpPlan`)."""
        plan = self._plan
        if plan is None:
            plan = self._plan = CatchUpPlan(
                self._history,
                devices=self._selected,
                start=read.start,
                until=until,
                device_starts=self._device_starts,
                open_end=open_end,
            )
            # What could still change near now is read again after the indexing delay; scheduled now,
            # so that no delivery of the plan claims it.
            if not read.recheck:
                self._schedule_recheck(read.start, until, now)
            logger.info(
                "history of project %s: %d devices from %s to %s, at least %d requests (one a device; "
                "a busy device one per %d events)",
                self.project_id,
                plan.devices,
                read.start,
                until,
                plan.waiting,
                plan.page,
            )
        yield from plan.run(self._accept, self.complete_until, self._device_cap, retry.reset)
        self._plan = None
        self._device_starts = {d: stamp for d, stamp in self._device_starts.items() if stamp > plan.until}
        read.start = plan.until

    def _connect(self) -> Generator[Command, Answer, HttpResponse]:
        params = (*self.filter.query(), ("ping_interval", f"{self.settings.ping_interval:g}s"))
        answer = yield from self.rest.open_stream(self.project_id, params)
        settings = self.settings
        self.stats.connects += 1
        self._connected = True
        opened = self.clock.now_stamp()
        self._stream_whole_until(opened)
        # Re-reads of history read before the stream opened: everything that reached DT before the
        # opening is in history once the indexing delay has passed; what came after is on the stream.
        due = self._monotonic() + settings.indexing_delay
        for read in self._rechecks:
            if read.due is None:
                read.due = due
        return answer

    def _fill_after_connect(self, retry: Backoff) -> Steps:
        """Read the rest of history, up to now, while the open stream waits."""
        if self._gap is not None:
            # A listing made moments ago, by the catch-up of this same attempt, will do.
            yield from self._list_devices(max_age=5.0)
            yield from self._scan(self._gap, None, retry)

    def _read(self, head: HttpResponse, retry: Backoff) -> Steps:
        sse = head.headers.get("content-type", "").startswith("text/event-stream")
        decoder = StreamDecoder(sse=sse)
        settings = self.settings
        last_data = self._monotonic()
        while True:
            yield from self._recheck_due(retry)
            now = self._monotonic()
            stall_at = last_data + settings.read_timeout
            wake = min(stall_at, now + settings.heartbeat, *self._recheck_times())
            chunk = yield ReadStream(max(0.0, wake - now))
            if chunk is TIMED_OUT:
                if self._monotonic() >= stall_at:
                    yield from self._take(decoder.finish())
                    raise TransientError(
                        f"the stream of project {self.project_id} was silent for {settings.read_timeout:g} s",
                        kind="stall",
                    )
                yield Delivery([], self.complete_until())
                continue
            if isinstance(chunk, ConnectionFailed):
                yield from self._take(decoder.finish())
                raise chunk
            assert isinstance(chunk, bytes)
            if not chunk:
                yield from self._take(decoder.finish())
                raise TransientError("the stream ended", kind="end")
            last_data = self._monotonic()
            if (yield from self._take(decoder.feed(chunk))):
                retry.reset()

    def _take(self, items: list[Any]) -> Generator[Command, Answer, bool]:
        """Delivery the events among stream items and act on the rest; True if any sign of life came."""
        batch: list[Event] = []
        error: StreamError | None = None
        for item in items:
            kind = type(item)
            if kind is Event:
                if self._accept(item):
                    batch.append(item)
            elif kind is Ping:
                self._ping(item)
            elif kind is StreamError:
                error = item
                break
            elif kind is BadLine:
                self.stats.faults[f"{item.kind}_line"] += 1
                if item.kind != "blank":
                    logger.warning(
                        "the stream of project %s sent a bad line [%s_line]: %r; its stretch is read "
                        "again from history",
                        self.project_id,
                        item.kind,
                        item.excerpt,
                    )
                if item.kind != "blank" and self._alive_claim is not None:
                    # The line may have been an event: read this stretch from history again later.
                    due = self._monotonic() + self.settings.indexing_delay
                    self._rechecks.append(PendingRead(self._alive_claim, None, due, True))
        if batch and any(read.holds_stream for read in self._rechecks):
            self._held += batch
            earliest = min(event.timestamp for event in batch)
            if self._held_from is None or earliest < self._held_from:
                self._held_from = earliest
            batch = []
            if len(self._held) > self.settings.slice_events:
                yield from self._release_held()  # memory first: a fast stream waits no longer
        self.stats.events += len(batch)
        # Delivered even when empty: a consumer regains control at every ping, to end a bounded run.
        yield Delivery(batch, self.complete_until())
        if error is not None:
            raise self._stream_error(error)
        return bool(items) and any(type(item) is not BadLine for item in items)

    def _ping(self, ping: Ping) -> None:
        """A ping vouches that the stream was whole up to its time (as far as DT's clock is believed)."""
        self.stats.pings += 1
        stamp = None
        if ping.timestamp is not None:
            try:
                stamp = format_timestamp(self.clock.observe_ping(timestamp_seconds(ping.timestamp)))
            except ValueError:
                self.stats.faults["bad_ping_stamp"] += 1
        self._stream_whole_until(stamp or self.clock.now_stamp())

    def _stream_whole_until(self, stamp: str) -> None:
        if self._alive is None or stamp > self._alive:
            self._alive = stamp
            self._alive_claim = shift(stamp, -self.settings.gap_overlap)

    def _stream_error(self, error: StreamError) -> DisruptiveError:
        what = f"the stream of project {self.project_id}"
        if error.status is None:
            return TransientError(f"error line on {what}: {error.message}", kind="error_line")
        mapped = status_error(error.status, error.message, what, "error_line")
        if isinstance(mapped, AuthenticationError):
            # Reconnecting fetches a new token; credentials really refused fail there.
            self.tokens.invalidate()
            return TransientError(f"error line on {what}: {mapped}", kind="error_line")
        return mapped

    # --- history -------------------------------------------------------------------------------------

    def _list_devices(self, max_age: float) -> Steps:
        """List the devices the filter selects, unless a listing younger than `max_age` is at hand."""
        now = self._monotonic()
        if self._listed_at is not None and now - self._listed_at < max_age:
            return
        devices = yield from self.rest.devices(self.project_id, self.filter)
        self._devices = {device.device_id: device for device in devices}
        self._selected = self.filter.selected_device_ids(devices)
        self._listed_at = now

    def _scan(self, read: PendingRead, until: str | None, retry: Backoff) -> Steps:
        """Delivery `read`'s history up to `until` (None: up to now), a slice at a time in time order,
        moving its start on after each slice; it is dropped once done, but for a gap read to a time."""
        while True:
            now = self.clock.now_stamp()
            end = self._reader.slice_end(read.start, until, now)
            events = yield from self._reader.read(self._selected, read.start, end)
            if events is None:
                continue  # too many to hold: the reader shortened its slices
            self.stats.slices += 1
            retry.reset()
            start = read.start
            finished = end is None or end == until
            if not read.recheck:
                self._schedule_recheck(start, end, now)
            if end is None and read is self._gap and not self.live:
                read.start = now  # a history-only run read everything up to DT's time at the read
            elif end is None or (finished and read.recheck):
                self._drop(read)
            else:
                read.start = end  # a gap read to a closed end stays, to say how far history was read
            fresh = [event for event in events if self._accept(event)]
            self.stats.recovered += len(fresh)
            self.stats.events += len(fresh)
            yield from self._deliver_in_order(fresh)
            if finished:
                return

    def _drop(self, read: PendingRead) -> None:
        if read is self._gap:
            self._gap = None
        else:
            self._rechecks.remove(read)

    def _deliver_in_order(self, events: list[Event]) -> Steps:
        """Delivery time-ordered events in chunks, each claiming no more than the time before the next."""
        complete = self.complete_until()
        size = self.settings.delivery_chunk
        for first in range(0, len(events), size):
            chunk = events[first : first + size]
            claim = complete
            if first + size < len(events) and claim is not None:
                claim = min(claim, just_before(events[first + size].timestamp))
            yield Delivery(chunk, claim)
        if not events:
            yield Delivery([], complete)

    def _schedule_recheck(self, start: str, end: str | None, read_at: str) -> None:
        """Read a slice's stretch again after the indexing delay, where it could still change: events that
        reached DT shortly before the read were maybe not in history yet, and late ones came later."""
        settings = self.settings
        changeable = shift(read_at, -(settings.indexing_delay + settings.gap_overlap))
        if end is not None and end <= changeable:
            return
        due = self._monotonic() + settings.indexing_delay if self._connected else None
        self._rechecks.append(PendingRead(max(start, changeable), end, due, True, self.in_order))

    def _recheck_times(self) -> list[float]:
        return [read.due for read in self._rechecks if read.due is not None]

    def _recheck_due(self, retry: Backoff) -> Steps:
        """Re-read what is due, overlapping stretches merged into one read each."""
        now = self._monotonic()
        due = sorted(
            (read for read in self._rechecks if read.due is not None and read.due <= now),
            key=lambda read: read.start,
        )
        if not due:
            return
        merged: list[PendingRead] = []
        for read in due:
            last = merged[-1] if merged else None
            if last is not None and (last.end is None or read.start <= last.end):
                if last.end is not None:
                    last.end = None if read.end is None else max(last.end, read.end)
                last.holds_stream = last.holds_stream or read.holds_stream
            else:
                merged.append(PendingRead(read.start, read.end, read.due, True, read.holds_stream))
        self._rechecks = [read for read in self._rechecks if read not in due] + merged
        self.stats.rechecks += len(merged)
        yield from self._list_devices(max_age=DEVICE_LIST_MAX_AGE)
        for read in merged:
            yield from self._scan(read, read.end, retry)
        if not any(read.holds_stream for read in self._rechecks):
            yield from self._release_held()

    def _release_held(self) -> Steps:
        """Deliver the stream's waiting events, in time order."""
        if self._held:
            held, self._held, self._held_from = sorted(self._held, key=sort_key), [], None
            self.stats.events += len(held)
            yield Delivery(held, self.complete_until())

    def _accept(self, event: Event) -> bool:
        """Whether to deliver: it passes the filter and was not delivered before."""
        if self._filtering and not self.filter.matches(event, self._devices.get(event.device_id)):
            self.stats.filtered_out += 1
            return False
        if not self._recent.add(event.event_id, event.timestamp):
            self.stats.duplicates += 1
            return False
        if not event.known_type:
            self.stats.unknown_event_types += 1
        return True
