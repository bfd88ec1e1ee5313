"""Runs a follower (sync or async driver) in a background thread and collects what it delivers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

from tap_disruptive.client.drivers.aio import AsyncDisruptiveClient
from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.settings import ClientSettings
from tap_disruptive.client.protocol.stats import ClientStats
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.testing import client_settings

# Quick reflexes for tests: pings twice a second, short backoff, history re-read after 2.5 s
# (the test emulator indexes after 1 s).
FAST = {
    "ping_interval": 0.5,
    "ping_leeway": 0.7,
    "backoff_initial": 0.05,
    "backoff_cap": 0.5,
    "gap_overlap": 5.0,
    "indexing_delay": 2.5,
    "request_timeout": 10.0,
}


def settings_for(emulator: EmulatorProcess, basic_auth: bool = False, **overrides: Any) -> ClientSettings:
    return client_settings(emulator, basic_auth, **{**FAST, **overrides})


def now_stamp(offset: float = 0.0) -> str:
    return format_timestamp(time.time() + offset)


class FollowThread:
    """Follows a project in a thread until stopped; `events` holds everything delivered, in order."""

    def __init__(
        self,
        settings: ClientSettings,
        project_id: str,
        event_filter: EventFilter | None = None,
        start_time: str | None = None,
        use_async: bool = False,
    ) -> None:
        self.events: list[Event] = []
        self.failure: BaseException | None = None
        self.stats: ClientStats | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        target = self._run_async if use_async else self._run_sync
        self._thread = threading.Thread(
            target=target, args=(settings, project_id, event_filter, start_time), daemon=True
        )
        self._thread.start()

    def _collect(self, batch: list[Event]) -> None:
        with self._lock:
            self.events.extend(batch)

    def _run_sync(self, settings: ClientSettings, project_id: str, event_filter: Any, start: Any) -> None:
        try:
            with DisruptiveClient(settings) as client:
                stream = client.follow(project_id, event_filter, start)
                self.stats = stream.stats
                for delivery in stream.deliveries():
                    self._collect(delivery.events)
                    if self._stop.is_set():
                        break
                stream.close()
        except BaseException as error:  # reported to the test
            self.failure = error

    def _run_async(self, settings: ClientSettings, project_id: str, event_filter: Any, start: Any) -> None:
        async def follow() -> None:
            async with AsyncDisruptiveClient(settings) as client:
                stream = client.follow(project_id, event_filter, start)
                self.stats = stream.stats
                async for delivery in stream.deliveries():
                    self._collect(delivery.events)
                    if self._stop.is_set():
                        break
                await stream.aclose()

        try:
            asyncio.run(follow())
        except BaseException as error:  # reported to the test
            self.failure = error

    def ids(self) -> list[str]:
        with self._lock:
            return [event.event_id for event in self.events]

    def wait_for(self, expected_ids: set[str], timeout: float = 30.0) -> set[str]:
        """Wait until every expected id was delivered (or the follower failed); returns those missing."""
        deadline = time.monotonic() + timeout
        missing = set(expected_ids)
        while time.monotonic() < deadline and self.failure is None:
            missing = expected_ids - set(self.ids())
            if not missing:
                return missing
            time.sleep(0.1)
        return expected_ids - set(self.ids())

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the follower did not stop"

    def duplicates(self) -> dict[str, int]:
        return {event_id: n for event_id, n in Counter(self.ids()).items() if n > 1}
