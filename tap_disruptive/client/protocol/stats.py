"""Counters of what a client saw and did (its stream, its REST calls), for logs and metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields


@dataclass
class ClientStats:
    events: int = 0  # events delivered
    pings: int = 0
    connects: int = 0  # stream connections opened
    reconnects: int = 0  # of those, after a fault
    recovered: int = 0  # delivered events that came from history rather than the stream
    duplicates: int = 0  # events dropped because they had been delivered already
    filtered_out: int = 0  # events the local filter dropped
    history_requests: int = 0
    slices: int = 0  # history slices read
    census_requests: int = 0  # of the history requests, those of a census before a long scan in time order
    windows: int = 0  # windows of a device's history read by a catch-up plan
    kept_pages: int = 0  # full pages of a window kept while what comes before them is read
    devices_planned: int = 0  # devices a catch-up plan set out to read, and of those read to its end
    devices_caught_up: int = 0
    rechecks: int = 0  # stretches of history read again after the indexing delay
    unknown_event_types: int = 0
    faults: Counter[str] = field(
        default_factory=Counter
    )  # by kind: cut, stall, end, error_line, http_503, ...

    @classmethod
    def total(cls, parts: Iterable[ClientStats]) -> ClientStats:
        """The counters of several clients or subscriptions added up."""
        total = cls()
        for part in parts:
            for counter in fields(cls):
                setattr(total, counter.name, getattr(total, counter.name) + getattr(part, counter.name))
        return total

    def summary(self) -> str:
        """One line for a log, e.g. "stream: 2 connections (1 after a fault), 40 pings; history: ..."."""
        faults = ", ".join(f"{kind} {count}" for kind, count in sorted(self.faults.items())) or "none"
        return (
            f"stream: {self.connects} connections ({self.reconnects} after a fault), {self.pings} pings; "
            f"history: {self.history_requests} requests, {self.slices} slices, {self.windows} windows, "
            f"{self.rechecks} re-reads, "
            f"{self.recovered} events recovered; {self.duplicates} duplicates dropped, "
            f"{self.filtered_out} filtered out; faults: {faults}"
        )
