"""Devices, the event ledger and per-device history: what the emulated project holds.

Events are kept once, as the JSON text DT sends, in an append-only ledger; each device indexes its own
events by timestamp with compact arrays, so a million events fit in a few hundred megabytes.
"""

from __future__ import annotations

import json
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.event_types import EVENT_TYPES, LABELS_CHANGED
from tap_disruptive.model.ids import IdFactory, device_name
from tap_disruptive.model.times import stamp_and_seconds

_TYPE_CODES = {name: code for code, name in enumerate(EVENT_TYPES)}
_TYPE_NAMES = list(EVENT_TYPES)
_NESTED = {name: event_type.nested for name, event_type in EVENT_TYPES.items()}
# DT's key order; ids, names, types and stamps are plain ASCII that needs no escaping. Payloads sit under
# `data.<eventType>`, but for labelsChanged, whose fields are `data` itself (the type is then left out).
_NESTED_TEMPLATE = '{"eventId":"%s","targetName":"%s","eventType":"%s","data":{"%s":%s},"timestamp":"%s"}'
_FLAT_TEMPLATE = '{"eventId":"%s","targetName":"%s","eventType":"%s","data":%.0s%s,"timestamp":"%s"}'


@dataclass
class Device:
    project_id: str
    device_id: str
    device_type: str
    product_number: str
    labels: dict[str, str]
    # The latest payload of each event type as JSON text (decoded only when the device is read), or None.
    reported: dict[str, str | None] = field(default_factory=dict)
    # History index, sorted by event time: timestamp, time recorded, and ledger position << 8 | type code.
    times: array[float] = field(default_factory=lambda: array("d"))
    recorded: array[float] = field(default_factory=lambda: array("d"))
    entries: array[int] = field(default_factory=lambda: array("Q"))

    name: str = ""

    def __post_init__(self) -> None:
        self.name = device_name(self.project_id, self.device_id)

    def resource(self) -> dict[str, Any]:
        """The device as DT's REST API returns it."""
        return {
            "name": self.name,
            "type": self.device_type,
            "productNumber": self.product_number,
            "labels": dict(self.labels),
            "reported": {
                kind: None if text is None else json.loads(text) for kind, text in self.reported.items()
            },
        }


# A recorded event as listeners get it: its device, its type and its JSON text.
RecordedEvent = tuple[Device, str, bytes]
# Called with each run of recorded events, in the order they were recorded.
EventListener = Callable[[list[RecordedEvent]], None]


class EventStore:
    """Every device and every event of the emulated projects."""

    def __init__(
        self, project_ids: list[str], ids: IdFactory, clock: Callable[[], float] = time.time
    ) -> None:
        self.projects: dict[str, dict[str, Device]] = {project_id: {} for project_id in project_ids}
        self.ledger: list[bytes] = []
        self.listeners: list[EventListener] = []
        self.ids = ids
        self.clock = clock

    def add_device(self, device: Device) -> Device:
        device_type = DEVICE_TYPES[device.device_type]
        device.reported = {event_type: None for event_type in device_type.event_types}
        self.projects[device.project_id][device.device_id] = device
        return device

    def device(self, project_id: str, device_id: str) -> Device | None:
        return self.projects.get(project_id, {}).get(device_id)

    def record(
        self,
        device: Device,
        event_type: str,
        payload_json: str,
        timestamp: float,
        recorded_at: float | None = None,
    ) -> bytes:
        """Record one event from its payload's JSON text: ledger, history, reported state, listeners."""
        stamp, timestamp = stamp_and_seconds(timestamp)
        event_id = self.ids.new_id(timestamp)
        encoded = self.record_stamped(
            device, event_type, payload_json, stamp, timestamp, recorded_at, event_id
        )
        self.notify([(device, event_type, encoded)])
        return encoded

    def record_stamped(  # noqa: PLR0917 - the fast feed's hot path, called positionally
        self,
        device: Device,
        event_type: str,
        payload_json: str,
        stamp: str,
        timestamp: float,
        recorded_at: float | None,
        event_id: str,
    ) -> bytes:
        """`record` for a caller that holds `stamp_and_seconds` of the event time and an id made for it.

        Listeners are not called: the caller passes what it recorded to `notify`, one run at a time.
        """
        template = _NESTED_TEMPLATE if _NESTED[event_type] else _FLAT_TEMPLATE
        encoded = (template % (event_id, device.name, event_type, event_type, payload_json, stamp)).encode()
        position = len(self.ledger)
        self.ledger.append(encoded)
        entry = position << 8 | _TYPE_CODES[event_type]
        times = device.times
        if recorded_at is None:
            recorded_at = self.clock()
        if not times or timestamp >= times[-1]:
            times.append(timestamp)
            device.recorded.append(recorded_at)
            device.entries.append(entry)
        else:
            self._insert_late(device, timestamp, recorded_at, entry)
        if event_type in device.reported:
            device.reported[event_type] = payload_json
        return encoded

    def notify(self, events: list[RecordedEvent]) -> None:
        for listener in self.listeners:
            listener(events)

    def change_labels(self, device: Device, add: dict[str, str], remove: list[str]) -> bytes | None:
        """Apply a label edit and record the labelsChanged event it causes (None if nothing changed)."""
        added = {key: value for key, value in add.items() if key not in device.labels}
        modified = {
            key: value for key, value in add.items() if key in device.labels and device.labels[key] != value
        }
        removed = [key for key in remove if key in device.labels and key not in add]
        if not (added or modified or removed):
            return None
        device.labels.update(add)
        for key in removed:
            del device.labels[key]
        change = {"added": added, "modified": modified, "removed": removed}
        return self.record(device, LABELS_CHANGED, json.dumps(change, separators=(",", ":")), self.clock())

    @staticmethod
    def _insert_late(device: Device, timestamp: float, recorded_at: float, entry: int) -> None:
        # A backfilled event arrives late with an old timestamp: keep the index sorted by time.
        at = bisect_right(device.times, timestamp)
        device.times.insert(at, timestamp)
        device.recorded.insert(at, recorded_at)
        device.entries.insert(at, entry)

    def latest_events(self, device: Device) -> list[tuple[int, str, bytes]]:
        """The newest event by time of each type ``device`` reports (its state), with its ledger position
        and type, in ledger order: what a Data Connector's sync pushes.
        """
        wanted = {_TYPE_CODES[name] for name in device.reported}
        found: dict[int, int] = {}
        for entry in reversed(device.entries):
            code = entry & 0xFF
            if code in wanted and code not in found:
                found[code] = entry >> 8
                if len(found) == len(wanted):
                    break
        return sorted(
            (position, _TYPE_NAMES[code], self.ledger[position]) for code, position in found.items()
        )

    def history(
        self,
        device: Device,
        start: float,
        end: float,
        event_types: frozenset[str] | None,
        recorded_before: float,
    ) -> Iterator[bytes]:
        """Events of ``device`` with start <= timestamp < end, newest first, as DT's history returns them.

        Only events recorded before ``recorded_before`` are visible: DT indexes events into history with
        a delay, and a page token pins that cut-off so later pages see the same set.
        """
        codes = None if event_types is None else {_TYPE_CODES[name] for name in event_types}
        lo, hi = bisect_left(device.times, start), bisect_left(device.times, end)
        recorded, entries, ledger = device.recorded, device.entries, self.ledger
        for index in range(hi - 1, lo - 1, -1):
            if recorded[index] <= recorded_before and (codes is None or entries[index] & 0xFF in codes):
                yield ledger[entries[index] >> 8]
