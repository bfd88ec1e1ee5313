"""Devices, the event ledger and per-device history: what the emulated project holds.

Events are kept once, as the JSON text DT sends, in an append-only ledger; each device indexes its own
events by timestamp with compact arrays, so a million events fit in a few hundred megabytes.
"""

from __future__ import annotations

import json
import time
from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.event_types import EVENT_TYPES, LABELS_CHANGED
from tap_disruptive.model.ids import IdFactory, device_name
from tap_disruptive.model.times import format_timestamp, to_microseconds

_TYPE_CODES = {name: code for code, name in enumerate(EVENT_TYPES)}
_TYPE_NAMES = list(EVENT_TYPES)


@dataclass
class Device:
    project_id: str
    device_id: str
    device_type: str
    product_number: str
    labels: dict[str, str]
    reported: dict[str, Any] = field(default_factory=dict)
    # History index, sorted by event time: timestamp, time recorded, event type code, ledger position.
    times: array[float] = field(default_factory=lambda: array("d"))
    recorded: array[float] = field(default_factory=lambda: array("d"))
    kinds: array[int] = field(default_factory=lambda: array("B"))
    refs: array[int] = field(default_factory=lambda: array("Q"))

    @property
    def name(self) -> str:
        return device_name(self.project_id, self.device_id)

    def resource(self) -> dict[str, Any]:
        """The device as DT's REST API returns it."""
        return {
            "name": self.name,
            "type": self.device_type,
            "productNumber": self.product_number,
            "labels": dict(self.labels),
            "reported": dict(self.reported),
        }


# Called for every recorded event with (device, event type, event JSON text, its ledger position).
EventListener = Callable[[Device, str, bytes, int], None]


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
        self, device: Device, event_type: str, data: Any, timestamp: float, recorded_at: float | None = None
    ) -> bytes:
        """Record one event: ledger, history, the device's reported state, and every listener."""
        timestamp = to_microseconds(timestamp)
        stamp = format_timestamp(timestamp)
        text = json.dumps(
            {
                "eventId": self.ids.new_id(timestamp),
                "targetName": device.name,
                "eventType": event_type,
                "data": data,
                "timestamp": stamp,
            },
            separators=(",", ":"),
        ).encode()
        position = len(self.ledger)
        self.ledger.append(text)
        self._index(
            device, event_type, timestamp, self.clock() if recorded_at is None else recorded_at, position
        )
        if event_type in device.reported and isinstance(data, dict):
            device.reported[event_type] = data.get(event_type)
        for listener in self.listeners:
            listener(device, event_type, text, position)
        return text

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
        return self.record(device, LABELS_CHANGED, change, self.clock())

    @staticmethod
    def _index(device: Device, event_type: str, timestamp: float, recorded_at: float, position: int) -> None:
        code = _TYPE_CODES[event_type]
        times = device.times
        if not times or timestamp >= times[-1]:
            times.append(timestamp)
            device.recorded.append(recorded_at)
            device.kinds.append(code)
            device.refs.append(position)
            return
        # A backfilled event arrives late with an old timestamp: keep the index sorted by time.
        at = bisect_left(times, timestamp)
        insort(times, timestamp)
        device.recorded.insert(at, recorded_at)
        device.kinds.insert(at, code)
        device.refs.insert(at, position)

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
        recorded, kinds, refs, ledger = device.recorded, device.kinds, device.refs, self.ledger
        for index in range(hi - 1, lo - 1, -1):
            if recorded[index] <= recorded_before and (codes is None or kinds[index] in codes):
                yield ledger[refs[index]]

    @staticmethod
    def type_name(code: int) -> str:
        return _TYPE_NAMES[code]
