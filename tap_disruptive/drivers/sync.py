"""The synchronous driver (requests): a pooled session, a thread pool for concurrent history reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from tap_disruptive.drivers.aio import AsyncDriver
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
_READ_SIZE = 256 * 1024


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _failed(error: requests.RequestException, what: str, url: str) -> ConnectionFailed:
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        kind = "cut"
    elif isinstance(error, requests.exceptions.ConnectTimeout):
        kind = "connect_timeout"
    elif isinstance(error, requests.exceptions.ReadTimeout) or "timed out" in str(error):
        kind = "stall" if what.startswith("stream") else "timeout"
    else:
        kind = "cut" if what == "stream read" else "connection"
    return connection_failed(error, what, url, kind)


class SyncDriver:
    """Runs protocol steps with requests."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        pool = max(4, settings.history_concurrency)
        adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # Read proxies and CA settings from the environment once, not on every request: requests
        # otherwise looks them up per call, a large share of a small request's cost.
        environment = self.session.merge_environment_settings(settings.api_url, {}, None, None, None)
        self.session.trust_env = False
        self.session.proxies.update(environment["proxies"] or {})
        self.session.verify = environment["verify"]
        if environment["cert"] is not None:
            self.session.cert = environment["cert"]
        self._threads: ThreadPoolExecutor | None = None
        self._batch_loop: asyncio.AbstractEventLoop | None = None
        self._batch_driver: AsyncDriver | None = None
        self._stream: requests.Response | None = None
        self._chunks: Iterator[bytes] | None = None

    def __repr__(self) -> str:
        return f"SyncDriver(api_url={self.settings.api_url!r})"

    def close(self) -> None:
        self._close_stream()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        if self._batch_loop is not None and self._batch_driver is not None:
            self._batch_loop.run_until_complete(self._batch_driver.close())
            self._batch_loop.close()
            self._batch_loop = None
        self.session.close()

    def call(self, steps: Generator[Command, Answer, T]) -> T:
        """Run steps that deliver no events to the end, and return their result."""
        events = self.drive(steps)
        while True:
            try:
                next(events)
            except StopIteration as stop:
                result: T = stop.value
                return result

    def drive(self, steps: Generator[Command, Answer, T]) -> Generator[list[Event], None, T]:
        """Run steps, yielding each batch of events they deliver; returns what the steps return."""
        answer: Answer = None
        try:
            while True:
                try:
                    command = steps.send(answer)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                if isinstance(command, Deliver):
                    yield command.events
                    answer = None
                else:
                    answer = self._do(command)
        finally:
            steps.close()
            self._close_stream()

    def _do(self, command: Command) -> Answer:
        if isinstance(command, ReadStream):
            return self._read()
        if isinstance(command, Send):
            return self._send_all(command)
        if isinstance(command, OpenStream):
            return self._open(command)
        if isinstance(command, Sleep):
            time.sleep(command.seconds)
            return None
        if isinstance(command, CloseStream):
            self._close_stream()
            return None
        raise TypeError(f"unknown command {command!r}")

    def _send_all(self, command: Send) -> list[HttpResponse | ConnectionFailed]:
        if command.concurrency <= 1 or len(command.requests) == 1:
            return [self._send(request) for request in command.requests]
        if _loop_running():
            if self._threads is None:
                self._threads = ThreadPoolExecutor(command.concurrency, thread_name_prefix="dt-http")
            return list(self._threads.map(self._send, command.requests))
        # Many requests at once (a gap fill over many devices) go through the async driver on a private
        # event loop: requests costs ~1.8 ms of CPU per call here and threads share one GIL, so a thread
        # pool gains nothing, while aiohttp spends ~0.45 ms and really overlaps the waiting.
        if self._batch_loop is None:
            self._batch_loop = asyncio.new_event_loop()
            self._batch_driver = AsyncDriver(self.settings)
        assert self._batch_driver is not None
        return self._batch_loop.run_until_complete(self._batch_driver.send_all(command))

    def _send(self, request: HttpRequest) -> HttpResponse | ConnectionFailed:
        try:
            response = self.session.request(
                request.method,
                request.url,
                params=list(request.params),
                headers=request.headers,
                data=request.body,
                timeout=(_CONNECT_TIMEOUT, request.timeout),
            )
        except requests.RequestException as error:
            return _failed(error, request.purpose, request.url)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return HttpResponse(response.status_code, headers, response.content)

    def _open(self, command: OpenStream) -> HttpResponse | ConnectionFailed:
        self._close_stream()
        request = command.request
        try:
            response = self.session.get(
                request.url,
                params=list(request.params),
                headers=request.headers,
                stream=True,
                timeout=(_CONNECT_TIMEOUT, command.read_timeout),
            )
        except requests.RequestException as error:
            return _failed(error, "stream", request.url)
        headers = {name.lower(): value for name, value in response.headers.items()}
        if response.status_code != 200:
            try:
                body = response.raw.read(_MAX_ERROR_BODY, decode_content=True)
            except Exception:  # the status is what matters; the body is only for the message
                body = b""
            response.close()
            return HttpResponse(response.status_code, headers, body)
        self._stream = response
        # Bounded reads: a server may send a large backlog as one chunk, and the decoder holds what it
        # is given until it is delivered.
        self._chunks = response.iter_content(chunk_size=_READ_SIZE)
        return HttpResponse(200, headers, b"")

    def _read(self) -> bytes | ConnectionFailed:
        if self._chunks is None:
            return ConnectionFailed("no stream is open", kind="cut")
        try:
            return next(self._chunks, b"")
        except requests.RequestException as error:
            return _failed(error, "stream read", self._stream.url if self._stream is not None else "")

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream, self._chunks = None, None


