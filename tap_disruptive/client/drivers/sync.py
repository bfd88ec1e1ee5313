"""The synchronous client, for the Singer tap and Airflow's workers: the asyncio client of `aio` run on
an event loop of its own. The I/O is written once, in `aio`, with aiohttp; this module only runs it.

The private loop runs in the calling thread (no thread switches on the hot path: handing every batch
from one thread to another under the GIL costs more than reading it). Called from a thread that is
itself running an event loop, where that is not possible, a worker thread runs it instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tap_disruptive.client.drivers.aio import AsyncDisruptiveClient, AsyncSubscription, AsyncSubscriptions
from tap_disruptive.client.protocol.commands import Delivery
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.pacing import RequestPacer
from tap_disruptive.client.protocol.settings import ClientSettings
from tap_disruptive.client.protocol.stats import ClientStats
from tap_disruptive.model.devices import Device

T = TypeVar("T")


class PrivateLoop:
    """An event loop of the client's own; `run` waits for a coroutine on it. One call at a time."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._worker: ThreadPoolExecutor | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.loop.run_until_complete(coroutine)
        # Called from async code: this thread's loop is busy, so a worker thread runs ours.
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="disruptive-client")
        return self._worker.submit(self.loop.run_until_complete, coroutine).result()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown()
        if not self.loop.is_closed():
            self.loop.close()


class Subscription:
    """What `follow` returns: iterate for its events, or `deliveries()` for them with their bookmarks;
    `stats` counts what happened; `close()` ends it."""

    def __init__(self, loop: PrivateLoop, stream: AsyncSubscription) -> None:
        self.follower = stream.follower
        self.stats: ClientStats = stream.stats
        self._loop = loop
        self._stream = stream
        self._closed = False

    def __iter__(self) -> Iterator[Event]:
        for delivery in self.deliveries():
            yield from delivery.events

    def deliveries(self) -> Generator[Delivery, None, None]:
        """Events as they come, a delivery at a time, each with its `complete_until`. Deliveries may be
        empty: one comes at least every `heartbeat` seconds, so a consumer can stop a quiet stream."""
        try:
            yield from _each(self._loop, self._stream.deliveries())
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.run(self._stream.aclose())

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DisruptiveClient:
    """DT's REST API and event stream, synchronously (aiohttp underneath, on a private event loop)."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._loop = PrivateLoop()
        self.aio = AsyncDisruptiveClient(settings)

    def __repr__(self) -> str:
        return f"DisruptiveClient(api_url={self.settings.api_url!r})"

    @property
    def pacer(self) -> RequestPacer:
        """The pacer every request of the client waits on (its rate, requests and 429s)."""
        return self.aio.pacer

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

    def devices(self, project_id: str, event_filter: EventFilter | None = None) -> list[Device]:
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
        device_starts: Mapping[str, str] | None = None,
    ) -> Subscription:
        """Follow the project's events through the filter, from `start_time` (history first) if given;
        see `AsyncDisruptiveClient.follow`."""
        stream = self.aio.follow(
            project_id,
            event_filter,
            start_time,
            live=live,
            end_time=end_time,
            in_order=in_order,
            device_starts=device_starts,
        )
        return Subscription(self._loop, stream)

    def follow_many(
        self,
        starts: dict[str, str | None],
        event_filter: EventFilter | None = None,
        *,
        live: bool = True,
        end_time: str | None = None,
        device_starts: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Subscriptions:
        """Follow several projects at once (`starts`: project id to start time), merged as they come;
        `device_starts`: per project, devices known complete further (see `follow`)."""
        return Subscriptions(
            self._loop,
            self.aio.follow_many(
                starts, event_filter, live=live, end_time=end_time, device_starts=device_starts
            ),
        )


class Subscriptions:
    """What `follow_many` returns: `deliveries()` of every project as they come, each with its project
    id; `stats` adds up what happened; `close()` ends them all."""

    def __init__(self, loop: PrivateLoop, merged: AsyncSubscriptions) -> None:
        self._loop = loop
        self._merged = merged

    @property
    def stats(self) -> ClientStats:
        return self._merged.stats

    def deliveries(self) -> Generator[tuple[str, Delivery], None, None]:
        try:
            yield from _each(self._loop, self._merged.deliveries())
        finally:
            self._loop.run(self._merged.aclose())


def _each(loop: PrivateLoop, iterator: AsyncIterator[T]) -> Generator[T, None, None]:
    """The items of an async iterator, each awaited on the private loop."""
    while True:
        try:
            yield loop.run(_next(iterator))
        except StopAsyncIteration:
            return


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()
