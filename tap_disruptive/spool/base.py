"""The spool's one interface: append a push (stored or duplicate), read on from a seq, prune old rows.

`seq` is handed out in commit order and never reused, pruned rows included: a consumer that remembers the
last seq it read and asks for the rows after it misses nothing and sees nothing twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from tap_disruptive.model.pushes import Push

READ_LIMIT = 1000


class Appended(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"


class SpoolError(Exception):
    """The spool could not do what was asked (unreachable, locked, full disk); the caller may retry."""


class SpoolMissing(SpoolError):
    """A reader was pointed at a spool no receiver has made (a wrong path or database): no retry helps."""


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    event_id: str
    event_type: str
    target_name: str
    timestamp: str
    # When the receiver stored it, a canonical stamp.
    received_at: str
    # The push body as received.
    body: str

    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = self.document()["event"]
        return event

    @property
    def labels(self) -> dict[str, Any]:
        labels: dict[str, Any] = self.document().get("labels") or {}
        return labels

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.document().get("metadata") or {}
        return metadata


@dataclass(frozen=True)
class SpoolStats:
    events: int
    oldest_received_at: str | None
    newest_received_at: str | None


class Spool(Protocol):
    """Durable storage of pushes. Calls block; `OffloadedSpool` runs them off the event loop."""

    kind: str

    def append(self, push: Push, received_at: float) -> Appended:
        """Store `push` durably unless its eventId is already stored; returns only once it is on disk."""
        ...

    def read(self, after_seq: int = 0, limit: int = READ_LIMIT) -> list[SpooledEvent]:
        """Up to `limit` events with a seq above `after_seq`, in seq order."""
        ...

    def prune(self, older_than: float) -> int:
        """Delete events received before `older_than` (unix seconds); returns how many. The highest seq
        deleted is remembered (`pruned_through`), so that a reader left behind learns what it missed."""
        ...

    def pruned_through(self) -> int:
        """The highest seq ever pruned (0 if none)."""
        ...

    def last_seq(self) -> int:
        """The highest seq stored (0 if none): where a reader of only what comes next starts."""
        ...

    def stats(self) -> SpoolStats: ...

    def ping(self) -> None:
        """Raise SpoolError unless the storage answers."""
        ...

    def close(self) -> None: ...
