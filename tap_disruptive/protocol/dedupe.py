"""Recent event ids, to drop events seen twice (stream against history, overlapping history reads),
in memory bounded by time and by count, so a stream that runs for weeks does not grow."""

from __future__ import annotations

from collections import deque

from tap_disruptive.model.times import format_timestamp, timestamp_seconds


class RecentIds:
    """Remembers the ids of events whose time lies within `retention` seconds of the newest one seen.

    Gap fills read history from shortly before the last sign of life, so an id older than that window
    cannot come again; `capacity` caps memory even if timestamps misbehave.
    """

    def __init__(self, retention: float, capacity: int = 1_000_000) -> None:
        self.retention = retention
        self.capacity = capacity
        self._ids: set[str] = set()
        self._order: deque[tuple[str, str]] = deque()  # (canonical timestamp, id), oldest first
        self._newest = ""
        self._cutoff = ""
        self._since_cutoff = 0

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str, timestamp: str) -> bool:
        """Remember an event; False if it had been seen already (a duplicate)."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append((timestamp, event_id))
        if timestamp > self._newest:
            self._newest = timestamp
        self._since_cutoff += 1
        if self._since_cutoff >= 1024:
            self._evict_older()
        if len(self._ids) > self.capacity:
            self._ids.discard(self._order.popleft()[1])
        return True

    def _evict_older(self) -> None:
        # The cut-off moves with the newest event; computing it once per 1024 events keeps it cheap.
        self._since_cutoff = 0
        self._cutoff = format_timestamp(timestamp_seconds(self._newest) - self.retention)
        order, ids = self._order, self._ids
        while order and order[0][0] < self._cutoff:
            ids.discard(order.popleft()[1])
