"""The body of a DT HTTP push, checked: ``{"event": {...}, "labels": {...}, "metadata": {...}}``.

The event must carry what a consumer needs to place it (eventId, eventType, targetName, an RFC 3339
timestamp, data); labels and metadata are optional objects (DT sends only the labels the connector is
configured to include, and says metadata may change). Anything else in the body is kept as received.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tap_disruptive.model.ids import split_target_name
from tap_disruptive.model.times import canonical_timestamp

# Longer than any id DT makes (20-character xids), short enough to index.
MAX_EVENT_ID_LENGTH = 200


class BadPush(ValueError):
    """A body that is no DT push; the message says what is wrong without echoing the body."""


@dataclass(frozen=True)
class Push:
    event_id: str
    event_type: str
    target_name: str
    # The event's timestamp in DT's canonical form (UTC, Z, microseconds), so stamps compare as text.
    timestamp: str
    # The body exactly as received: DT's event JSON, its labels and metadata, byte for byte.
    body: str
    event: dict[str, Any]
    labels: dict[str, Any]
    metadata: dict[str, Any]


def parse_push(body: bytes) -> Push:
    """The push in `body`; raises BadPush if it is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadPush("the body is not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise BadPush("the body is not a JSON object")
    event = document.get("event")
    if not isinstance(event, dict):
        raise BadPush("the body has no event object")
    event_id = _text(event, "eventId")
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        raise BadPush(f"event.eventId is longer than {MAX_EVENT_ID_LENGTH} characters")
    target_name = _text(event, "targetName")
    try:
        split_target_name(target_name)
    except ValueError:
        raise BadPush("event.targetName is not projects/<id>/devices/<id> or projects/<id>") from None
    try:
        timestamp = canonical_timestamp(_text(event, "timestamp"))
    except ValueError:
        raise BadPush("event.timestamp is not an RFC 3339 timestamp") from None
    if not isinstance(event.get("data"), dict):
        raise BadPush("event.data is not a JSON object")
    return Push(
        event_id=event_id,
        event_type=_text(event, "eventType"),
        target_name=target_name,
        timestamp=timestamp,
        body=body.decode("utf-8"),
        event=event,
        labels=_optional_object(document, "labels"),
        metadata=_optional_object(document, "metadata"),
    )


def _text(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise BadPush(f"event.{key} is not a non-empty string")
    return value


def _optional_object(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPush(f"{key} is not a JSON object")
    return value
