"""What the protocol asks a driver to do, and what the driver answers.

A driver runs the protocol's generator: for each command it yields, the driver does the I/O and sends the
answer back. Failures of the transport come back as `ConnectionFailed` values, never as exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from tap_disruptive.protocol.errors import ConnectionFailed
from tap_disruptive.protocol.events import Event
from tap_disruptive.protocol.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Send:
    """Send these requests, at most `concurrency` at a time. Answer: a list of
    `HttpResponse | ConnectionFailed`, in the order of the requests."""

    requests: tuple[HttpRequest, ...]
    concurrency: int = 1


@dataclass(frozen=True)
class OpenStream:
    """Open the stream. Answer: an `HttpResponse` (with the whole body only when the status is not 200),
    or `ConnectionFailed`. Reads on the open stream time out after `read_timeout` seconds of silence."""

    request: HttpRequest
    read_timeout: float


@dataclass(frozen=True)
class ReadStream:
    """Read what has arrived on the open stream. Answer: bytes (b"" at a clean end), or `ConnectionFailed`
    (kind "stall" when nothing came within the read timeout, "cut" when the connection broke)."""


@dataclass(frozen=True)
class CloseStream:
    """Close the stream, if one is open. Answer: None."""


@dataclass(frozen=True)
class Sleep:
    """Wait. Answer: None."""

    seconds: float


@dataclass(frozen=True)
class Deliver:
    """Hand these events to the consumer, in order (possibly none: a heartbeat). Answer: None."""

    events: list[Event]


Command = Send | OpenStream | ReadStream | CloseStream | Sleep | Deliver
Answer = list[HttpResponse | ConnectionFailed] | HttpResponse | ConnectionFailed | bytes | None
