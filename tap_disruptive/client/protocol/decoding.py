"""The stream decoder: bytes in, events, pings, stream errors and bad lines out. No I/O.

It never raises on input. DT's stream is newline-delimited JSON, or Server-Sent Events when asked for;
either way each line is reported as what it is: an event, a ping, an error line (in either of the two
shapes DT has used), or a bad line (blank, not JSON, an unexpected object, a malformed event, or a
line cut off by the end of the stream). Unknown event types are events like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from tap_disruptive.client.protocol.events import Event, WireEvent

# A line longer than this is no DT event; it is reported and skipped rather than buffered without end.
MAX_LINE_BYTES = 4 * 1024 * 1024
_EXCERPT = 120
_SSE_IGNORED = (b"event:", b"id:", b"retry:", b":")

# gRPC status codes DT's gateway may put in an error line, as HTTP statuses.
GRPC_TO_HTTP = {
    1: 408,  # CANCELLED: DT ends long streams with it ("closing stream")
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
}


@dataclass(frozen=True, slots=True)
class Ping:
    timestamp: str | None


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error line. `status` is its HTTP meaning (a gRPC code is translated), None if it has none."""

    status: int | None
    message: str
    shape: str  # "code" ({"code","message","details"}), "grpcCode" (the older gateway), or "text"


@dataclass(frozen=True, slots=True)
class BadLine:
    kind: str  # blank, not_json, unexpected, malformed_event, too_long, truncated
    excerpt: str


StreamItem = Event | Ping | StreamError | BadLine


def _excerpt(line: bytes) -> str:
    return line[:_EXCERPT].decode("utf-8", "replace")


class StreamDecoder:
    """Turns stream bytes, in chunks of any size, into stream items."""

    def __init__(self, sse: bool = False, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.sse = sse
        self.max_line_bytes = max_line_bytes
        self._partial = b""
        self._skipping_long_line = False
        self._sse_data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[StreamItem]:
        items: list[StreamItem] = []
        if self._skipping_long_line:  # drop the rest of a line already reported as too long
            end = chunk.find(b"\n")
            if end < 0:
                return items
            chunk, self._skipping_long_line = chunk[end + 1 :], False
        if not chunk:
            return items
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(b"\n")
        if cut >= 0:
            complete, self._partial = data[:cut], data[cut + 1 :]
            if self.sse or not self._all_json(complete, items):
                for line in complete.split(b"\n"):
                    self._line(line, items)
        else:
            self._partial = data
        if len(self._partial) > self.max_line_bytes:
            items.append(BadLine("too_long", _excerpt(self._partial)))
            self._partial = b""
            self._skipping_long_line = True
        return items

    def finish(self) -> list[StreamItem]:
        """The stream ended: whatever is left is a line cut short (or, in SSE, an undelivered message)."""
        items: list[StreamItem] = []
        if self._partial.strip() and not self._skipping_long_line:
            items.append(BadLine("truncated", _excerpt(self._partial)))
        if self._sse_data:
            items.append(BadLine("truncated", _excerpt(b"\n".join(self._sse_data))))
        self._partial, self._sse_data, self._skipping_long_line = b"", [], False
        return items

    @staticmethod
    def _all_json(complete: bytes, items: list[StreamItem]) -> bool:
        """The fast path: decode a run of NDJSON lines at once; False if they are not all stream lines.

        One decode for a whole chunk, into typed structs with the payload left as JSON text, costs a
        fraction of parsing each line into dicts. A blank or broken line makes the run fail, or changes
        its length, and the lines go one by one instead.
        """
        try:
            lines = _LINE.decode_lines(complete)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        if len(lines) != complete.count(b"\n") + 1:
            return False
        append = items.append
        for line in lines:
            # `_item`, but an event (nearly every line) is made here: two calls less a line.
            result = line.result
            wire = None if result is None else result.event
            if wire is None or wire.event_type == "ping":
                append(_item(line))
                continue
            try:
                append(
                    Event(wire.event_id, wire.event_type, wire.target_name, wire.timestamp, bytes(wire.data))
                )
            except ValueError as error:
                append(BadLine("malformed_event", str(error)))
        return True

    def _line(self, line: bytes, items: list[StreamItem]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            if self.sse:
                if self._sse_data:  # a blank line ends an SSE message
                    items.append(parse_line(b"\n".join(self._sse_data)))
                    self._sse_data = []
            else:
                items.append(BadLine("blank", ""))
            return
        if line.startswith(b"data:"):
            data = line[6:] if line.startswith(b"data: ") else line[5:]
            if self.sse:
                self._sse_data.append(data)
            else:
                items.append(parse_line(data))
            return
        if line.startswith(_SSE_IGNORED):
            return
        # A bare JSON line: NDJSON, or a server that ignored the request for SSE.
        items.append(parse_line(line))


# Decoded from JSON, the structs can be in no cycle: the garbage collector need not track them.
class _Result(msgspec.Struct, gc=False):
    event: WireEvent | None = None


class _Line(msgspec.Struct, gc=False):
    """A stream line: a result (an event or a ping), or an error in one of its shapes."""

    result: _Result | None = None
    error: Any = None
    code: Any = None


_LINE = msgspec.json.Decoder(_Line)


def parse_line(line: bytes) -> StreamItem:
    """One line's JSON object as a stream item."""
    try:
        return _item(_LINE.decode(line))
    except msgspec.ValidationError as error:
        reason = str(error)
        if "$.result.event" in reason:  # an event, but not as DT sends them
            return BadLine("malformed_event", f"event with {reason[:200]}")
        return BadLine("unexpected", _excerpt(line))
    except msgspec.DecodeError:
        return BadLine("not_json", _excerpt(line))


def _item(line: _Line) -> StreamItem:
    result = line.result
    if result is not None and result.event is not None:
        wire = result.event
        if wire.event_type == "ping":
            return Ping(wire.timestamp or None)
        try:
            return Event.from_wire(wire)
        except ValueError as error:
            return BadLine("malformed_event", str(error))
    if line.error is not None:
        return stream_error(line.error, line.code)
    return BadLine("unexpected", "a line with neither a result nor an error")


def stream_error(error: Any, outer_code: Any = None) -> StreamError:
    """An error line's meaning, in any of the shapes DT has sent (or its REST error body)."""
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("httpStatus") or "stream error")[:200]
        if isinstance(error.get("httpCode"), int):
            return StreamError(error["httpCode"], message, "grpcCode")
        if isinstance(error.get("grpcCode"), int):
            return StreamError(GRPC_TO_HTTP.get(error["grpcCode"]), message, "grpcCode")
        code = error.get("code")
        if isinstance(code, int):
            # DT's client treats codes below 100 as gRPC codes, and so do we.
            return StreamError(code if code >= 100 else GRPC_TO_HTTP.get(code), message, "code")
        return StreamError(None, message, "code")
    status = outer_code if isinstance(outer_code, int) and outer_code >= 100 else None
    return StreamError(status, str(error)[:200], "text")
