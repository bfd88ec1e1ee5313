"""The driver: the only code that touches sockets. It carries out the protocol's commands with aiohttp,
never blocking the event loop (Airflow's triggerer runs it as it is; the synchronous client in `sync`
runs this same code on an event loop of its own)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any, TypeVar

import aiohttp

from tap_disruptive.client.drivers.failures import connection_failed
from tap_disruptive.client.protocol.auth import TokenCache
from tap_disruptive.client.protocol.clock import ServerClock
from tap_disruptive.client.protocol.commands import (
    TIMED_OUT,
    Answer,
    CloseStream,
    CollectSend,
    Command,
    Delivery,
    OpenStream,
    ReadStream,
    Send,
    Sleep,
    StartSend,
    TimedOut,
)
from tap_disruptive.client.protocol.errors import ConnectionFailed
from tap_disruptive.client.protocol.events import Event, sort_key
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.follower import Follower
from tap_disruptive.client.protocol.http import HttpRequest, HttpResponse
from tap_disruptive.client.protocol.pacing import RequestPacer
from tap_disruptive.client.protocol.rest import Rest
from tap_disruptive.client.protocol.settings import ClientSettings
from tap_disruptive.client.protocol.stats import ClientStats
from tap_disruptive.model.devices import Device

T = TypeVar("T")
_CONNECT_TIMEOUT = 10.0
_MAX_ERROR_BODY = 64 * 1024
# Bytes asked of the socket at a time: a read returns what has come, so a bigger one costs no latency,
# and on a fast stream fewer, larger reads cost less per event.
_READ_SIZE = 128 * 1024


def _failed(error: BaseException, what: str, url: str) -> ConnectionFailed:
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        kind = "timeout"
    elif isinstance(error, aiohttp.ClientPayloadError):
        kind = "cut"
    else:
        kind = "cut" if what == "stream read" else "connection"
    return connection_failed(error, what, url, kind)


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


class Driver:
    """Runs protocol steps with aiohttp; holds at most one open stream."""

    def __init__(
        self, settings: ClientSettings, pool: Callable[[], aiohttp.ClientSession], pacer: RequestPacer
    ) -> None:
        self.settings = settings
        # The client's connection pool, asked for only inside the running event loop.
        self._pool = pool
        # The client's pacer: every request of the client starts when it says.
        self._pacer = pacer
        self._stream: aiohttp.ClientResponse | None = None
        # Requests started and not collected yet (StartSend), by handle.
        self._in_flight: dict[int, asyncio.Task[list[HttpResponse | ConnectionFailed]]] = {}
        self._handles = 0

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._pool()

    def __repr__(self) -> str:
        return f"Driver(api_url={self.settings.api_url!r})"

    async def call(self, steps: Generator[Command, Answer, T]) -> T:
        """Run steps that deliver no events to the end, and return their result."""
        results: list[T] = []
        async for delivery in self.drive(_keeping_result(steps, results)):
            if delivery.events:
                raise TypeError("steps run with call() must not deliver events; use drive()")
        return results[0]

    async def drive(self, steps: Generator[Command, Answer, Any]) -> AsyncIterator[Delivery]:
        """Run steps, yielding each delivery they make."""
        answer: Answer = None
        try:
            while True:
                try:
                    command = steps.send(answer)
                except StopIteration:
                    return
                if isinstance(command, Delivery):
                    yield command
                    answer = None
                else:
                    answer = await self._do(command)
        finally:
            steps.close()
            self.close_stream()
            await self._cancel_in_flight()

    async def _do(self, command: Command) -> Answer:
        if isinstance(command, ReadStream):
            return await self._read(command.timeout)
        if isinstance(command, Send):
            return await self._send_all(command.requests, command.concurrency)
        if isinstance(command, StartSend):
            self._handles += 1
            task = asyncio.ensure_future(self._send_all(command.requests, command.concurrency))
            self._in_flight[self._handles] = task
            return self._handles
        if isinstance(command, CollectSend):
            return await self._in_flight.pop(command.handle)
        if isinstance(command, OpenStream):
            return await self._open(command.request)
        if isinstance(command, Sleep):
            await asyncio.sleep(command.seconds)
            return None
        if isinstance(command, CloseStream):
            self.close_stream()
            return None
        raise TypeError(f"unknown command {command!r}")

    async def _send_all(
        self, requests: tuple[HttpRequest, ...], concurrency: int
    ) -> list[HttpResponse | ConnectionFailed]:
        if len(requests) == 1:
            return [await self._send(requests[0])]
        bound = asyncio.Semaphore(max(1, concurrency))

        async def send(request: HttpRequest) -> HttpResponse | ConnectionFailed:
            async with bound:
                return await self._send(request)

        return list(await asyncio.gather(*(send(request) for request in requests)))

    async def _cancel_in_flight(self) -> None:
        """Requests started and never collected (the consumer stopped meanwhile) are abandoned."""
        tasks, self._in_flight = list(self._in_flight.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _paced(self) -> float:
        """Wait for the pacer's word to start a request; returns when it started (the loop's clock)."""
        loop = asyncio.get_running_loop()
        # Asked again after each wait: a 429 meanwhile may have paused every request.
        while (wait := self._pacer.delay(loop.time())) > 0:  # noqa: ASYNC110 - a deadline, not an event
            await asyncio.sleep(wait)
        started = loop.time()
        self._pacer.started(started)
        return started

    def _learn(self, started: float, response: HttpResponse) -> HttpResponse:
        self._pacer.answered(started, asyncio.get_running_loop().time(), response)
        return response

    async def _send(self, request: HttpRequest) -> HttpResponse | ConnectionFailed:
        timeout = aiohttp.ClientTimeout(total=request.timeout, sock_connect=_CONNECT_TIMEOUT)
        started = await self._paced()
        try:
            async with self.session.request(
                request.method,
                request.url,
                params=list(request.params),
                headers=request.headers,
                data=request.body,
                timeout=timeout,
            ) as response:
                body = await response.read()
                return self._learn(started, HttpResponse(response.status, _headers(response), body))
        except (aiohttp.ClientError, TimeoutError) as error:
            return _failed(error, request.purpose, request.url)

    async def _open(self, request: HttpRequest) -> HttpResponse | ConnectionFailed:
        self.close_stream()
        # No read timeout here: the protocol reads with deadlines of its own and judges silence itself.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT, sock_read=None)
        started = await self._paced()
        try:
            response = await asyncio.wait_for(
                self.session.get(
                    request.url, params=list(request.params), headers=request.headers, timeout=timeout
                ),
                request.timeout,
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            return _failed(error, "stream", request.url)
        headers = _headers(response)
        if response.status != 200:
            try:
                body = await asyncio.wait_for(response.content.read(_MAX_ERROR_BODY), request.timeout)
            except (aiohttp.ClientError, TimeoutError):
                body = b""
            response.release()
            return self._learn(started, HttpResponse(response.status, headers, body))
        self._stream = response
        return self._learn(started, HttpResponse(200, headers, b""))

    async def _read(self, wait: float) -> bytes | ConnectionFailed | TimedOut:
        stream = self._stream
        if stream is None:
            return ConnectionFailed("no stream is open", kind="cut")
        try:
            # Cancelling a read on its deadline keeps whatever is buffered for the next read. Reads are
            # bounded: the decoder is fastest on pieces that stay in the CPU's cache.
            async with asyncio.timeout(wait):
                return await stream.content.read(_READ_SIZE)
        except TimeoutError:
            return TIMED_OUT
        except aiohttp.ClientError as error:
            return _failed(error, "stream read", str(stream.url))

    def close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = None


def _keeping_result(
    steps: Generator[Command, Answer, T], results: list[T]
) -> Generator[Command, Answer, None]:
    results.append((yield from steps))


class AsyncSubscription:
    """What `follow` returns: `async for` its events, or `deliveries()` for them with their bookmarks;
    `stats` counts what happened; `aclose()` ends it."""

    def __init__(self, driver: Driver, follower: Follower) -> None:
        self.follower = follower
        self.stats: ClientStats = follower.stats
        self._deliveries = driver.drive(follower.run())

    async def __aiter__(self) -> AsyncIterator[Event]:
        async for delivery in self._deliveries:
            for event in delivery.events:
                yield event

    def deliveries(self) -> AsyncIterator[Delivery]:
        """Events as they come, a delivery at a time, each with its `complete_until`. Deliveries may be
        empty: one comes at least every `heartbeat` seconds, so a consumer can stop a quiet stream."""
        return self._deliveries

    async def aclose(self) -> None:
        await self._deliveries.aclose()  # type: ignore[attr-defined]


class AsyncDisruptiveClient:
    """DT's REST API and event stream, on asyncio. One connection pool and one token for everything
    the client does."""

    def __init__(self, settings: ClientSettings, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self._session = session
        self._own_session = session is None
        self.tokens = TokenCache(settings)
        self.stats = ClientStats()
        self.rest = Rest(settings, self.tokens, self.stats, ServerClock())
        # One pacer for every request the client makes, whichever call or subscription makes it.
        self.pacer = RequestPacer(settings.request_rate, settings.max_request_rate)

    def __repr__(self) -> str:
        return f"AsyncDisruptiveClient(api_url={self.settings.api_url!r})"

    def _pool(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use (inside the running event loop, as aiohttp wants)."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=max(8, 2 * self.settings.history_concurrency))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _driver(self) -> Driver:
        return Driver(self.settings, self._pool, self.pacer)

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncDisruptiveClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def project(self, project_id: str) -> dict[str, Any]:
        return await self._driver().call(self.rest.project(project_id))

    async def projects(self) -> list[dict[str, Any]]:
        return await self._driver().call(self.rest.projects())

    async def devices(self, project_id: str, event_filter: EventFilter | None = None) -> list[Device]:
        steps = self.rest.devices(project_id, event_filter or EventFilter())
        return await self._driver().call(steps)

    async def history(
        self,
        project_id: str,
        start_time: str,
        end_time: str | None = None,
        event_filter: EventFilter | None = None,
    ) -> list[Event]:
        """Every matching event from `start_time` to before `end_time` (else up to now), oldest first."""
        events: list[Event] = []
        stream = self.follow(project_id, event_filter, start_time, live=False, end_time=end_time)
        try:
            async for delivery in stream.deliveries():
                events += delivery.events
        finally:
            await stream.aclose()
        # Read per device: put in time order across devices.
        events.sort(key=sort_key)
        return events

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
    ) -> AsyncSubscription:
        """Follow the project's events through the filter: history from `start_time` first, then (with
        `live`) the stream; a history-only run (`live=False`) ends at `end_time`, else now.

        History far behind is read per device, planned by cost: each device's events oldest first,
        devices side by side, each delivery saying how far its device is complete (`device_until`);
        `device_starts` are such frontiers of a run before, from which those devices are read. With
        `in_order`, history comes in time order across devices (read in time slices, at more requests),
        and events from the stream wait after it opens for history that could come before them (up to
        `indexing_delay` seconds), so that every event comes in time order."""
        follower = Follower(
            self.settings,
            project_id,
            event_filter,
            start_time,
            live=live,
            end_time=end_time,
            in_order=in_order,
            device_starts=device_starts,
            tokens=self.tokens,
        )
        return AsyncSubscription(self._driver(), follower)

    def follow_many(
        self,
        starts: dict[str, str | None],
        event_filter: EventFilter | None = None,
        *,
        live: bool = True,
        end_time: str | None = None,
        device_starts: Mapping[str, Mapping[str, str]] | None = None,
    ) -> AsyncSubscriptions:
        """Follow several projects at once (`starts`: project id to start time), merged as they come;
        `device_starts`: per project, devices known complete further (see `follow`)."""
        device_starts = device_starts or {}
        return AsyncSubscriptions(
            {
                project_id: self.follow(
                    project_id,
                    event_filter,
                    start,
                    live=live,
                    end_time=end_time,
                    device_starts=device_starts.get(project_id),
                )
                for project_id, start in starts.items()
            }
        )


class AsyncSubscriptions:
    """What `follow_many` returns: `deliveries()` of every project as they come, each with its project
    id; `stats` adds up what happened; `aclose()` ends them all."""

    def __init__(self, subscriptions: dict[str, AsyncSubscription]) -> None:
        self.subscriptions = subscriptions
        self._merged = merge(subscriptions)

    @property
    def stats(self) -> ClientStats:
        return ClientStats.total(subscription.stats for subscription in self.subscriptions.values())

    def deliveries(self) -> AsyncIterator[tuple[str, Delivery]]:
        return self._merged

    async def aclose(self) -> None:
        await self._merged.aclose()  # type: ignore[attr-defined]


async def merge(subscriptions: dict[str, AsyncSubscription]) -> AsyncIterator[tuple[str, Delivery]]:
    """The deliveries of several subscriptions as they come, each with its key; ends when all have
    ended, and raises the first error any of them raised."""
    if len(subscriptions) == 1:
        ((key, subscription),) = subscriptions.items()
        try:
            async for delivery in subscription.deliveries():
                yield key, delivery
        finally:
            await subscription.aclose()
        return
    queue: asyncio.Queue[tuple[str, Delivery] | BaseException | None] = asyncio.Queue(maxsize=16)

    async def pump(key: str, subscription: AsyncSubscription) -> None:
        try:
            async for delivery in subscription.deliveries():
                await queue.put((key, delivery))
            await queue.put(None)
        except Exception as error:  # handed to the consumer, who stops every subscription
            await queue.put(error)
        finally:
            await subscription.aclose()

    tasks = [asyncio.create_task(pump(key, subscription)) for key, subscription in subscriptions.items()]
    running = len(tasks)
    try:
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
