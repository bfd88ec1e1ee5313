"""DT's four stream filters as one value: it encodes the query and matches events locally.

The same filter drives the stream, the history backfill and the Airflow conditions. Values of one
filter are alternatives; different filters and several label filters must all hold (DT documents AND for
label filters when listing devices; the stream's combination is not documented, and one rule keeps the
stream, the listing and history consistent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tap_disruptive.client.protocol.errors import FatalError
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.device_types import DEVICE_TYPE_NAMES
from tap_disruptive.model.devices import Device
from tap_disruptive.model.event_types import EVENT_TYPE_NAMES, PING

_LABEL_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")


@dataclass(frozen=True)
class EventFilter:
    device_ids: frozenset[str] | None = None
    # Label key to required value, or to None for "has the label, any value".
    label_filters: tuple[tuple[str, str | None], ...] = ()
    device_types: frozenset[str] | None = None
    event_types: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        device_ids: Iterable[str] | None = None,
        label_filters: Mapping[str, str | None] | None = None,
        device_types: Iterable[str] | None = None,
        event_types: Iterable[str] | None = None,
    ) -> EventFilter:
        """Build and check a filter from the arguments DT's `event_stream` takes."""
        labels = tuple(sorted(_check_labels(label_filters or {}).items()))
        return cls(
            device_ids=_names("device_ids", device_ids, None),
            label_filters=labels,
            device_types=_names("device_types", device_types, DEVICE_TYPE_NAMES),
            event_types=_names("event_types", event_types, EVENT_TYPE_NAMES),
        )

    def query(self) -> list[tuple[str, str]]:
        """DT's query parameters, a repeated key per value, in the order DT's own client sends them."""
        params: list[tuple[str, str]] = []
        params += [("device_ids", value) for value in sorted(self.device_ids or ())]
        params += [("device_types", value) for value in sorted(self.device_types or ())]
        params += [
            ("label_filters", key if value is None else f"{key}={value}") for key, value in self.label_filters
        ]
        params += [("event_types", value) for value in sorted(self.event_types or ())]
        return params

    def device_query(self) -> list[tuple[str, str]]:
        """The parameters that select devices (for listing them before reading their history)."""
        return [(key, value) for key, value in self.query() if key != "event_types"]

    def matches_device(
        self, device_id: str, device_type: str | None, labels: Mapping[str, str] | None
    ) -> bool:
        """Whether a device passes. An unknown type or labels (None) pass those tests: the server decides."""
        if self.device_ids is not None and device_id not in self.device_ids:
            return False
        if self.device_types is not None and device_type is not None and device_type not in self.device_types:
            return False
        if labels is not None:
            for key, value in self.label_filters:
                if key not in labels or (value is not None and labels[key] != value):
                    return False
        return True

    def selected_device_ids(self, devices: Iterable[Device]) -> list[str]:
        """The ids of the listed devices that the filter selects."""
        return [
            device.device_id
            for device in devices
            if self.matches_device(device.device_id, device.device_type, device.labels)
        ]

    def matches_event_type(self, event_type: str) -> bool:
        return event_type != PING and (self.event_types is None or event_type in self.event_types)

    def matches(self, event: Event, device: Device | None = None) -> bool:
        """Whether an event passes, given its device where known."""
        if not self.matches_event_type(event.event_type):
            return False
        if device is None:
            return self.matches_device(event.device_id, None, None)
        return self.matches_device(event.device_id, device.device_type, device.labels)

    def to_json(self) -> dict[str, Any]:
        """A deterministic JSON form (sorted), for serialising and hashing."""
        return {
            "device_ids": sorted(self.device_ids) if self.device_ids is not None else None,
            "label_filters": dict(self.label_filters) if self.label_filters else None,
            "device_types": sorted(self.device_types) if self.device_types is not None else None,
            "event_types": sorted(self.event_types) if self.event_types is not None else None,
        }


def _names(
    setting: str, values: Iterable[str] | None, allowed: frozenset[str] | None
) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str | bytes):
        raise FatalError(f"{setting} must be a list of names, not a single string")
    names = frozenset(values)
    if not names:
        return None
    for name in sorted(names):
        if not isinstance(name, str) or not name:
            raise FatalError(f"{setting} holds an empty or non-string value: {name!r}")
        if allowed is not None and name not in allowed:
            raise FatalError(f"{setting}: unknown value {name!r}; allowed: {', '.join(sorted(allowed))}")
    return names


def _check_labels(labels: Mapping[str, str | None]) -> dict[str, str | None]:
    if not isinstance(labels, Mapping):
        raise FatalError("label_filters must be an object of label key to value (or to null for any value)")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            raise FatalError(f"label_filters: bad label key {key!r}")
        if value is not None and not isinstance(value, str):
            raise FatalError(f"label_filters: the value of {key!r} must be a string or null, got {value!r}")
    return dict(labels)
