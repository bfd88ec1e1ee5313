"""Events as the client hands them on: DT's envelope, with the ids in the target name split out."""

from __future__ import annotations

from typing import Any

from tap_disruptive.model.event_types import EVENT_TYPES, event_payload
from tap_disruptive.model.times import canonical_timestamp


class Event:
    """One DT event. `raw` is the object exactly as it came off the wire."""

    __slots__ = (
        "data",
        "device_id",
        "event_id",
        "event_type",
        "project_id",
        "raw",
        "target_name",
        "timestamp",
    )

    def __init__(self, raw: dict[str, Any]) -> None:
        """Build from DT's event object; raises ValueError (with the reason) if it is not one."""
        try:
            event_id, event_type, target_name = raw["eventId"], raw["eventType"], raw["targetName"]
            timestamp = raw["timestamp"]
        except (KeyError, TypeError):
            raise ValueError("event without eventId, eventType, targetName or timestamp") from None
        if not (isinstance(event_id, str) and isinstance(event_type, str) and isinstance(target_name, str)):
            raise ValueError("event with a non-string eventId, eventType or targetName")
        parts = target_name.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "devices":
            raise ValueError(f"event target is not a device: {target_name[:100]!r}")
        self.event_id = event_id
        self.event_type = event_type
        self.target_name = target_name
        self.project_id = parts[1]
        self.device_id = parts[3]
        self.timestamp = canonical_timestamp(timestamp) if isinstance(timestamp, str) else _bad(timestamp)
        self.data: Any = raw.get("data")
        self.raw = raw

    @property
    def known_type(self) -> bool:
        return self.event_type in EVENT_TYPES

    @property
    def payload(self) -> Any:
        """The type's own payload: `data.<eventType>`, or `data` itself for labelsChanged."""
        return event_payload(self.event_type, self.data)

    def __repr__(self) -> str:
        return f"Event({self.event_type} {self.event_id} of {self.device_id} at {self.timestamp})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.event_id)


def _bad(timestamp: object) -> str:
    raise ValueError(f"event timestamp is not a string: {timestamp!r}"[:120])
