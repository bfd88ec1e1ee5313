"""Singer messages on stdout, fast and whole: the tap's message writer, and stdout made safe for it."""

from __future__ import annotations

import io
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from singer_sdk.singerlib import Message, RecordMessage
from singer_sdk.singerlib.encoding.base import GenericSingerWriter

# Records wait at most this long, or until this many bytes wait, before they are written out.
FLUSH_SECONDS = 0.25
FLUSH_BYTES = 256 * 1024


class SingerLineWriter(GenericSingerWriter[bytes, Message]):
    """Writes messages as JSON lines with orjson, records a batch at a time.

    Records are buffered and written together (one system call for many); any other message (SCHEMA,
    STATE) first writes the records before it, so the order on stdout is the order of the messages. A
    record's values may be `orjson.Fragment`s: JSON text passed through as it came.
    """

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flushed_at = time.monotonic()

    def serialize_message(self, message: Message) -> bytes:
        return orjson.dumps(message.to_dict(), option=orjson.OPT_UTC_Z)

    def write_message(self, message: Message) -> None:
        line = self.serialize_message(message) + b"\n"
        self._pending.append(line)
        self._pending_bytes += len(line)
        if (
            not isinstance(message, RecordMessage)
            or self._pending_bytes >= FLUSH_BYTES
            or time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        ):
            self.flush()

    def write_record_lines(self, stream: str, records: list[bytes], version: int | None = None) -> None:
        """Write a batch of RECORD messages of one stream, each record given as its JSON text: the same
        lines as `write_message` would write. An empty batch writes out what has waited too long."""
        if records:
            head = b'{"type":"RECORD","stream":' + orjson.dumps(stream) + b',"record":'
            tail = b',"time_extracted":' + orjson.dumps(datetime.now(UTC), option=orjson.OPT_UTC_Z) + b"}\n"
            if version is not None:
                tail = b',"version":' + orjson.dumps(version) + tail
            # Joined once here and once by `flush`: concatenating a large batch would copy it each time.
            batch = (tail + head).join(records)
            self._pending += (head, batch, tail)
            self._pending_bytes += len(head) + len(batch) + len(tail)
        if self._pending_bytes >= FLUSH_BYTES or time.monotonic() - self._flushed_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write out what waits."""
        if self._pending:
            write_out(b"".join(self._pending))
            self._pending, self._pending_bytes = [], 0
        self._flushed_at = time.monotonic()


def write_out(payload: bytes) -> None:
    out: Any = sys.stdout
    binary = getattr(out, "buffer", None)
    if binary is None:  # stdout replaced by a text stream (a test capturing it)
        out.write(payload.decode())
        return
    out.flush()  # anything written through the text layer goes first
    binary.write(payload)
    binary.flush()


def whole_line_stdout() -> None:
    """Make sure every message reaches stdout whole.

    With PYTHONUNBUFFERED set (Meltano and many containers set it), stdout's binary layer is the raw
    file: a large write to a full pipe that a signal interrupts is cut short, and the rest of the
    message is silently dropped. A buffered writer finishes every write, so stdout gets one (and
    writes through it at once, as before).
    """
    if isinstance(sys.stdout, io.TextIOWrapper) and isinstance(sys.stdout.buffer, io.RawIOBase):
        sys.stdout.flush()
        buffered = io.BufferedWriter(sys.stdout.buffer)
        sys.stdout = io.TextIOWrapper(buffered, encoding="utf-8", line_buffering=False, write_through=True)
