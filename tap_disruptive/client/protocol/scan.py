"""Reading history as a scan: a time slice at a time across every selected device, so that each slice
can be delivered in time order while memory holds one slice, however long the span.

DT keeps history per device, newest first and paged, and selects it by event time. A slice's pages are
read for many devices at once; the slice is sorted only when all of it is in. Its length adapts to the
density of the history, so that one slice holds about `slice_events / 2` events.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

from tap_disruptive.client.protocol.commands import Answer, Command
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.history import ProjectHistory
from tap_disruptive.model.times import shift, stamp_micros

_SHORTEST_SLICE = 1.0
# Empty stretches make slices grow fourfold each: a start decades back is crossed in a dozen slices.
_LONGEST_SLICE = 100 * 365 * 86_400.0


def sort_key(event: Event) -> tuple[str, str]:
    return (event.timestamp, event.event_id)


class HistoryReader:
    """Reads one project's history a slice at a time; remembers how long a slice should be."""

    def __init__(self, history: ProjectHistory) -> None:
        self.history = history
        self.settings = history.settings
        self.span = self.settings.slice_seconds

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
