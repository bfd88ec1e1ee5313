"""What the protocol asks a driver to do, and what the driver answers.

A driver runs the protocol's generator: for each command it yields, the driver does the I/O and sends the
answer back. Failures of the transport come back as `ConnectionFailed` values, never as exceptions.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from tap_disruptive.client.protocol.errors import ConnectionFailed
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.http import HttpRequest, HttpResponse


@dataclass(frozen=True, slots=True)
class Send:
    """Send these requests, at most `concurrency` at a time. Answer: a list of
    `HttpResponse | ConnectionFailed`, in the order of the requests."""

    requests: tuple[HttpRequest, ...]
    concurrency: int = 1


@dataclass(frozen=True, slots=True)
class StartSend:
    """Start sending these requests, `concurrency` at a time, and answer at once: the answers are waited
    for with `CollectSend`, so that what the consumer does meanwhile overlaps the requests in flight.
    Answer: a handle (int)."""

    requests: tuple[HttpRequest, ...]
    concurrency: int = 1


@dataclass(frozen=True, slots=True)
class CollectSend:
    """Wait for the answers of a `StartSend`. Answer: as a `Send`'s."""

    handle: int


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Open the stream. Answer: an `HttpResponse` (with the whole body only when the status is not 200),
    or `ConnectionFailed`."""

    request: HttpRequest


@dataclass(frozen=True, slots=True)
class ReadStream:
    """Read what has arrived on the open stream, waiting at most `timeout` seconds. Answer: bytes (b"" at
    a clean end), `TIMED_OUT` when nothing came in time (the stream stays open), or `ConnectionFailed`."""

    timeout: float


class TimedOut:
    """The answer to a ReadStream that found nothing within its timeout."""

    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT = TimedOut()


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Close the stream, if one is open. Answer: None."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait. Answer: None."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """Hand these events to the consumer, in order (possibly none: a heartbeat). Answer: None.

    `complete_until` holds once the consumer has taken every one of them: each matching event stamped
    at or before it has then been delivered (None while nothing is known). Events read from history
    come in time order; see `bookmarks.bookmark_after` for a consumer that stops part way.

    A catch-up planned per device (`plan`) delivers one device at a time, its events oldest first:
    `device_until` then says how far that device is complete once every event is taken, which may be
    ahead of `complete_until`, the project's.
    """

    events: list[Event]
    complete_until: str | None
    device_id: str | None = None
    device_until: str | None = None


Command = Send | StartSend | CollectSend | OpenStream | ReadStream | CloseStream | Sleep | Delivery
Answer = (
    list[HttpResponse | ConnectionFailed] | HttpResponse | ConnectionFailed | TimedOut | bytes | int | None
)
# The protocol's steps: a generator of commands, sent their answers, returning nothing.
Steps = Generator[Command, Answer, None]
