"""Fault injection: what can go wrong on a stream connection, or on the next HTTP answers."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from tap_disruptive.emulator.errors import ApiError

# Faults that happen on an open stream connection.
STREAM_FAULTS = frozenset({"cut", "end", "stall", "blank", "garbage", "error", "error_v1"})
# A fault answering the next `count` connects with an HTTP status instead of serving them.
HTTP_FAULT = "http"
FAULT_KINDS = STREAM_FAULTS | {HTTP_FAULT}
HTTP_SCOPES = frozenset({"stream", "rest", "any"})


def fault_kind(body: Any, what: str, fields: Iterable[str], kinds: Collection[str]) -> str:
    """The kind of a fault asked for in a JSON body (`what`: "fault", "push fault"), checked: an object,
    no field but `fields`, a kind of `kinds`; ApiError 400 naming the problem otherwise."""
    if not isinstance(body, dict):
        raise ApiError(400, f"a {what} is a JSON object with a kind")
    unknown = set(body) - set(fields)
    if unknown:
        raise ApiError(400, f"unknown {what} field: {sorted(unknown)[0]}")
    kind = body.get("kind")
    if kind not in kinds:
        raise ApiError(400, f"unknown {what} kind {kind!r}; one of {', '.join(sorted(kinds))}")
    return str(kind)


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    kind: cut (connection cut in the middle of a chunk), end (clean end of body), stall (no data and no
    pings for `seconds`, then the connection drops), blank (a blank line), garbage (a non-JSON line),
    error (a gateway-v2 error line `{"error":{"code","message","details"}}` then the end), error_v1
    (the older `{"error":{"grpcCode","httpCode",...}}` shape then the end), or http (the next `count`
    connects in `scope` are answered with `status`; 429 carries Retry-After, 502 is an HTML page).
    """

    kind: str
    after_events: int = 0
    seconds: float = 15.0
    status: int = 503
    code: int = 14
    retry_after: int = 1
    count: int = 1
    scope: str = "stream"

    @classmethod
    def from_json(cls, body: Any) -> Fault:
        kind = fault_kind(body, "fault", cls.__dataclass_fields__, FAULT_KINDS)
        try:
            fault = cls(**body)
        except TypeError as error:
            raise ApiError(400, f"bad fault: {error}") from None
        numbers = (fault.after_events, fault.seconds, fault.retry_after, fault.count)
        if any(not isinstance(n, int | float) or n < 0 for n in numbers):
            raise ApiError(400, "fault numbers must be non-negative")
        if fault.scope not in HTTP_SCOPES:
            raise ApiError(400, f"fault scope must be one of {', '.join(sorted(HTTP_SCOPES))}")
        if kind == HTTP_FAULT and not 400 <= fault.status <= 599:
            raise ApiError(400, "an http fault's status must be 4xx or 5xx")
        return fault

    def describe(self) -> str:
        """The fields that matter for this kind, as `key=value` words for a log line."""
        if self.kind == HTTP_FAULT:
            return f"status={self.status} count={self.count} scope={self.scope}"
        words = f"after_events={self.after_events}"
        if self.kind == "stall":
            words += f" seconds={self.seconds:g}"
        elif self.kind == "error":
            words += f" code={self.code}"
        return words


class HttpFaults:
    """HTTP answers queued for the next connects."""

    def __init__(self) -> None:
        self._queue: list[list[Any]] = []  # [fault, remaining]

    def add(self, fault: Fault) -> None:
        self._queue.append([fault, fault.count])

    def take(self, is_stream: bool) -> Fault | None:
        for entry in self._queue:
            fault: Fault = entry[0]
            if fault.scope == "any" or (fault.scope == "stream") == is_stream:
                entry[1] -= 1
                if entry[1] <= 0:
                    self._queue.remove(entry)
                return fault
        return None

    def clear(self) -> None:
        self._queue.clear()
