"""Singer records from DT events and devices, and the device facts (type, labels) events are joined with.

Every key of a record is snake_case, DT's camelCase payload keys renamed (see `columns`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.devices import Device, labels_after_change
from tap_disruptive.model.event_types import LABELS_CHANGED
from tap_disruptive.tap.columns import payload_keys, snake_data, snake_keys


def device_record(device: Device) -> dict[str, Any]:
    """A `devices` record."""
    return {
        "device_id": device.device_id,
        "project_id": device.project_id,
        "device_type": device.device_type,
        "product_number": device.product_number,
        "display_name": device.display_name,
        "labels": dict(device.labels),
        "reported": snake_keys(device.reported),
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
        # Each event type's part of a record, from `","event_type"` to the timestamp's opening quote
        # (b"" if the type is not safe to join as it is), and what renames its payload's keys.
        self._per_type: dict[str, tuple[bytes, Callable[[bytes], bytes | None] | None]] = {}

    def load(self, devices: Iterable[Device]) -> None:
        for device in devices:
            self._types[device.device_id] = device.device_type or ""
            self._labels[device.device_id] = dict(device.labels)
            self._device_json.pop(device.device_id, None)

    def knows(self, device_id: str) -> bool:
        return device_id in self._types

    def record(self, event: Event) -> dict[str, Any]:
        """The `events` record of an event, with its device's type and labels where known."""
        if event.event_type == LABELS_CHANGED:
            self._follow_label_change(event)
        record = self._columns(event)
        record["data"] = snake_data(event.event_type, event.data)
        return record

    def record_json(self, event: Event) -> bytes:
        """The same record as JSON text, DT's payload passed through as it came but for its keys
        renamed in the text: most of it made once per device, the rest joined from the event's own
        fields, which DT's ids make safe to join as they are (anything else goes through the JSON
        encoder)."""
        event_type = event.event_type
        if event_type == LABELS_CHANGED:
            self._follow_label_change(event)
        per_type = self._per_type.get(event_type)
        if per_type is None:
            per_type = self._type_parts(event_type)
        type_json, rename = per_type
        data_json = None if rename is None else rename(event.data_json)
        if data_json is None:  # a text the renaming in place cannot be sure of: decoded and encoded
            data_json = orjson.dumps(snake_data(event_type, event.data))
        device_json = self._device_json.get(event.device_id)
        if device_json is None:
            device_json = self._device_json[event.device_id] = self._make_device_json(event)
        event_id = event.event_id.encode()
        if not (type_json and event_id.isalnum()):  # bytes.isalnum: ASCII letters and digits only
            record = self._columns(event)
            record["data"] = orjson.Fragment(data_json)
            return orjson.dumps(record)
        return b"".join(
            (
                b'{"event_id":"',
                event_id,
                type_json,
                event.timestamp.encode(),  # canonical: digits, dashes, colons, a dot, T and Z
                device_json,
                data_json,
                b"}",
            )
        )

    def _columns(self, event: Event) -> dict[str, Any]:
        """Every column of the event's record but `data`."""
        device_id = event.device_id
        return {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "timestamp": event.timestamp,
            "project_id": event.project_id,
            "device_id": device_id,
            "target_name": event.target_name,
            "device_type": self._types.get(device_id),
            "labels": self._labels.get(device_id),
        }

    def _type_parts(self, event_type: str) -> tuple[bytes, Callable[[bytes], bytes | None] | None]:
        if len(self._per_type) >= 1000:  # types are DT's few; a stream of made-up ones is not kept
            self._per_type.clear()
        type_json = b""
        if event_type.isalnum() and event_type.isascii():
            type_json = b'","event_type":"' + event_type.encode() + b'","timestamp":"'
        keys = payload_keys(event_type)
        per_type = self._per_type[event_type] = (type_json, None if keys is None else keys.rename)
        return per_type

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
            # A new dict, not an edit: records already made keep the labels they were made with.
            self._labels[device_id] = labels_after_change(self._labels.get(device_id) or {}, change)
            self._device_json.pop(device_id, None)

    def learn(self, device_id: str, device_type: str | None, labels: dict[str, str]) -> None:
        """The device's type and labels as an event carries them (a Data Connector's push): later
        records of the device are joined with these."""
        if self._labels.get(device_id) != labels or self._types.get(device_id) != (device_type or ""):
            self._types[device_id] = device_type or ""
            self._labels[device_id] = dict(labels)
            self._changed_at.pop(device_id, None)
            self._device_json.pop(device_id, None)
