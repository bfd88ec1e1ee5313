"""Faults on Data Connector pushes, injected through `POST /_emulator/push-faults`.

Each fault acts on the next events a connector delivers, then is spent:

* duplicate: each of the next `count` events is pushed a second time once it was acknowledged.
* reorder: the next `count` pairs of neighbouring events are pushed in swapped order (the first of a
  pair waits up to `seconds` for its neighbour; alone, it goes as it is).
* slow: each of the next `count` pushes waits `seconds` before it is sent.
* burst: the next `count` events are held until all are queued or `seconds` passed, then pushed back
  to back.

`connector` names one connector by id; without it the fault goes to every connector there is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tap_disruptive.emulator.errors import ApiError
from tap_disruptive.emulator.faults import fault_kind

DUPLICATE = "duplicate"
REORDER = "reorder"
SLOW = "slow"
BURST = "burst"
PUSH_FAULT_KINDS = frozenset({DUPLICATE, REORDER, SLOW, BURST})


@dataclass(frozen=True)
class PushFault:
    kind: str
    count: int = 1
    seconds: float = 2.0
    connector: str | None = None

    @classmethod
    def from_json(cls, body: Any) -> PushFault:
        kind = fault_kind(body, "push fault", cls.__dataclass_fields__, PUSH_FAULT_KINDS)
        count, seconds = body.get("count", 1), body.get("seconds", 2.0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ApiError(400, "a push fault's count must be a whole number of at least 1")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
            raise ApiError(400, "a push fault's seconds must be a number from 0 to 3600")
        connector = body.get("connector")
        if connector is not None and not isinstance(connector, str):
            raise ApiError(400, "a push fault's connector is a data connector id")
        return cls(kind, count, float(seconds), connector)

    def describe(self) -> str:
        words = f"count={self.count}"
        if self.kind != DUPLICATE:
            words += f" seconds={self.seconds:g}"
        return words + (f" connector={self.connector}" if self.connector else "")


class PendingPushFault:
    """A fault scheduled on one connector, and how many events it still acts on."""

    def __init__(self, fault: PushFault) -> None:
        self.fault = fault
        self.remaining = fault.count
