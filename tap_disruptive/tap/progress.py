"""What an operator reads of a run: what it will do, how a catch-up goes, the live rate, and the end.
Nothing per event: a line every few seconds while catching up, a rate line a minute while live."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.model.times import timestamp_seconds
from tap_disruptive.tap.settings import RunBounds

# While the run is further behind now than this, it is catching up, and says so this often.
CATCHING_UP = 60.0
PROGRESS_INTERVAL = 5.0
# Once caught up, a rate line this often.
LIVE_INTERVAL = 60.0


def describe_filter(event_filter: EventFilter) -> str:
    parts = [f"{name}={value}" for name, value in event_filter.to_json().items() if value is not None]
    return ", ".join(parts) or "none (every event of every device)"


def describe_bounds(bounds: RunBounds) -> str:
    parts = []
    if bounds.max_events is not None:
        parts.append(f"max_events={bounds.max_events}")
    if bounds.max_duration is not None:
        parts.append(f"max_duration={bounds.max_duration:g} s")
    if bounds.idle_timeout is not None:
        parts.append(f"idle_timeout={bounds.idle_timeout:g} s")
    return ", ".join(parts) or "none"


def duration(seconds: float) -> str:
    """E.g. "45 s", "12 min", "3.2 h", "4.1 days"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


class RunReport:
    """Logs a run's progress from what the tap sees: deliveries written and their bookmarks."""

    def __init__(
        self,
        logger: logging.Logger,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.logger = logger
        self._monotonic = monotonic
        self._wall = wall
        self.started = self.last_line = monotonic()
        self.written = 0
        self._written_at_last_line = 0
        self._complete_until: dict[str, str | None] = {}
        # What the source has spent so far (requests, 429s, its pace), for the catch-up lines.
        self.cost: Callable[[], str] = str

    def start(
        self, reading: str, event_filter: EventFilter, bounds: RunBounds, cost: Callable[[], str] = str
    ) -> None:
        """The start line; `reading`: where the source starts (see `sources.EventSource.describe`);
        `cost`: what the source has spent so far, for the catch-up lines."""
        self.cost = cost
        self.logger.info(
            "Reading %s. Filter: %s. Bounds: %s",
            reading,
            describe_filter(event_filter),
            describe_bounds(bounds),
        )

    def set_starts(self, starts: Mapping[str, str | None]) -> None:
        """Each project's start time (None: now), from which the run is behind until it writes more."""
        self._complete_until = dict(starts)

    def written_up_to(self, project_id: str | None, count: int, bookmark: str | None) -> None:
        """`count` more events written; the project's bookmark now stands at `bookmark` (a time, where the
        source has one)."""
        self.written += count
        if project_id is not None and bookmark is not None:
            self._complete_until[project_id] = bookmark
        now = self._monotonic()
        since = now - self.last_line
        behind = self.behind()
        catching_up = behind is not None and behind > CATCHING_UP
        if since < (PROGRESS_INTERVAL if catching_up else LIVE_INTERVAL):
            return
        rate = (self.written - self._written_at_last_line) / since
        if catching_up:
            assert behind is not None
            cost = self.cost()
            self.logger.info(
                "Catching up: %d events written (%.0f/s), complete up to %s, %s behind now%s",
                self.written,
                rate,
                min(value for value in self._complete_until.values() if value),
                duration(behind),
                f"; {cost}" if cost else "",
            )
        else:
            self.logger.info(
                "Live: %d events in the last %s (%.1f/s), %d in all",
                self.written - self._written_at_last_line,
                duration(since),
                rate,
                self.written,
            )
        self.last_line, self._written_at_last_line = now, self.written

    def behind(self) -> float | None:
        """Seconds from the earliest bookmark to now (None while no project has one)."""
        known = [value for value in self._complete_until.values() if value]
        if not known:
            return None
        return max(0.0, self._wall() - timestamp_seconds(min(known)))

    def end(self, reason: str, summary: str) -> None:
        elapsed = self._monotonic() - self.started
        self.logger.info(
            "Wrote %d events in %.1f s (%.0f/s); ended by %s. %s",
            self.written,
            elapsed,
            self.written / elapsed if elapsed > 0 else 0.0,
            reason,
            summary,
        )
