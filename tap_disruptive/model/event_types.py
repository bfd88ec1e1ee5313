"""DT's event types and the keys each payload carries (reference: DT REST API, events)."""

from __future__ import annotations

from dataclasses import dataclass

PING = "ping"
LABELS_CHANGED = "labelsChanged"


@dataclass(frozen=True)
class EventType:
    name: str
    # Keys DT always sends inside the payload; the official client raises KeyError when one is missing.
    required_keys: tuple[str, ...]
    # Whether the payload sits under `data.<name>`; labelsChanged's fields are `data` itself.
    nested: bool = True


_TYPES = (
    EventType("touch", ("updateTime",)),
    EventType("temperature", ("value", "updateTime", "samples", "isBackfilled")),
    EventType("objectPresent", ("state", "updateTime")),
    EventType("humidity", ("temperature", "relativeHumidity", "updateTime", "samples", "isBackfilled")),
    EventType("objectPresentCount", ("total", "updateTime")),
    EventType("touchCount", ("total", "updateTime")),
    EventType("waterPresent", ("state", "updateTime")),
    EventType(
        "networkStatus",
        ("signalStrength", "rssi", "updateTime", "cloudConnectors", "transmissionMode"),
    ),
    EventType("batteryStatus", ("percentage", "updateTime")),
    EventType(LABELS_CHANGED, ("added", "modified", "removed"), nested=False),
    EventType("connectionStatus", ("connection", "available", "updateTime")),
    EventType("ethernetStatus", ("macAddress", "ipAddress", "errors", "updateTime")),
    EventType("cellularStatus", ("signalStrength", "errors", "updateTime")),
    EventType("co2", ("ppm", "updateTime")),
    EventType("pressure", ("pascal", "updateTime")),
    EventType("motion", ("state", "updateTime")),
    EventType("deskOccupancy", ("state", "remarks", "updateTime")),
    EventType("contact", ("state", "updateTime")),
    EventType("probeWireStatus", ("state", "updateTime")),
)

EVENT_TYPES: dict[str, EventType] = {event_type.name: event_type for event_type in _TYPES}
# Types a client may ask for in `event_types` filters: every data type; pings are not filterable.
EVENT_TYPE_NAMES: frozenset[str] = frozenset(EVENT_TYPES)

STATE_VALUES: dict[str, tuple[str, ...]] = {
    "objectPresent": ("PRESENT", "NOT_PRESENT"),
    "waterPresent": ("PRESENT", "NOT_PRESENT"),
    "motion": ("MOTION_DETECTED", "NO_MOTION_DETECTED"),
    "deskOccupancy": ("OCCUPIED", "NOT_OCCUPIED"),
    "contact": ("OPEN", "CLOSED"),
    "probeWireStatus": (
        "INVALID_WIRE_CONFIGURATION",
        "INVALID_COEFFICIENT_CONFIGURATION",
        "TWO_WIRE",
        "THREE_WIRE",
        "FOUR_WIRE",
    ),
}
TRANSMISSION_MODES = ("LOW_POWER_STANDARD_MODE", "HIGH_POWER_BOOST_MODE")
CONNECTION_KINDS = ("SDS", "ETHERNET", "CELLULAR", "OFFLINE")


def event_payload(event_type: str, data: object) -> object:
    """The type's own payload inside an event's `data` (labelsChanged has no inner key)."""
    spec = EVENT_TYPES.get(event_type)
    if spec is None or not spec.nested:
        return data
    return data.get(event_type) if isinstance(data, dict) else None
