"""A catch-up planned by cost: each device's history read in windows that fill DT's largest page.

DT keeps history per device, newest first, and a request costs the same whether its page is full or
empty. So each device is read on its own: first its whole span in one request (a quiet device is done
then; a silent one costs that one request), and where that page is full, its newest events are kept
and the rest of the span is read oldest first in windows sized by the density seen, each meant to fit
one page. A window that overflows keeps its page too (its newest events) and what comes before is read
in shorter windows; no page read is thrown away. Kept pages are few (`_MAX_KEPT_PAGES` a device), so
memory stays bounded.

Each device's events come oldest first; devices come side by side, `history_concurrency` at a time, so
events of different devices do not come in time order. Every delivery says how far its device is
complete (`Delivery.device_until`), and the plan says how far the whole project is: the earliest point
any device still has to be read from (`claim`). Memory holds what the devices in flight hold: a kept
page and a window each, whatever the number of devices and the span.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field

from tap_disruptive.client.protocol.commands import Answer, Command, Delivery
from tap_disruptive.client.protocol.events import Event, sort_key
from tap_disruptive.client.protocol.history import ProjectHistory
from tap_disruptive.client.protocol.rest import InFlight
from tap_disruptive.model.times import just_before, micros_stamp, stamp_micros

# A window is planned to hold this share of a page: density changes, and an overflow costs a request.
_FILL = 0.8
# Once the rest of a device's span should fit this share of a page, it is read in one window.
_LAST_WINDOW = 0.95
# Full pages kept per device at most: memory, and what a stop loses; past that, a window is read
# through its pages.
_MAX_KEPT_PAGES = 2


@dataclass
class _Kept:
    """The newest events of a window that overflowed its page: those stamped from `start` to before
    `end`, all of them, delivered once everything before `start` has been."""

    start: int
    end: int
    events: list[Event]


@dataclass
class _Device:
    """One device's reading: read up to `frontier`, and handed over up to `delivered`."""

    device_id: str
    frontier: int  # microseconds
    # The frontier as of the device's last delivery: reading runs a round ahead of handing over.
    delivered: int = 0
    # Full pages kept, the oldest last; the window being read ends at the last one's start at most.
    kept: list[_Kept] = field(default_factory=list)
    # The window being read: [frontier, window_end); None while the whole span is asked for.
    window_end: int | None = None
    found: dict[str, Event] = field(default_factory=dict)
    token: str = ""
    # Events per microsecond, as last seen.
    density: float | None = None