class EventStream:
    """A followed stream: iterate for events; `stats` counts what happened; `close()` ends it."""

    def __init__(self, driver: SyncDriver, follower: Follower) -> None:
        self.follower = follower
        self.stats: FollowerStats = follower.stats
        self._batches = driver.drive(follower.run())
        self._driver = driver

    def __iter__(self) -> Iterator[Event]:
        for batch in self._batches:
            yield from batch

    def batches(self) -> Iterator[list[Event]]:
        """Events as they arrive, a batch at a time (cheaper per event than iterating one by one).

        Batches may be empty: one comes at least every ping interval, so a consumer can stop a quiet stream.
        """
        return self._batches

    def close(self) -> None:
        self._batches.close()
        self._driver.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DisruptiveClient:
    """DT's REST API and event stream, synchronously."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.driver = SyncDriver(settings)
        # One token for the client's REST calls and every stream it follows.
        self.tokens = TokenCache(settings)
        self.stats = FollowerStats()
        self.rest = Rest(settings, self.tokens, self.stats)

    def __repr__(self) -> str:
        return f"DisruptiveClient(api_url={self.settings.api_url!r})"

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> DisruptiveClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def project(self, project_id: str) -> dict[str, Any]:
        return self.driver.call(self.rest.project(project_id))

    def projects(self) -> list[dict[str, Any]]:
        return self.driver.call(self.rest.projects())

    def devices(self, project_id: str, event_filter: EventFilter | None = None) -> list[dict[str, Any]]:
        return self.driver.call(self.rest.devices(project_id, event_filter or EventFilter()))

    def history(
        self,
        project_id: str,
        device_ids: list[str],
        start_time: str,
        event_types: frozenset[str] | None = None,
        end_time: str | None = None,
    ) -> list[Event]:
        return self.driver.call(
            self.rest.histories(project_id, device_ids, start_time, event_types, end_time)
        )

    def follow(
        self, project_id: str, event_filter: EventFilter | None = None, start_time: str | None = None
    ) -> EventStream:
        """Follow the project's events through the filter, from `start_time` (history first) if given."""
        follower = Follower(self.settings, project_id, event_filter, start_time, tokens=self.tokens)
        return EventStream(SyncDriver(self.settings), follower)
