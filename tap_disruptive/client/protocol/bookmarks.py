"""Bookmarks: how far a consumer has come, such that a run resumed from there loses nothing.

A delivery's `complete_until` holds once all its events have been taken. A consumer that stops part way
(a bound reached in the middle of a batch) may only claim the time before the first event it did not
take; `bookmark_after` says which. A consumer that acts once per event (an Airflow watcher firing DAG
runs) also needs to know which events after its bookmark it has already acted on: that is `Position`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.times import canonical_timestamp, just_before


def bookmark_after(
    previous: str | None, events: Sequence[Event], complete_until: str | None, taken: int
) -> str | None:
    """The bookmark once the first `taken` of a delivery's `events` have been taken.

    Never earlier than `previous` (what was claimed once stays true), and never past an event not taken.
    """
    claim = complete_until
    if claim is not None and taken < len(events):
        first_left = min(event.timestamp for event in events[taken:])
        claim = min(claim, just_before(first_left))
    if previous is None:
        return claim
    return previous if claim is None or claim < previous else claim


@dataclass(frozen=True)
class Position:
    """Every event stamped at or before `until` has been dealt with, and so have the events in `done`
    (stamped after `until`): a consumer resumed from here acts on everything else exactly once."""

    until: str | None = None
    # (timestamp, event id) of events after `until` already acted on, oldest first.
    done: tuple[tuple[str, str], ...] = ()

    def seen(self, event: Event) -> bool:
        """Whether the event was dealt with already (so it must not be acted on again)."""
        if self.until is not None and event.timestamp <= self.until:
            return True
        return any(event_id == event.event_id for _stamp, event_id in self.done)

    def advanced(
        self, events: Sequence[Event], complete_until: str | None, taken: int, acted_on: Iterable[Event]
    ) -> Position:
        """The position after taking the first `taken` of a delivery and acting on `acted_on` of them."""
        until = bookmark_after(self.until, events, complete_until, taken)
        done = {event_id: stamp for stamp, event_id in self.done}
        done.update({event.event_id: event.timestamp for event in acted_on})
        kept = sorted((stamp, event_id) for event_id, stamp in done.items() if until is None or stamp > until)
        return Position(until, tuple(kept))

    def to_json(self) -> dict[str, Any]:
        return {"until": self.until, "done": [list(pair) for pair in self.done]}

    @classmethod
    def from_json(cls, value: Any) -> Position:
        """Read a stored position; anything unreadable raises ValueError naming what is wrong."""
        if not isinstance(value, dict):
            raise ValueError(f"a stored position is an object, not {type(value).__name__}")
        until = value.get("until")
        done = value.get("done") or []
        if until is not None and not isinstance(until, str):
            raise ValueError("a stored position's until is not a timestamp")
        if not isinstance(done, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
            for pair in done
        ):
            raise ValueError("a stored position's done is not a list of [timestamp, event id]")
        return cls(
            canonical_timestamp(until) if until else None,
            tuple(sorted((canonical_timestamp(stamp), event_id) for stamp, event_id in done)),
        )
