"""What a published payload of each event type may carry, and the check that refuses anything else.

The description follows DT's payloads (and the tap's events schema): numbers are JSON numbers, counters and
signal strengths whole numbers, times RFC 3339 strings, states among the values the model knows. A payload
that breaks it is answered with DT's 400 body naming the field, before anything is recorded.

DT's own client publishes a few shapes of its own (snake_case `cloud_connectors`, humidity samples with
`celsius`); they are described too, and `payloads.complete_published` puts them into the wire shape.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import NoReturn

from tap_disruptive.emulator.errors import ApiError
from tap_disruptive.model.event_types import (
    CONNECTION_KINDS,
    EVENT_TYPES,
    STATE_VALUES,
    TRANSMISSION_MODES,
)
from tap_disruptive.model.times import parse_timestamp

# Checks a value found at a path such as `temperature.samples[0].value`; raises ApiError(400) if it is bad.
Check = Callable[[object, str], None]


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(path: str, wanted: str, value: object) -> NoReturn:
    raise ApiError(400, f"{path} must be {wanted}, not {_shown(value)}")


def _bounds(low: float, high: float) -> str:
    if high == math.inf:
        return f"at least {low:g}"
    return f"between {low:g} and {high:g}"


def number(low: float = -math.inf, high: float = math.inf) -> Check:
    def check(value: object, path: str) -> None:
        # bool is an int to Python but not a number in JSON; NaN and infinities are not JSON at all.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            _refuse(path, "a number", value)
        if not low <= value <= high:
            _refuse(path, f"a number {_bounds(low, high)}", value)

    return check


def whole(low: float = -math.inf, high: float = math.inf) -> Check:
    def check(value: object, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            _refuse(path, "a whole number", value)
        if not low <= value <= high:
            _refuse(path, f"a whole number {_bounds(low, high)}", value)

    return check


def text(value: object, path: str) -> None:
    if not isinstance(value, str):
        _refuse(path, "a string", value)


def boolean(value: object, path: str) -> None:
    if not isinstance(value, bool):
        _refuse(path, "true or false", value)


def timestamp(value: object, path: str) -> None:
    if not isinstance(value, str):
        _refuse(path, "an RFC 3339 timestamp string", value)
    try:
        parse_timestamp(value)
    except ValueError:
        _refuse(path, "an RFC 3339 timestamp such as 2021-04-21T08:15:43.512330Z", value)


def one_of(values: tuple[str, ...]) -> Check:
    def check(value: object, path: str) -> None:
        if value not in values:
            _refuse(path, f"one of {', '.join(values)}", value)

    return check


def list_of(item: Check) -> Check:
    def check(value: object, path: str) -> None:
        if not isinstance(value, list):
            _refuse(path, "a list", value)
        for index, element in enumerate(value):
            item(element, f"{path}[{index}]")

    return check


def record(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object of the given fields, each optional unless `required`; any other key is refused."""

    def check(value: object, path: str) -> None:
        if not isinstance(value, dict):
            _refuse(path, "an object", value)
        for key, element in value.items():
            if key not in fields:
                known = ", ".join(fields)
                raise ApiError(400, f"{path}.{key} is not a field here; the fields are {known}")
            fields[key](element, f"{path}.{key}")
        for key in required:
            if key not in value:
                raise ApiError(400, f"{path}.{key} is required")

    return check


_UPDATE_TIME: dict[str, Check] = {"updateTime": timestamp}
_PERCENT = whole(0, 100)
_CONNECTOR = record({"id": text, "signalStrength": _PERCENT, "rssi": whole()})
_STATUS_ERRORS = list_of(record({"code": text, "message": text}))


def _state(event_type: str) -> Check:
    return record({"state": one_of(STATE_VALUES[event_type]), **_UPDATE_TIME})


def _count() -> Check:
    return record({"total": whole(0), **_UPDATE_TIME})


# What a publisher may give for each publishable type; what it leaves out is filled in. Temperature
# samples are kept as given, so each must be whole.
PUBLISHED_PAYLOADS: dict[str, Check] = {
    "touch": record(_UPDATE_TIME),
    "temperature": record(
        {
            "value": number(),
            "samples": list_of(
                record({"value": number(), "sampleTime": timestamp}, required=("value", "sampleTime"))
            ),
            "isBackfilled": boolean,
            **_UPDATE_TIME,
        }
    ),
    "humidity": record(
        {
            "temperature": number(),
            "relativeHumidity": number(0, 100),
            "samples": list_of(
                record(
                    {
                        "temperature": number(),
                        "celsius": number(),
                        "relativeHumidity": number(0, 100),
                        "sampleTime": timestamp,
                    }
                )
            ),
            "isBackfilled": boolean,
            **_UPDATE_TIME,
        }
    ),
    "objectPresent": _state("objectPresent"),
    "waterPresent": _state("waterPresent"),
    "motion": _state("motion"),
    "contact": _state("contact"),
    "probeWireStatus": _state("probeWireStatus"),
    "deskOccupancy": record(
        {"state": one_of(STATE_VALUES["deskOccupancy"]), "remarks": list_of(text), **_UPDATE_TIME}
    ),
    "objectPresentCount": _count(),
    "touchCount": _count(),
    "networkStatus": record(
        {
            "signalStrength": _PERCENT,
            "rssi": whole(),
            "transmissionMode": one_of(TRANSMISSION_MODES),
            "cloudConnectors": list_of(_CONNECTOR),
            "cloud_connectors": list_of(_CONNECTOR),
            **_UPDATE_TIME,
        }
    ),
    "batteryStatus": record({"percentage": _PERCENT, **_UPDATE_TIME}),
    "connectionStatus": record(
        {
            "connection": one_of(CONNECTION_KINDS),
            "available": list_of(one_of(CONNECTION_KINDS)),
            **_UPDATE_TIME,
        }
    ),
    "ethernetStatus": record(
        {"macAddress": text, "ipAddress": text, "errors": _STATUS_ERRORS, **_UPDATE_TIME}
    ),
    "cellularStatus": record({"signalStrength": _PERCENT, "errors": _STATUS_ERRORS, **_UPDATE_TIME}),
    "co2": record({"ppm": whole(0), **_UPDATE_TIME}),
    "pressure": record({"pascal": number(0), **_UPDATE_TIME}),
}


def check_published(event_type: str, given: object) -> None:
    """Refuse a publisher's payload that the event type cannot carry, naming the first bad field."""
    PUBLISHED_PAYLOADS[event_type](given, event_type)


def check_complete(event_type: str, payload: Mapping[str, object]) -> None:
    """Refuse a completed payload that lacks a key the model says DT always sends.

    The defaults cover every such key today; this keeps a key added to the model from going out
    missing, which DT's own client would fail on.
    """
    for key in EVENT_TYPES[event_type].required_keys:
        if key not in payload:
            raise ApiError(400, f"{event_type}.{key} is required")
