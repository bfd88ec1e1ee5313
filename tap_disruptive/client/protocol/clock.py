"""DT's time, as the client knows it: from what DT sends (Date headers, ping stamps), carried forward on
the local monotonic clock. Bookmarks are times up to which every event has been delivered, so they are
taken from DT's clock, never the client's: a client clock running ahead would otherwise put them ahead of
events still to come."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from tap_disruptive.model.times import format_timestamp


class ServerClock:
    """The server's current time, estimated from its latest word and the time elapsed since."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        ping_tolerance: float = 30.0,
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall
        # A ping stamped this far beyond the estimate is not believed (a clock gone wrong upstream).
        self._ping_tolerance = ping_tolerance
        self._base: float | None = None
        self._at = 0.0

    @property
    def known(self) -> bool:
        """Whether DT has told its time yet; until it has, the local wall clock stands in."""
        return self._base is not None

    def now(self) -> float:
        if self._base is None:
            return self._wall()
        return self._base + (self._monotonic() - self._at)

    def now_stamp(self) -> str:
        return format_timestamp(self.now())

    def observe(self, server_seconds: float) -> None:
        """A time the server stated (a Date header); the estimate only ever moves forward, but the
        first statement replaces the local clock whichever way it differs."""
        if self._base is None or server_seconds > self.now():
            self._base, self._at = server_seconds, self._monotonic()

    def observe_ping(self, server_seconds: float) -> float:
        """A ping's stamp; returns the time it vouches for (never beyond the estimate plus tolerance)."""
        if self._base is not None and server_seconds > self.now() + self._ping_tolerance:
            return self.now()
        self.observe(server_seconds)
        return server_seconds

    def observe_date(self, header: str | None) -> None:
        """An HTTP Date header (whole seconds, so the estimate may trail by up to a second)."""
        if not header:
            return
        with contextlib.suppress(TypeError, ValueError, IndexError):  # an unreadable date tells nothing
            self.observe(parsedate_to_datetime(header).timestamp())
