"""Reading a raw stream connection line by line in a background thread (the emulator's tests)."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import requests


class LineReader:
    """Reads a raw stream connection's lines into a queue, and records how the connection ended."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.lines: queue.Queue[str] = queue.Queue()
        self.ended: BaseException | str | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                self.lines.put(line)
            self.ended = "clean end"
        except requests.RequestException as error:
            self.ended = error
        finally:
            self.done.set()

    def next_line(self, timeout: float = 10.0) -> str:
        return self.lines.get(timeout=timeout)

    def next_event(self, timeout: float = 10.0, skip_pings: bool = True) -> dict[str, Any]:
        """The next stream object, skipping pings; raises queue.Empty on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if not line:
                continue
            obj: dict[str, Any] = json.loads(line)
            if skip_pings and obj.get("result", {}).get("event", {}).get("eventType") == "ping":
                continue
            return obj

    def wait_end(self, timeout: float = 20.0) -> BaseException | str | None:
        self.done.wait(timeout)
        return self.ended

    def close(self) -> None:
        self.response.close()


def open_stream(
    session: requests.Session, url: str, params: dict[str, Any] | None = None, sse: bool = False
) -> LineReader:
    headers = {"Accept": "text/event-stream"} if sse else {}
    response = session.get(url, params=params, headers=headers, stream=True, timeout=(10, 30))
    response.raise_for_status()
    return LineReader(response)
