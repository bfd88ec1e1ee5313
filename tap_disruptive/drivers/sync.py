"""The synchronous client, for the Singer tap and Airflow's workers: the asyncio client of `aio` run on
an event loop of its own, in a background thread. The I/O is written once, in `aio`, with aiohttp; this
module only carries calls and results across threads, so it works whether or not the calling thread
runs an event loop itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Generator, Iterator
from typing import Any, TypeVar

from tap_disruptive.drivers.aio import AsyncDisruptiveClient, AsyncEventStream
from tap_disruptive.protocol.commands import Delivery
from tap_disruptive.protocol.events import Event
from tap_disruptive.protocol.filters import EventFilter
from tap_disruptive.protocol.settings import ClientSettings
from tap_disruptive.protocol.stats import FollowerStats

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread; `run` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="disruptive-client", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # interrupted here (a signal): stop the work there too
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class EventStream:
    """A followed stream: iterate for events, or `deliveries()` for them with their bookmarks; `stats`
    counts what happened; `close()` ends it."""

    def __init__(self, loop: LoopThread, stream: AsyncEventStream) -> None:
        self.follower = stream.follower
        self.stats: FollowerStats = stream.stats
        self._loop = loop
        self._stream = stream
        self._closed = False

    def __iter__(self) -> Iterator[Event]:
        for delivery in self.deliveries():
            yield from delivery.events

    def deliveries(self) -> Generator[Delivery, None, None]:
        """Events as they come, a delivery at a time, each with its `complete_until`. Deliveries may be
        empty: one comes at least every `heartbeat` seconds, so a consumer can stop a quiet stream."""
        deliveries = self._stream.deliveries()
        try:
            while True:
                try:
                    yield self._loop.run(_next(deliveries))
                except StopAsyncIteration:
                    return
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.run(self._stream.aclose())

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DisruptiveClient:
    """DT's REST API and event stream, synchronously (aiohttp underneath, on a private event loop)."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._loop = LoopThread()
        self.aio = AsyncDisruptiveClient(settings)

    def __repr__(self) -> str:
        return f"DisruptiveClient(api_url={self.settings.api_url!r})"

    def close(self) -> None:
        try:
            self._loop.run(self.aio.close())
        finally:
            self._loop.close()

    def __enter__(self) -> DisruptiveClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def project(self, project_id: str) -> dict[str, Any]:
        return self._loop.run(self.aio.project(project_id))

    def projects(self) -> list[dict[str, Any]]:
        return self._loop.run(self.aio.projects())

    def devices(self, project_id: str, event_filter: EventFilter | None = None) -> list[dict[str, Any]]:
        return self._loop.run(self.aio.devices(project_id, event_filter))

    def history(
        self,
        project_id: str,
        start_time: str,
        end_time: str | None = None,
        event_filter: EventFilter | None = None,
    ) -> list[Event]:
        """Every matching event from `start_time` to before `end_time` (else up to now), oldest first."""
        return self._loop.run(self.aio.history(project_id, start_time, end_time, event_filter))

    def follow(
        self,
        project_id: str,
        event_filter: EventFilter | None = None,
        start_time: str | None = None,
        *,
        live: bool = True,
        end_time: str | None = None,
        in_order: bool = False,
    ) -> EventStream:
        """Follow the project's events through the filter, from `start_time` (history first) if given;
        see `AsyncDisruptiveClient.follow`."""
        stream = self.aio.follow(
            project_id, event_filter, start_time, live=live, end_time=end_time, in_order=in_order
        )
        return EventStream(self._loop, stream)

    def follow_many(
        self,
        starts: dict[str, str | None],
        event_filter: EventFilter | None = None,
        *,
        live: bool = True,
        end_time: str | None = None,
    ) -> Generator[tuple[str, Delivery], None, None]:
        """Follow several projects at once (`starts`: project id to start time), merged as they come."""
        merged = self.aio.follow_many(starts, event_filter, live=live, end_time=end_time)
        try:
            while True:
                try:
                    yield self._loop.run(_next(merged))
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run(merged.aclose())  # type: ignore[attr-defined]


async def _next(iterator: Any) -> Any:
    return await iterator.__anext__()
