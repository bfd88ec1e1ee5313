"""A Data Connector's `:metrics`: pushes acknowledged and failed, and their 99th-percentile latency, over
the last 3 hours, as DT answers them: `{"metrics": {"successCount", "errorCount", "latency99p": "0.411s"}}`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

WINDOW = 3 * 3600.0
# Enough for hours of pushes at a few a second; a busier connector's metrics cover its latest pushes.
MAX_SAMPLES = 100_000


def proto_duration(seconds: float) -> str:
    """A duration as protobuf's JSON writes one: seconds with 0, 3, 6 or 9 fractional digits and `s`."""
    nanos = round(seconds * 1e9)
    whole, fraction = divmod(nanos, 1_000_000_000)
    if fraction == 0:
        return f"{whole}s"
    for digits, unit in ((3, 1_000_000), (6, 1_000)):
        if fraction % unit == 0:
            return f"{whole}.{fraction // unit:0{digits}d}s"
    return f"{whole}.{fraction:09d}s"


class PushMetrics:
    """Every push attempt's outcome and latency, kept for the window DT's metrics cover."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, float, bool]] = deque(maxlen=MAX_SAMPLES)

    def record(self, latency: float, acknowledged: bool) -> None:
        self._samples.append((self._clock(), latency, acknowledged))

    def resource(self) -> dict[str, Any]:
        since = self._clock() - WINDOW
        while self._samples and self._samples[0][0] < since:
            self._samples.popleft()
        latencies = sorted(latency for _at, latency, _ok in self._samples)
        successes = sum(1 for _at, _latency, ok in self._samples if ok)
        # Nearest rank: the smallest latency at or under which 99% of the pushes finished.
        p99 = latencies[math.ceil(0.99 * len(latencies)) - 1] if latencies else 0.0
        return {
            "metrics": {
                "successCount": successes,
                "errorCount": len(latencies) - successes,
                "latency99p": proto_duration(round(p99, 3)),
            }
        }
