"""Recent event ids, to drop events seen twice (stream against history, overlapping history reads),
in memory bounded by time and by count, so a stream that runs for weeks does not grow."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from tap_disruptive.model.times import shift


class RecentIds:
    """Remembers the ids of events stamped within `retention` seconds of the server's current time.

    History is read again only for the last stretch before a disconnect, so an older id cannot come
    again. The cut-off follows DT's clock (`now_stamp`), never the events' own stamps: one event stamped
    a day ahead must not make every other id look old. `capacity` caps memory whatever the stamps.
    """

    def __init__(self, retention: float, capacity: int, now_stamp: Callable[[], str]) -> None:
        self.retention = retention
        self.capacity = capacity
        self._now_stamp = now_stamp
        self._ids: set[str] = set()
        self._order: deque[tuple[str, str]] = deque()  # (timestamp, id), in the order added
        self._since_eviction = 0

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str, timestamp: str) -> bool:
        """Remember an event; False if it had been seen already (a duplicate)."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append((timestamp, event_id))
        self._since_eviction += 1
        if self._since_eviction >= 1024:
            self._evict_older()
        if len(self._ids) > self.capacity:
            self._ids.discard(self._order.popleft()[1])
        return True

    def _evict_older(self) -> None:
        # The cut-off is computed once per 1024 events, which keeps it cheap on a fast stream.
        self._since_eviction = 0
        cutoff = shift(self._now_stamp(), -self.retention)
        order, ids = self._order, self._ids
        while order and order[0][0] < cutoff:
            ids.discard(order.popleft()[1])
