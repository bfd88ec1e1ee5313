"""Reading history as a scan: a time slice at a time across every selected device, so that each slice
can be delivered in time order while memory holds one slice, however long the span.

DT keeps history per device, newest first and paged, and selects it by event time. A slice's pages are
read for many devices at once; the slice is sorted only when all of it is in. Its length adapts to the
density of the history, so that one slice holds about `slice_events / 2` events.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

from tap_disruptive.client.protocol.commands import Answer, Command
from tap_disruptive.client.protocol.events import Event, sort_key
from tap_disruptive.client.protocol.history import ProjectHistory
from tap_disruptive.model.times import shift, stamp_micros

_SHORTEST_SLICE = 1.0
# Empty stretches make slices grow fourfold each: a start decades back is crossed in a dozen slices.
_LONGEST_SLICE = 100 * 365 * 86_400.0


class HistoryReader:
    """Reads one project's history a slice at a time; remembers how long a slice should be."""

    def __init__(self, history: ProjectHistory) -> None:
        self.history = history
        self.settings = history.settings
        self.span = self.settings.slice_seconds
        self._census: Census | None = None

    def long_span(self, start: str, until: str) -> bool:
        """Whether a span takes several slices at the present length: worth a census first."""
        return stamp_micros(until) - stamp_micros(start) > 2 * self.span * 1e6

    def take_census(
        self, device_ids: Sequence[str], start: str, until: str
    ) -> Generator[Command, Answer, None]:
        """Before a long scan, one request a device over the whole span: a device whose first page is
        not full has every event of the span in it, kept (up to `slice_events` in all) and handed over
        with the slices, and is asked no more while the census stands; the others are read by slice."""
        history = self.history
        requests = [history.request(device_id, start, until) for device_id in device_ids]
        pages = yield from history.pages(device_ids, requests)
        census = Census(start, until)
        for device_id, (items, token) in zip(device_ids, pages, strict=True):
            found: dict[str, Event] = {}
            history.collect(items, start, until, found)
            if token or len(census.kept) + len(found) > self.settings.slice_events:
                continue  # busy, or past what is kept: read by slice
            census.known.add(device_id)
            census.kept += found.values()
        census.kept.sort(key=sort_key, reverse=True)  # oldest last, taken from the end
        self.history.stats.census_requests += len(requests)
        self._census = census

    def end_census(self) -> None:
        self._census = None

    def slice_end(self, start: str, until: str | None, now: str) -> str | None:
        """Where a slice from `start` ends: a span later, or at `until` if that comes first; with no
        `until`, the slice that would reach now reads up to now instead (None: no end_time)."""
        end = shift(start, self.span)
        if until is None:
            return None if end >= now else end
        return until if end >= until else end

    def read(
        self, device_ids: Sequence[str], start: str, end: str | None
    ) -> Generator[Command, Answer, list[Event] | None]:
        """Events of the devices stamped from `start` to before `end` (None: up to DT's now), each once,
        in time order; None when the slice is too large to hold (the span is then shortened: try again)."""
        limit = self.settings.slice_events if self.span > _SHORTEST_SLICE else None
        found: dict[str, Event] = {}
        history = self.history
        census = self._census
        covered = census is not None and census.covers(start, end)
        if covered:
            assert census is not None
            device_ids = [device_id for device_id in device_ids if device_id not in census.known]
        group = 2 * self.settings.history_concurrency
        for first in range(0, len(device_ids), group):
            tokens: dict[str, str] = dict.fromkeys(device_ids[first : first + group], "")
            while tokens:
                order = list(tokens)
                requests = [history.request(device_id, start, end, tokens[device_id]) for device_id in order]
                pages = yield from history.pages(order, requests)
                next_tokens: dict[str, str] = {}
                for device_id, (items, token) in zip(order, pages, strict=True):
                    history.collect(items, start, end, found)
                    if token:
                        next_tokens[device_id] = token
                if limit is not None and len(found) > limit:
                    self._shorten(start, found)
                    return None
                tokens = next_tokens
        if end is not None:
            self._adapt(len(found))
        if covered:
            assert census is not None and end is not None
            for event in census.take(start, end):
                found.setdefault(event.event_id, event)
        return sorted(found.values(), key=sort_key)

    def _shorten(self, start: str, found: dict[str, Event]) -> None:
        """A slice held too many events: the next one ends where what was found suggests. Before the
        oldest event found, when there is a stretch there (history often starts long after a start
        time); else as long as the density found allows for about half a slice of events."""
        stamps = sorted(event.timestamp for event in found.values())
        empty_before = (stamp_micros(stamps[0]) - stamp_micros(start)) / 1e6
        if empty_before >= _SHORTEST_SLICE:
            span = empty_before
        else:
            covered = (stamp_micros(stamps[-1]) - stamp_micros(stamps[0])) / 1e6
            span = covered * (self.settings.slice_events / 2) / len(stamps)
        self.span = max(_SHORTEST_SLICE, min(span, self.span / 4))

    def _adapt(self, count: int) -> None:
        target = self.settings.slice_events / 2
        factor = min(4.0, target / max(count, 1))
        self.span = min(_LONGEST_SLICE, max(_SHORTEST_SLICE, self.span * factor))


class Census:
    """Devices whose every event from `start` to before `until` is known (`kept`, newest first)."""

    def __init__(self, start: str, until: str) -> None:
        self.start = start
        self.until = until
        self.known: set[str] = set()
        self.kept: list[Event] = []

    def covers(self, start: str, end: str | None) -> bool:
        return end is not None and self.start <= start and end <= self.until

    def take(self, start: str, end: str) -> list[Event]:
        """The kept events stamped before `end` (slices come in order: none is before `start` by then)."""
        kept, taken = self.kept, []
        while kept and kept[-1].timestamp < end:
            event = kept.pop()
            if event.timestamp >= start:
                taken.append(event)
        return taken
