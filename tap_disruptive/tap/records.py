"""Singer records from DT events and devices, and the device facts (type, labels) events are joined with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.devices import Device
from tap_disruptive.model.event_types import LABELS_CHANGED


def device_record(device: Device) -> dict[str, Any]:
    """A `devices` record."""
    return {
        "device_id": device.device_id,
        "project_id": device.project_id,
        "device_type": device.device_type,
        "product_number": device.product_number,
        "display_name": device.display_name,
        "labels": dict(device.labels),
        "reported": device.reported,
    }


class DeviceRegistry:
    """Each device's type and labels as of the events read so far.

    Filled from a device listing, then kept current from labelsChanged events, so each event is joined
    with the labels its device had at that point of the stream.
    """

    def __init__(self) -> None:
        self._types: dict[str, str] = {}
        self._labels: dict[str, dict[str, str]] = {}
        # When each device's labels last changed: an older change read late (from history) is not replayed.
        self._changed_at: dict[str, str] = {}
        # Each device's part of a record as JSON text, from `project_id` to `"data":`, made once.
        self._device_json: dict[str, bytes] = {}

    def load(self, devices: Iterable[Device]) -> None:
        for device in devices:
            self._types[device.device_id] = device.device_type or ""
            self._labels[device.device_id] = dict(device.labels)
            self._device_json.pop(device.device_id, None)

    def knows(self, device_id: str) -> bool:
        return device_id in self._types

    def record(self, event: Event) -> dict[str, Any]:
        """The `events` record of an event, with its device's type and labels where known."""
        device_id = event.device_id
        if event.event_type == LABELS_CHANGED:
            self._follow_label_change(event)
        return {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "timestamp": event.timestamp,
            "project_id": event.project_id,
            "device_id": device_id,
            "target_name": event.target_name,
            "device_type": self._types.get(device_id),
            "labels": self._labels.get(device_id),
            "data": event.data,
        }

    def record_json(self, event: Event) -> bytes:
        """The same record as JSON text, DT's payload passed through as it came: most of it made once
        per device, the rest joined from the event's own fields, which DT's ids make safe to join as
        they are (anything else goes through the JSON encoder)."""
        if event.event_type == LABELS_CHANGED:
            self._follow_label_change(event)
        device_json = self._device_json.get(event.device_id)
        if device_json is None:
            device_json = self._device_json[event.device_id] = self._make_device_json(event)
        event_id, event_type = event.event_id, event.event_type
        if not (event_id.isalnum() and event_type.isalnum() and event_id.isascii() and event_type.isascii()):
            return orjson.dumps({**self.record(event), "data": orjson.Fragment(event.data_json)})
        return b"".join(
            (
                b'{"event_id":"',
                event_id.encode(),
                b'","event_type":"',
                event_type.encode(),
                b'","timestamp":"',
                event.timestamp.encode(),  # canonical: digits, dashes, colons, a dot, T and Z
                device_json,
                event.data_json,
                b"}",
            )
        )

    def _make_device_json(self, event: Event) -> bytes:
        fields = {
            "project_id": event.project_id,
            "device_id": event.device_id,
            "target_name": event.target_name,
            "device_type": self._types.get(event.device_id),
            "labels": self._labels.get(event.device_id),
        }
        # `{"project_id":...,"labels":...}` becomes `","project_id":...,"labels":...,"data":`.
        return b'",' + orjson.dumps(fields)[1:-1] + b',"data":'

    def _follow_label_change(self, event: Event) -> None:
        device_id = event.device_id
        change = event.data
        if isinstance(change, dict) and event.timestamp >= self._changed_at.get(device_id, ""):
            self._changed_at[device_id] = event.timestamp
            self._apply_label_change(device_id, change)
            self._device_json.pop(device_id, None)

    def _apply_label_change(self, device_id: str, change: dict[str, Any]) -> None:
        # Copy rather than edit: records already made keep the labels they were made with.
        labels = dict(self._labels.get(device_id) or {})
        for key in ("added", "modified"):
            if isinstance(change.get(key), dict):
                labels.update({str(k): str(v) for k, v in change[key].items()})
        for key in change.get("removed") or ():
            labels.pop(str(key), None)
        self._labels[device_id] = labels