class CatchUpPlan:
    """One project's history, per device, from each device's start up to `until`."""

    def __init__(
        self,
        history: ProjectHistory,
        *,
        devices: Sequence[str],
        start: str,
        until: str,
        device_starts: Mapping[str, str] | None = None,
        open_end: bool = False,
    ) -> None:
        self.history = history
        # With an open end, a device's last window is asked with no end_time: up to DT's own now,
        # which `until` (the client's estimate of it) may trail; what comes past it is delivered, not claimed.
        self.open_end = open_end
        self.settings = history.settings
        self.stats = history.stats
        self.until = until
        self._until = stamp_micros(until)
        starts = device_starts or {}
        begin = stamp_micros(start)
        # Devices waiting to be read, furthest behind first, so that the project's claim moves soonest.
        waiting = sorted((max(begin, stamp_micros(starts[d])) if d in starts else begin, d) for d in devices)
        self._waiting = deque(
            _Device(d, frontier, frontier) for frontier, d in waiting if frontier < self._until or open_end
        )
        self.stats.devices_planned += len(devices)
        self.stats.devices_caught_up += len(devices) - len(self._waiting)
        self._reading: list[_Device] = []
        # Devices read to the end whose last events are still to be handed over.
        self._handing: list[_Device] = []
        # The devices of each round of requests in flight, by its handle.
        self._rounds: dict[int, list[_Device]] = {}
        # DT's largest page: what is asked for, until a full page with a next one shows less.
        self.page = self.settings.history_page_size
        self.devices = len(devices)

    def __repr__(self) -> str:
        return f"CatchUpPlan(project {self.history.project_id}, {self.devices} devices, until {self.until})"

    def claim(self) -> str:
        """The time up to which every selected device has been delivered: before the earliest frontier."""
        frontiers = [device.delivered for device in (*self._reading, *self._handing)]
        if self._waiting:
            frontiers.append(self._waiting[0].frontier)
        return just_before(micros_stamp(min(frontiers) if frontiers else self._until))

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def run(
        self,
        accept: Callable[[Event], bool],
        claim: Callable[[], str | None],
        device_cap: Callable[[], str | None],
        progressed: Callable[[], None],
    ) -> Generator[Command, Answer, None]:
        """Read every device to `until`. `accept` says whether an event is delivered (filter, dedupe);
        `claim` is the complete_until of a delivery (the follower's, which includes this plan's own);
        `device_cap` is how far any device's frontier may go (what is still to come for all devices);
        `progressed` is told of every round of requests answered."""
        # The next round of requests is in flight while the devices of the last one are delivered.
        self._rounds.clear()  # a round a fault cut short is sent again
        started = yield from self._start_round()
        while started is not None:
            pages = yield from self.history.finish(started)
            progressed()
            ready = [
                (device, events)
                for device, (items, token) in zip(self._rounds.pop(started.handle), pages, strict=True)
                if (events := self._take_page(device, items, token)) is not None
            ]
            self._handing = [device for device, _ in ready if device not in self._reading]
            started = yield from self._start_round()
            for device, events in ready:
                # Claimed as handed over: the consumer's bookmark holds once it has taken them all.
                device.delivered = device.frontier
                if device in self._handing:
                    self._handing.remove(device)
                yield from self._deliver(device, events, accept, claim, device_cap())

    def _start_round(self) -> Generator[Command, Answer, InFlight | None]:
        """One request for each device being read (taking on waiting ones first); None once all are done."""
        while self._waiting and len(self._reading) < self.settings.history_concurrency:
            self._reading.append(self._waiting.popleft())
        if not self._reading:
            return None
        reading = list(self._reading)
        requests = [
            self.history.request(
                device.device_id,
                micros_stamp(device.frontier),
                self._asked_end(device),
                device.token,
            )
            for device in reading
        ]
        started = yield from self.history.start([device.device_id for device in reading], requests)
        self._rounds[started.handle] = reading
        return started

    def _window_end(self, device: _Device) -> int:
        return self._until if device.window_end is None else device.window_end

    def _asked_end(self, device: _Device) -> str | None:
        """The end_time of a device's window: None for the last one of a plan with an open end."""
        end = self._window_end(device)
        return None if self.open_end and end == self._until else micros_stamp(end)

    def _take_page(self, device: _Device, items: list[Event | ValueError], token: str) -> list[Event] | None:
        """Take one page of a device's window; the window's events, oldest first, once it is whole."""
        self.history.collect(items, micros_stamp(device.frontier), self._asked_end(device), device.found)
        if token and len(items) < self.page:
            self.page = max(1, len(items))  # DT gives less than asked: that is its largest page
        if not token:
            device.token = ""
            return self._window_read(device)
        if not device.token and len(device.kept) < _MAX_KEPT_PAGES and self._keep(device):
            return None
        device.token = token  # read the window through its pages, holding them
        return None

    def _keep(self, device: _Device) -> bool:
        """A window's first page is full: keep its events (the window's newest) and read what comes
        before them in windows sized by their density. False where nothing comes before them (every
        event is stamped at the window's start): the window is read through its pages then."""
        events = sorted(device.found.values(), key=sort_key)
        end = self._window_end(device)
        oldest = stamp_micros(events[0].timestamp) if events else device.frontier
        if oldest <= device.frontier:
            return False
        device.found = {}
        # Events stamped exactly at the oldest time may go on over the next page: that time is left to
        # the windows, and the kept events start just after it.
        kept = [event for event in events if stamp_micros(event.timestamp) > oldest]
        device.kept.append(_Kept(oldest + 1, end, kept))
        # What comes before a full page may be as dense, or far less (the page was a burst): the lower
        # estimate is taken, since a window that overflows costs no request (its page is kept) and one
        # that holds little does.
        density = len(events) / max(1, end - oldest)
        device.density = density if device.density is None else min(device.density, density)
        self.stats.kept_pages += 1
        self._plan_window(device)
        return True

    def _window_read(self, device: _Device) -> list[Event]:
        """A window is read: its events, and those of the kept page it reaches, oldest first."""
        end = self._window_end(device)
        events = sorted(device.found.values(), key=sort_key)
        device.found = {}
        if device.window_end is not None and end > device.frontier:
            self.stats.windows += 1
            seen = max(len(events), 0.25) / (end - device.frontier)
            # An empty window says little of what comes next: a window grows at most eightfold at a time.
            device.density = seen if device.density is None else max(seen, device.density / 8)
        device.frontier = end
        # Kept pages follow one another (each ends where the one kept before it starts).
        while device.kept and device.frontier == device.kept[-1].start:
            kept = device.kept.pop()
            events += kept.events
            device.frontier = kept.end
        if device.frontier >= self._until:
            self._reading.remove(device)
            self.stats.devices_caught_up += 1
        else:
            self._plan_window(device)
        return events

    def _plan_window(self, device: _Device) -> None:
        """The next window from the device's frontier: about `_FILL` of a page, or the rest of the span."""
        last = device.kept[-1].start if device.kept else self._until
        if device.density is None:  # a span read whole needs no plan: only a kept page makes one
            device.window_end = last
            return
        room = last - device.frontier
        if device.density * room <= _LAST_WINDOW * self.page:
            device.window_end = last
        else:
            device.window_end = min(last, device.frontier + max(1, int(_FILL * self.page / device.density)))

    def _deliver(
        self,
        device: _Device,
        events: list[Event],
        accept: Callable[[Event], bool],
        claim: Callable[[], str | None],
        cap: str | None,
    ) -> Generator[Command, Answer, None]:
        """A device's events, oldest first, in chunks; each says how far its device is then complete."""
        chunk_size = self.settings.delivery_chunk
        complete = just_before(micros_stamp(device.frontier))
        if cap is not None:
            complete = min(complete, cap)
        fresh = [event for event in events if accept(event)]
        self.stats.recovered += len(fresh)
        self.stats.events += len(fresh)
        for first in range(0, max(1, len(fresh)), chunk_size):
            chunk = fresh[first : first + chunk_size]
            device_until, project_until = complete, claim()
            if first + chunk_size < len(fresh):
                device_until = min(device_until, just_before(fresh[first + chunk_size].timestamp))
                if project_until is not None:
                    project_until = min(project_until, device_until)
            yield Delivery(chunk, project_until, device.device_id, device_until)
