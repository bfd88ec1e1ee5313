"""Counters of what a client saw and did (its stream, its REST calls), for logs and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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
    rechecks: int = 0  # stretches of history read again after the indexing delay
    unknown_event_types: int = 0
    faults: Counter[str] = field(
        default_factory=Counter
    )  # by kind: cut, stall, end, error_line, http_503, ...
