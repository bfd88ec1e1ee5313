"""The follower: DT's event stream with nothing lost.

It opens the stream (the filter goes to the server), reads it with liveness from pings, and after any
disconnect reconnects with backoff and fills the gap from each matching device's history, from the last
sign of life minus an overlap. DT indexes events into history with a delay, so each gap is read again
once that delay has passed. Events seen twice (stream and history, overlapping reads) are dropped by id.
With a start time it first reads history since then. All decisions are here; a driver does the I/O.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Generator
from typing import Any

from tap_disruptive.model.times import format_timestamp, timestamp_seconds
from tap_disruptive.protocol.auth import TokenCache
from tap_disruptive.protocol.commands import (
    Answer,
    CloseStream,
    Command,
    Deliver,
    OpenStream,
    ReadStream,
    Sleep,
)
from tap_disruptive.protocol.decoding import BadLine, Ping, StreamDecoder, StreamError
from tap_disruptive.protocol.dedupe import RecentIds
from tap_disruptive.protocol.errors import (
    AuthenticationError,
    BadRequest,
    ConnectionFailed,
    NotFound,
    PermissionDenied,
    TransientError,
)
from tap_disruptive.protocol.events import Event, canonical_timestamp
from tap_disruptive.protocol.filters import EventFilter
from tap_disruptive.protocol.http import HttpRequest, HttpResponse, failure
from tap_disruptive.protocol.rest import Rest, map_deliveries
from tap_disruptive.protocol.retry import Backoff
from tap_disruptive.protocol.settings import ClientSettings
from tap_disruptive.protocol.stats import FollowerStats

Steps = Generator[Command, Answer, None]


class Follower:
    """Follows one project's events through the filter. `run()` is the protocol; a driver runs it."""

    def __init__(
        self,
        settings: ClientSettings,
        project_id: str,
        event_filter: EventFilter | None = None,
        start_time: str | None = None,
        *,
        tokens: TokenCache | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not project_id or "/" in project_id:
            raise BadRequest(f"not a DT project id: {project_id!r}")
        self.settings = settings
        self.project_id = project_id
        self.filter = event_filter or EventFilter()
        self._filtering = self.filter != EventFilter()
        self.start_time = canonical_timestamp(start_time) if start_time else None
        self.stats = FollowerStats()
        self.tokens = tokens or TokenCache(settings, clock)
        self.rest = Rest(settings, self.tokens, self.stats)
        self._clock = clock
        self._monotonic = monotonic
        # Ids of events delivered lately: long enough to cover every history read a gap can cause.
        self._recent = RecentIds(
            retention=settings.gap_overlap + settings.indexing_delay + 120.0,
            capacity=settings.dedupe_capacity,
        )
        self._devices: dict[str, dict[str, Any]] = {}
        # The server's time of the last event or ping received: the stream was whole until then.
        self._alive_until: str | None = None
        # History reads to repeat once the indexing delay has passed: (due, start time).
        self._rechecks: list[tuple[float, str]] = []

    def __repr__(self) -> str:
        return f"Follower(project {self.project_id}, {self.filter.to_json()})"

    # --- the protocol --------------------------------------------------------------------------------

    def run(self) -> Steps:
        retry = Backoff(self.settings)
        fill_from = self.start_time
        while True:
            try:
                head = yield from self._connect()
            except TransientError as error:
                self.stats.faults[error.kind] += 1
                yield Sleep(retry.next_wait(error))
                continue
            self.stats.connects += 1
            if self._alive_until is None:
                self._alive_until = format_timestamp(self._clock())
            try:
                if fill_from is not None:
                    yield from self._fill(fill_from)
                    self._schedule_recheck(fill_from)
                yield from self._read(head, retry)
            except TransientError as error:
                self.stats.faults[error.kind] += 1
                yield CloseStream()
                yield Sleep(retry.next_wait(error))
            self.stats.reconnects += 1
            # Back to before the last sign of life: a late, backfilled reading published in the gap
            # carries an older time. This can bring events from shortly before the start time.
            fill_from = self._before(self._alive_until, self.settings.gap_overlap)

    def _connect(self) -> Generator[Command, Answer, HttpResponse]:
        settings = self.settings
        params = (*self.filter.query(), ("ping_interval", f"{settings.ping_interval:g}s"))
        refreshed = False
        while True:
            header = yield from self.rest.authorization()
            request = HttpRequest(
                "GET",
                f"{settings.api_base}/projects/{self.project_id}/devices:stream",
                params=params,
                headers={
                    "Authorization": header,
                    "User-Agent": settings.user_agent,
                    "Accept": "application/json",
                },
                timeout=settings.request_timeout,
                purpose="stream",
            )
            answer = yield OpenStream(request, settings.read_timeout)
            if isinstance(answer, ConnectionFailed):
                raise answer
            assert isinstance(answer, HttpResponse)
            if answer.status == 200:
                return answer
            error = failure(answer, f"project {self.project_id}")
            if (
                isinstance(error, AuthenticationError)
                and not refreshed
                and not settings.credentials.basic_auth
            ):
                self.tokens.invalidate()
                refreshed = True
                continue
            raise error

    def _read(self, head: HttpResponse, retry: Backoff) -> Steps:
        sse = head.headers.get("content-type", "").startswith("text/event-stream")
        decoder = StreamDecoder(sse=sse)
        while True:
            if self._rechecks and self._rechecks[0][0] <= self._monotonic():
                yield from self._recheck()
            chunk = yield ReadStream()
            if isinstance(chunk, ConnectionFailed):
                yield from self._take(decoder.finish())
                raise chunk
            assert isinstance(chunk, bytes)
            if not chunk:
                yield from self._take(decoder.finish())
                raise TransientError("the stream ended", kind="end")
            if (yield from self._take(decoder.feed(chunk))):
                retry.reset()

    def _take(self, items: list[Any]) -> Generator[Command, Answer, bool]:
        """Deliver the events among stream items and act on the rest; True if any sign of life came."""
        batch: list[Event] = []
        alive = self._alive_until or ""
        error: StreamError | None = None
        for item in items:
            if type(item) is Event:
                if item.timestamp > alive:
                    alive = item.timestamp
                if self._accept(item):
                    batch.append(item)
            elif type(item) is Ping:
                self.stats.pings += 1
                stamp = _canonical_or_none(item.timestamp)
                if stamp is not None and stamp > alive:
                    alive = stamp
            elif type(item) is StreamError:
                error = item
                break
            elif type(item) is BadLine:
                self.stats.faults[f"{item.kind}_line"] += 1
                if item.kind != "blank":
                    # The line may have been an event: read this stretch from history again later.
                    self._schedule_recheck(self._before(alive or None, self.settings.gap_overlap))
        if alive:
            self._alive_until = alive
        # Delivered even when empty: a consumer regains control at every ping, to end a bounded run.
        self.stats.events += len(batch)
        yield Deliver(batch)
        if error is not None:
            raise self._stream_error(error)
        return bool(items) and any(type(item) is not BadLine for item in items)

    def _stream_error(self, error: StreamError) -> Exception:
        status = error.status
        what = f"the stream of project {self.project_id}"
        if status == 401:
            self.tokens.invalidate()  # reconnecting fetches a new token; bad credentials fail there
        elif status == 403:
            return PermissionDenied(f"the service account may not read {what}: {error.message}")
        elif status == 404:
            return NotFound(f"{what} not found: {error.message}")
        elif status == 400:
            return BadRequest(f"DT refused {what}: {error.message}")
        return TransientError(f"error line on {what}: {status} {error.message}", kind="error_line")

    def complete_until(self) -> str | None:
        """A time up to which every matching event has been delivered, as far as can be known now.

        That is the last sign of life less `gap_overlap` (an event's time is when a cloud connector got
        it, and it can reach the stream after a later ping), or the start of the earliest history read
        still to be repeated, whichever is earlier; the start time before the stream first connected.
        A resumed run may start reading from here and lose nothing.
        """
        if self._alive_until is None:
            return self.start_time
        settled = self._before(self._alive_until, self.settings.gap_overlap) or self._alive_until
        pending = min((start for _due, start in self._rechecks), default=None)
        return settled if pending is None else min(pending, settled)

    # --- gap filling ---------------------------------------------------------------------------------

    def _fill(self, start: str) -> Steps:
        """Deliver what history holds since `start` for every device the filter selects."""
        devices = yield from self.rest.devices(self.project_id, self.filter)
        self._devices = {device["name"].rsplit("/", 1)[-1]: device for device in devices}
        selected = self.filter.selected_device_ids(devices)
        rounds = self.rest.history_rounds(self.project_id, selected, start, self.filter.event_types)
        yield from map_deliveries(rounds, self._recovered)

    def _recovered(self, events: list[Event]) -> list[Event]:
        fresh = [event for event in events if self._accept(event)]
        self.stats.recovered += len(fresh)
        self.stats.events += len(fresh)
        return fresh

    def _recheck(self) -> Steps:
        now = self._monotonic()
        start = None
        while self._rechecks and self._rechecks[0][0] <= now:
            due_start = heapq.heappop(self._rechecks)[1]
            start = due_start if start is None else min(start, due_start)
        if start is not None:
            yield from self._fill(start)

    def _schedule_recheck(self, start: str | None) -> None:
        if start is not None:
            heapq.heappush(self._rechecks, (self._monotonic() + self.settings.indexing_delay, start))

    # --- helpers -------------------------------------------------------------------------------------

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

    @staticmethod
    def _before(stamp: str | None, seconds: float) -> str | None:
        return None if stamp is None else format_timestamp(timestamp_seconds(stamp) - seconds)


def _canonical_or_none(stamp: str | None) -> str | None:
    if stamp is None:
        return None
    try:
        return canonical_timestamp(stamp)
    except ValueError:
        return None
