"""The asynchronous driver (aiohttp), for Airflow's triggerer: it never blocks the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from typing import Any, TypeVar

import aiohttp

from tap_disruptive.drivers.failures import connection_failed
from tap_disruptive.protocol.auth import TokenCache
from tap_disruptive.protocol.commands import (
    Answer,
    CloseStream,
    Command,
    Deliver,
    OpenStream,
    ReadStream,
    Send,
    Sleep,
)
from tap_disruptive.protocol.errors import ConnectionFailed
from tap_disruptive.protocol.events import Event
from tap_disruptive.protocol.filters import EventFilter
from tap_disruptive.protocol.follower import Follower
from tap_disruptive.protocol.http import HttpRequest, HttpResponse
from tap_disruptive.protocol.rest import Rest
from tap_disruptive.protocol.settings import ClientSettings
from tap_disruptive.protocol.stats import FollowerStats

T = TypeVar("T")
_CONNECT_TIMEOUT = 10.0
_MAX_ERROR_BODY = 64 * 1024


def _failed(error: BaseException, what: str, url: str) -> ConnectionFailed:
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        kind = "stall" if what.startswith("stream") else "timeout"
    elif isinstance(error, aiohttp.ClientPayloadError):
        kind = "cut"
    else:
        kind = "cut" if what == "stream read" else "connection"
    return connection_failed(error, what, url, kind)


class AsyncDriver:
    """Runs protocol steps with aiohttp."""

    def __init__(self, settings: ClientSettings, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self._session = session
        self._own_session = session is None
        self._stream: aiohttp.ClientResponse | None = None
        self._read_timeout = settings.read_timeout

    def __repr__(self) -> str:
        return f"AsyncDriver(api_url={self.settings.api_url!r})"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=max(4, self.settings.history_concurrency))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        self._close_stream()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, steps: Generator[Command, Answer, T]) -> T:
        """Run steps that deliver no events to the end, and return their result."""
        answer: Answer = None
        try:
            while True:
                try:
                    command = steps.send(answer)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                if isinstance(command, Deliver):
                    raise TypeError("steps run with call() must not deliver events; use drive()")
                answer = await self._do(command)
        finally:
            steps.close()

    async def drive(self, steps: Generator[Command, Answer, Any]) -> AsyncIterator[list[Event]]:
        """Run steps, yielding each batch of events they deliver."""
        answer: Answer = None
        try:
            while True:
                try:
                    command = steps.send(answer)
                except StopIteration:
                    return
                if isinstance(command, Deliver):
                    yield command.events
                    answer = None
                else:
                    answer = await self._do(command)
        finally:
            steps.close()
            self._close_stream()

    async def _do(self, command: Command) -> Answer:
        if isinstance(command, ReadStream):
            return await self._read()
        if isinstance(command, Send):
            return await self.send_all(command)
        if isinstance(command, OpenStream):
            return await self._open(command)
        if isinstance(command, Sleep):
            await asyncio.sleep(command.seconds)
            return None
        if isinstance(command, CloseStream):
            self._close_stream()
            return None
        raise TypeError(f"unknown command {command!r}")

    async def send_all(self, command: Send) -> list[HttpResponse | ConnectionFailed]:
        """Send a batch, at most `concurrency` requests at a time (the sync driver uses this too)."""
        bound = asyncio.Semaphore(max(1, command.concurrency))

        async def send(request: HttpRequest) -> HttpResponse | ConnectionFailed:
            async with bound:
                return await self._send(request)

        return list(await asyncio.gather(*(send(request) for request in command.requests)))

    async def _send(self, request: HttpRequest) -> HttpResponse | ConnectionFailed:
        timeout = aiohttp.ClientTimeout(total=request.timeout, sock_connect=_CONNECT_TIMEOUT)
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
                headers = {name.lower(): value for name, value in response.headers.items()}
                return HttpResponse(response.status, headers, body)
        except (aiohttp.ClientError, TimeoutError) as error:
            return _failed(error, request.purpose, request.url)

    async def _open(self, command: OpenStream) -> HttpResponse | ConnectionFailed:
        self._close_stream()
        request = command.request
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=_CONNECT_TIMEOUT, sock_read=command.read_timeout
        )
        try:
            response = await self.session.get(
                request.url, params=list(request.params), headers=request.headers, timeout=timeout
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            return _failed(error, "stream", request.url)
        headers = {name.lower(): value for name, value in response.headers.items()}
        if response.status != 200:
            try:
                body = await response.content.read(_MAX_ERROR_BODY)
            except (aiohttp.ClientError, TimeoutError):
                body = b""
            response.release()
            return HttpResponse(response.status, headers, body)
        self._stream = response
        self._read_timeout = command.read_timeout
        return HttpResponse(200, headers, b"")

    async def _read(self) -> bytes | ConnectionFailed:
        if self._stream is None:
            return ConnectionFailed("no stream is open", kind="cut")
        try:
            return await asyncio.wait_for(self._stream.content.readany(), self._read_timeout)
        except (aiohttp.ClientError, TimeoutError) as error:
            return _failed(error, "stream read", str(self._stream.url) if self._stream is not None else "")

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = None


class AsyncEventStream:
    """A followed stream: `async for` events; `stats` counts what happened; `aclose()` ends it."""

    def __init__(self, driver: AsyncDriver, follower: Follower) -> None:
        self.follower = follower
        self.stats: FollowerStats = follower.stats
        self._driver = driver
        self._batches = driver.drive(follower.run())

    async def __aiter__(self) -> AsyncIterator[Event]:
        async for batch in self._batches:
            for event in batch:
                yield event

    def batches(self) -> AsyncIterator[list[Event]]:
        return self._batches

    async def aclose(self) -> None:
        await self._batches.aclose()  # type: ignore[attr-defined]
        await self._driver.close()


class AsyncDisruptiveClient:
    """DT's REST API and event stream, on asyncio."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.driver = AsyncDriver(settings)
        self.tokens = TokenCache(settings)
        self.stats = FollowerStats()
        self.rest = Rest(settings, self.tokens, self.stats)

    def __repr__(self) -> str:
        return f"AsyncDisruptiveClient(api_url={self.settings.api_url!r})"

    async def close(self) -> None:
        await self.driver.close()

    async def __aenter__(self) -> AsyncDisruptiveClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def project(self, project_id: str) -> dict[str, Any]:
        return await self.driver.call(self.rest.project(project_id))

    async def devices(self, project_id: str, event_filter: EventFilter | None = None) -> list[dict[str, Any]]:
        return await self.driver.call(self.rest.devices(project_id, event_filter or EventFilter()))

    async def history(
        self,
        project_id: str,
        device_ids: list[str],
        start_time: str,
        event_types: frozenset[str] | None = None,
        end_time: str | None = None,
    ) -> list[Event]:
        return await self.driver.call(
            self.rest.histories(project_id, device_ids, start_time, event_types, end_time)
        )

    def follow(
        self, project_id: str, event_filter: EventFilter | None = None, start_time: str | None = None
    ) -> AsyncEventStream:
        follower = Follower(self.settings, project_id, event_filter, start_time, tokens=self.tokens)
        return AsyncEventStream(AsyncDriver(self.settings), follower)
