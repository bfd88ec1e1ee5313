"""Events as the client hands them on: DT's envelope, with the ids in the target name split out and the
time in canonical form. The payload (`data`) stays the JSON text it came as until it is asked for: a
consumer that passes it on (the tap's records) never decodes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from tap_disruptive.model.event_types import EVENT_TYPES, event_payload
from tap_disruptive.model.ids import split_target_name
from tap_disruptive.model.times import canonical_timestamp

_NULL = msgspec.Raw(b"null")


class WireEvent(msgspec.Struct, rename="camel", gc=False):
    """DT's event object as it comes on the stream and in history; `data` undecoded. (Not tracked by the
    garbage collector: it holds only strings and JSON text, so it can be in no cycle.)"""

    event_id: str = ""
    target_name: str = ""
    event_type: str = ""
    timestamp: str = ""
    data: msgspec.Raw = _NULL


class Event:
    """One DT event."""

    __slots__ = (
        "_data",
        "data_json",
        "device_id",
        "event_id",
        "event_type",
        "known_type",
        "project_id",
        "target_name",
        "timestamp",
    )

    def __init__(
        self, event_id: str, event_type: str, target_name: str, timestamp: str, data_json: bytes
    ) -> None:
        """Raises ValueError (with the reason) for an event DT cannot have sent: no id or type, a target
        that is not a device, a time that is no real time."""
        if not event_id or not event_type:
            raise ValueError("event without eventId or eventType")
        self.project_id, self.device_id = _TARGETS.get(target_name) or _device_of(target_name)
        self.event_id = event_id
        self.event_type = event_type
        # Whether DT's model has the type: asked of every event, so an attribute rather than a property.
        self.known_type = event_type in EVENT_TYPES
        self.target_name = target_name
        # A stamp in canonical form in a second already seen so (nearly every one) is checked here, at a
        # fraction of the cost of a call: its shape (all 27 characters) and its second are known good.
        if timestamp[:20] in _CANONICAL_SECONDS and timestamp[20:26].isdigit() and timestamp[26:] == "Z":
            self.timestamp = timestamp
        else:
            self.timestamp = _canonical(timestamp)
        # The payload's JSON text as it came, and the payload itself once decoded.
        self.data_json = data_json
        self._data: Any = _UNDECODED

    @classmethod
    def from_wire(cls, wire: WireEvent) -> Event:
        return cls(wire.event_id, wire.event_type, wire.target_name, wire.timestamp, bytes(wire.data))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Event:
        """From DT's event object already decoded (a JSON object); ValueError if it is not one."""
        if not isinstance(raw, Mapping):
            raise ValueError("an event is a JSON object")
        event_id, event_type = raw.get("eventId"), raw.get("eventType")
        target_name, timestamp = raw.get("targetName"), raw.get("timestamp")
        if not (
            isinstance(event_id, str)
            and isinstance(event_type, str)
            and isinstance(target_name, str)
            and isinstance(timestamp, str)
        ):
            raise ValueError("event with a missing or non-string eventId, eventType, targetName or timestamp")
        return cls(event_id, event_type, target_name, timestamp, orjson.dumps(raw.get("data")))

    @property
    def data(self) -> Any:
        """DT's `data` object, decoded on first use."""
        if self._data is _UNDECODED:
            self._data = orjson.loads(self.data_json)
        return self._data

    @property
    def payload(self) -> Any:
        """The type's own payload: `data.<eventType>`, or `data` itself for labelsChanged."""
        return event_payload(self.event_type, self.data)

    def as_dict(self) -> dict[str, Any]:
        """The event as DT's JSON object (its time in canonical form)."""
        return {
            "eventId": self.event_id,
            "targetName": self.target_name,
            "eventType": self.event_type,
            "data": self.data,
            "timestamp": self.timestamp,
        }

    def __repr__(self) -> str:
        return f"Event({self.event_type} {self.event_id} of {self.device_id} at {self.timestamp})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.as_dict() == self.as_dict()

    def __hash__(self) -> int:
        return hash(self.event_id)


_UNDECODED = object()
# Target names already split: a stream names the same devices over and over.
_TARGETS: dict[str, tuple[str, str]] = {}
# The first 20 characters (`2021-04-21T08:15:43.`) of canonical stamps seen: real seconds. A stream's
# events share few seconds.
_CANONICAL_SECONDS: set[str] = set()


def sort_key(event: Event) -> tuple[str, str]:
    """Time order, ties broken by id: how events read from history are handed over."""
    return (event.timestamp, event.event_id)


def _device_of(target_name: str) -> tuple[str, str]:
    """(project id, device id) of an event's target; ValueError if it is not a device."""
    ids = _TARGETS.get(target_name)
    if ids is None:
        project_id, device_id = split_target_name(target_name) if target_name else ("", None)
        if device_id is None:
            raise ValueError(f"event target is not a device: {target_name[:100]!r}")
        if len(_TARGETS) >= 100_000:
            _TARGETS.clear()
        ids = _TARGETS[target_name] = (project_id, device_id)
    return ids


def _canonical(timestamp: str) -> str:
    """`canonical_timestamp`, noting the second of a stamp that was canonical already."""
    stamp = canonical_timestamp(timestamp)
    if stamp == timestamp:
        if len(_CANONICAL_SECONDS) >= 4096:
            _CANONICAL_SECONDS.clear()
        _CANONICAL_SECONDS.add(stamp[:20])
    return stamp


class _HistoryPage(msgspec.Struct, rename="camel"):
    events: list[WireEvent] = []
    next_page_token: str = ""


_HISTORY_PAGE = msgspec.json.Decoder(_HistoryPage)


def history_page(body: bytes) -> tuple[list[Event | ValueError], str]:
    """A page of DT's event history: each event (or why it is not one), and the next page's token.

    Raises ValueError if the body is no such page at all.
    """
    try:
        page = _HISTORY_PAGE.decode(body)
    except msgspec.DecodeError:
        raise ValueError("the event history answer is not JSON") from None
    except msgspec.ValidationError:
        return _history_page_one_by_one(body)
    events: list[Event | ValueError] = []
    for wire in page.events:
        try:
            events.append(Event.from_wire(wire))
        except ValueError as error:
            events.append(error)
    return events, page.next_page_token


def _history_page_one_by_one(body: bytes) -> tuple[list[Event | ValueError], str]:
    # Some event does not have DT's shape: the others are read one by one.
    page = orjson.loads(body)
    items, token = page.get("events", []) if isinstance(page, dict) else None, None
    if isinstance(page, dict):
        token = page.get("nextPageToken", "")
    if not isinstance(items, list) or not isinstance(token, str):
        raise ValueError("a page without an events list or nextPageToken")
    events: list[Event | ValueError] = []
    for item in items:
        try:
            events.append(Event.from_mapping(item))
        except ValueError as error:
            events.append(error)
    return events, token
