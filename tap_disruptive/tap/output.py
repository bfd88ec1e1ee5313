"""Writing RECORD messages fast: the Singer SDK's per-record path (type conformance, message objects,
stdlib JSON) costs more than DT's stream delivers; records that need none of it are written directly."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson


class RecordWriter:
    """Writes one stream's records as Singer RECORD lines, a batch per write."""

    def __init__(self, stream_name: str, out: TextIO | None = None) -> None:
        self._prefix = b'{"type":"RECORD","stream":' + orjson.dumps(stream_name) + b',"record":'
        self._out = out

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        extracted = b',"time_extracted":"' + datetime.now(UTC).isoformat().encode() + b'"}\n'
        prefix, dumps = self._prefix, orjson.dumps
        payload = b"".join([prefix + dumps(record) + extracted for record in records])
        # The SDK writes its SCHEMA and STATE messages through sys.stdout; so do we, to keep the order.
        (self._out or sys.stdout).write(payload.decode())


def whole_line_stdout() -> None:
    """Make sure every message reaches stdout whole.

    With PYTHONUNBUFFERED set (Meltano and many containers set it), stdout's text layer writes straight
    to the file: a large write to a full pipe that a signal interrupts is cut short, and the rest of
    the message is silently dropped. A buffered writer finishes every write, so stdout gets one (and
    writes through it at once, as before).
    """
    if isinstance(sys.stdout, io.TextIOWrapper) and isinstance(sys.stdout.buffer, io.RawIOBase):
        sys.stdout.flush()
        buffered = io.BufferedWriter(sys.stdout.buffer)
        sys.stdout = io.TextIOWrapper(buffered, encoding="utf-8", line_buffering=False, write_through=True)
