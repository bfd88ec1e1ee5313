"""Pacing: when a client's next request may start, so that DT's rate limit is met rather than hit.

DT's limits are not published. One pacer per client spaces the starts of all its requests (token, devices,
history, stream openings) at a rate it learns from DT's answers, with a second's worth at once at most.
From a modest start it doubles each second while requests are waiting on it, until the first 429; each
429 halves the rate (once per burst: answers to requests sent before the cut say nothing new)
and pauses every request for the `Retry-After`; afterwards the rate creeps up by 5% a second while
requests wait. A `RateLimit-Policy` header, when DT sends one, sets the rate outright. The pacer only
decides; the driver keeps its clock and waits.
"""

from __future__ import annotations

import math
import re

from tap_disruptive.client.protocol.http import HttpResponse

# The rate is raised at most this often (seconds; doubled while probing, else crept up), and only
# while requests wait on it.
_PROBE_EVERY = 1.0
_CREEP_EVERY = 1.0
_CUT = 0.5
_CREEP = 0.05
# The IETF draft's policy header: "40;w=1" is 40 requests a second.
_POLICY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*;\s*w\s*=\s*(\d+(?:\.\d+)?)")


class RequestPacer:
    """Spaces request starts at a learned rate. Every time is a monotonic clock's, in seconds."""

    def __init__(
        self, start_rate: float = 20.0, max_rate: float | None = None, min_rate: float = 0.2
    ) -> None:
        self.max_rate = max_rate
        self.min_rate = min_rate
        self.rate = min(start_rate, max_rate) if max_rate else start_rate
        # Before the first 429 the rate doubles; after it, it creeps.
        self.probing = True
        # A token bucket holding a second's worth of requests: a burst of a few requests starts at once,
        # as DT's own limiter (a bucket too, by its 429s) allows.
        self._tokens = self.rate
        self._filled_at: float | None = None
        self._paused_until = -math.inf
        self._last_cut = -math.inf
        self._last_raise: float | None = None
        # Whether any request waited on the pacer since the rate was last raised: only then is a higher
        # rate something the client could use.
        self._held_back = False
        self.requests = 0
        self.throttled = 0

    def __repr__(self) -> str:
        return f"RequestPacer(rate={self.rate:.1f}/s, requests={self.requests}, throttled={self.throttled})"

    def _fill(self, now: float) -> None:
        if self._filled_at is not None and now > self._filled_at:
            self._tokens = min(self.rate, self._tokens + (now - self._filled_at) * self.rate)
        self._filled_at = now if self._filled_at is None else max(now, self._filled_at)

    def delay(self, now: float) -> float:
        """Seconds until a request may start (0 or less: now)."""
        self._fill(now)
        wait = max(self._paused_until - now, (1.0 - self._tokens) / self.rate)
        if wait > 0:
            self._held_back = True
        return wait

    def started(self, now: float) -> None:
        """A request starts now (the caller waited out `delay` first)."""
        self._fill(now)
        self.requests += 1
        self._tokens -= 1.0
        if self._last_raise is None:
            self._last_raise = now

    def answered(self, sent_at: float, now: float, response: HttpResponse) -> None:
        """The answer to a request started at `sent_at` came: learn from it."""
        policy = _policy_rate(response.headers.get("ratelimit-policy"))
        if policy is not None:
            self.probing = False
            self.max_rate = policy
            self.rate = policy
        if response.status == 429:
            self.throttled += 1
            self._throttled(sent_at, now, response.retry_after())
        else:
            self._raise(now)

    def _throttled(self, sent_at: float, now: float, retry_after: float | None) -> None:
        if sent_at >= self._last_cut:
            self.probing = False
            self.rate = max(self.min_rate, self.rate * _CUT)
            self._tokens = min(self._tokens, 0.0)
            self._last_cut = now
            self._last_raise = now
        self._paused_until = max(self._paused_until, now + (retry_after or 1.0 / self.rate))

    def _raise(self, now: float) -> None:
        every = _PROBE_EVERY if self.probing else _CREEP_EVERY
        if self._last_raise is None or now - self._last_raise < every:
            return
        self._last_raise = now
        if not self._held_back:
            return
        self._held_back = False
        rate = self.rate * 2 if self.probing else self.rate * (1 + _CREEP)
        self.rate = min(rate, self.max_rate) if self.max_rate else rate


def _policy_rate(value: str | None) -> float | None:
    """Requests a second that a `RateLimit-Policy` header allows, a little under it; None if absent."""
    match = _POLICY.match(value) if value else None
    if match is None or float(match.group(2)) <= 0:
        return None
    return 0.95 * float(match.group(1)) / float(match.group(2))
