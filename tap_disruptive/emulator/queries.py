"""Query parameters as DT's gateway reads them: both spellings, repeated keys, filters, paging."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from multidict import MultiMapping

from tap_disruptive.emulator.errors import ApiError
from tap_disruptive.emulator.store import Device
from tap_disruptive.model.device_types import DEVICE_TYPE_NAMES
from tap_disruptive.model.event_types import EVENT_TYPE_NAMES
from tap_disruptive.model.times import timestamp_seconds


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def values(query: MultiMapping[str], name: str) -> list[str]:
    """All values of a parameter given as snake_case or lowerCamelCase, repeated or not."""
    found = list(query.getall(name, []))
    camel = _camel(name)
    if camel != name:
        found += query.getall(camel, [])
    return found


def single(query: MultiMapping[str], name: str) -> str | None:
    found = values(query, name)
    if len(found) > 1:
        raise ApiError(400, f"parameter {name} given more than once")
    return found[0] if found else None


@dataclass(frozen=True)
class DeviceFilter:
    """DT's device and event filters.

    Values of one filter are alternatives (OR); different filters must all hold (AND). Several label
    filters must all hold too, as DT documents for listing devices; public material leaves the stream's
    combination open, and one rule for both keeps the stream, history and listing consistent.
    """

    device_ids: frozenset[str] | None = None
    device_types: frozenset[str] | None = None
    product_numbers: frozenset[str] | None = None
    labels: tuple[tuple[str, str | None], ...] = ()
    event_types: frozenset[str] | None = None

    @classmethod
    def from_query(cls, query: MultiMapping[str]) -> DeviceFilter:
        device_types = _set(values(query, "device_types"))
        if device_types and not device_types <= DEVICE_TYPE_NAMES:
            raise ApiError(400, f"unknown device type: {sorted(device_types - DEVICE_TYPE_NAMES)[0]}")
        event_types = _set(values(query, "event_types"))
        if event_types and not event_types <= EVENT_TYPE_NAMES:
            raise ApiError(400, f"unknown event type: {sorted(event_types - EVENT_TYPE_NAMES)[0]}")
        return cls(
            device_ids=_set(values(query, "device_ids")),
            device_types=device_types,
            product_numbers=_set(values(query, "product_numbers")),
            labels=tuple(_label_filter(text) for text in values(query, "label_filters")),
            event_types=event_types,
        )

    def matches_device(self, device: Device) -> bool:
        if self.device_ids is not None and device.device_id not in self.device_ids:
            return False
        if self.device_types is not None and device.device_type not in self.device_types:
            return False
        if self.product_numbers is not None and device.product_number not in self.product_numbers:
            return False
        for key, value in self.labels:
            if key not in device.labels or (value is not None and device.labels[key] != value):
                return False
        return True

    def matches_event_type(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


def _set(items: list[str]) -> frozenset[str] | None:
    # A comma-separated value is also accepted, as gRPC gateways do for repeated fields.
    split = [part for item in items for part in item.split(",") if part]
    return frozenset(split) if split else None


_LABEL_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def _label_filter(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    if not key or not _LABEL_KEY.match(key):
        raise ApiError(400, f"malformed label filter: {text!r}")
    return key, (value if sep else None)


def time_param(query: MultiMapping[str], name: str, default: float) -> float:
    text = single(query, name)
    if text is None:
        return default
    try:
        return timestamp_seconds(text)
    except ValueError:
        raise ApiError(400, f"{name} is not an RFC 3339 timestamp: {text!r}") from None


def page_size(query: MultiMapping[str], default: int, maximum: int) -> int:
    text = single(query, "page_size")
    if text is None:
        return default
    if not text.isdigit() or int(text) < 0:
        raise ApiError(400, f"page_size must be a non-negative integer, got {text!r}")
    return min(int(text), maximum) or default


@dataclass(frozen=True)
class PageToken:
    """Where the next page starts, and the history cut-off the first page saw."""

    offset: int
    cutoff: float = 0.0

    def encode(self) -> str:
        text = json.dumps({"o": self.offset, "c": self.cutoff}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, query: MultiMapping[str]) -> PageToken | None:
        text = single(query, "page_token")
        if not text:
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(offset=int(raw["o"]), cutoff=float(raw["c"]))
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "invalid page token") from None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")


def duration_param(query: MultiMapping[str], name: str, default: float) -> float:
    """A Go-style duration such as ``10s`` or ``500ms``."""
    text = single(query, name)
    if text is None:
        return default
    match = _DURATION.match(text)
    if not match:
        raise ApiError(400, f"{name} is not a duration such as 10s: {text!r}")
    seconds = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(2)]
    if seconds < 0.05:
        raise ApiError(400, f"{name} must be at least 50ms")
    return seconds
