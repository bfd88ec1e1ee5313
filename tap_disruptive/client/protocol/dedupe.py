"""Recent event ids, to drop events seen twice (stream against history, overlapping history reads),
in memory bounded by time and by count, so a stream that runs for weeks does not grow."""

from __future__ import annotations

from collections.abc import Callable
from itertools import takewhile

from tap_disruptive.model.times import shift

# Ids added between two checks of what to forget: the cut-off time is worked out that seldom.
CHECK_EVERY = 1024


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
        # Each id and its stamp in the order added, from index `_first` on: those before it are forgotten
        # already. Forgetting moves `_first` on, and the lists are cut now and then, all in C (cheaper than
        # a deque popped one id at a time).
        self._order: list[str] = []
        self._stamps: list[str] = []
        self._first = 0
        # An id added past this many makes the next check.
        self._limit = min(capacity, CHECK_EVERY - 1)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str, timestamp: str) -> bool:
        """Remember an event; False if it had been seen already (a duplicate)."""
        ids = self._ids
        if event_id in ids:
            return False
        ids.add(event_id)
        self._order.append(event_id)
        self._stamps.append(timestamp)
        if len(ids) > self._limit:
            self._forget()
        return True

    def _forget(self) -> None:
        """Forget the ids stamped before the cut-off, from the oldest added on, and, past capacity, the
        oldest ones beyond it and a little more (a 64th of it), so that the next check is some ids away."""
        first, ids, stamps = self._first, self._ids, self._stamps
        cutoff = shift(self._now_stamp(), -self.retention)
        end = first  # the ids from `first` to `end` are forgotten
        while end < len(stamps) and stamps[end] < cutoff:
            # Stamps before the cut-off: counted a window at a time, in C (`cutoff > stamp`).
            end += len(list(takewhile(cutoff.__gt__, stamps[end : end + CHECK_EVERY])))
        if len(stamps) - end > self.capacity:
            end = len(stamps) - (self.capacity - self.capacity // 64)
        ids.difference_update(self._order[first:end])
        # What is forgotten is cut off the lists once it outgrows an eighth of what is kept.
        if end > len(ids) // 8:
            del self._order[:end], self._stamps[:end]
            end = 0
        self._first = end
        self._limit = min(self.capacity, len(ids) + CHECK_EVERY - 1)
