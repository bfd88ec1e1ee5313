"""The retry policy: exponential backoff with full jitter and a cap (from the `backoff` library),
honouring Retry-After, with a budget of consecutive attempts."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any, Protocol

import backoff

from tap_disruptive.client.protocol.errors import GaveUp, TransientError

logger = logging.getLogger(__name__)


def wait_generator(
    initial: float, cap: float, max_retry_after: float, jitter: bool = True
) -> Generator[float, Any, None]:
    """Waits before successive retries; send the error that caused each retry to have its Retry-After
    honoured. Shaped as the `backoff` library's wait generators, so `backoff.on_exception` can use it."""
    delays = backoff.expo(base=2, factor=initial, max_value=cap)
    next(delays)  # backoff's generators start with a priming 0
    error = yield 0.0
    while True:
        delay = next(delays)
        if jitter:
            delay = backoff.full_jitter(delay)
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            delay = max(delay, min(float(retry_after), max_retry_after))
        error = yield delay


class RetryKnobs(Protocol):
    """What the retry policy reads of a client's settings (`ClientSettings`, `SpoolSettings`)."""

    @property
    def backoff_initial(self) -> float: ...
    @property
    def backoff_cap(self) -> float: ...
    @property
    def max_retry_after(self) -> float: ...
    @property
    def max_attempts(self) -> int: ...


class Backoff:
    """Counts consecutive failures and says how long to wait before the next attempt."""

    def __init__(self, settings: RetryKnobs, jitter: bool = True) -> None:
        self._settings = settings
        self._jitter = jitter
        self.failures = 0
        self._waits = self._new_waits()

    def _new_waits(self) -> Generator[float, Any, None]:
        settings = self._settings
        waits = wait_generator(
            settings.backoff_initial, settings.backoff_cap, settings.max_retry_after, self._jitter
        )
        next(waits)
        return waits

    def next_wait(self, error: TransientError) -> float:
        """Seconds to wait after `error`; raises GaveUp once the attempt budget is spent."""
        self.failures += 1
        if self.failures >= self._settings.max_attempts:
            raise GaveUp(f"gave up after {self.failures} failed attempts in a row; last: {error}") from error
        wait = self._waits.send(error)
        # One line per fault: an operator sees each one, its kind and the wait it causes.
        logger.warning(
            "%s [%s]; retrying in %.1f s (failure %d in a row)", error, error.kind, wait, self.failures
        )
        return wait

    def reset(self) -> None:
        """Something worked: the next failure starts the backoff again from the beginning."""
        if self.failures:
            self.failures = 0
            self._waits = self._new_waits()
