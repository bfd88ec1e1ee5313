"""A remote DT's pace: a delay before each API request is handled, and a token bucket over them that
answers DT's 429 with `Retry-After` when it is empty."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable

from aiohttp import web

from tap_disruptive.emulator.errors import error_response


class TokenBucket:
    """`rate` tokens a second, at most `capacity` of them saved up; a request takes one."""

    def __init__(self, rate: float, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError(f"a token bucket needs a positive rate and capacity, not {rate}, {capacity}")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one is free (and none is taken)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


def retry_after(wait: float) -> int:
    """The `Retry-After` of a wait: whole seconds, rounded up, at least 1 (a client may not read 0)."""
    return max(1, math.ceil(wait))


def too_many_requests(wait: float) -> web.Response:
    return error_response(429, "too many requests", {"Retry-After": str(retry_after(wait))})


class Throttle:
    """The latency and the rate limit of every request to DT's API, and the 429s by request kind."""

    def __init__(
        self, latency: float, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.latency = latency
        self._bucket = TokenBucket(rate, burst, clock) if rate > 0 else None
        self.throttled: Counter[str] = Counter()

    async def admit(self, kind: str) -> web.Response | None:
        """After the latency: None to handle the request, or the 429 that answers it."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self._bucket is None:
            return None
        wait = self._bucket.take()
        if wait == 0:
            return None
        self.throttled[kind] += 1
        return too_many_requests(wait)
