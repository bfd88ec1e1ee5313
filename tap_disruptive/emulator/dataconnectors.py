"""DT's Data Connector resource: a project's HTTP push targets as the REST API creates, reads and patches
them (`/v2/projects/{project}/dataconnectors`).

The resource is what DT's official client parses: `name`, `displayName`, `type` (HTTP_PUSH), `status`
(ACTIVE, USER_DISABLED, SYSTEM_DISABLED), `events` (empty forwards every type), `labels` (the label keys
sent with each event) and `httpConfig` {`url`, `signatureSecret`, `headers`}. DT requires an https URL;
the emulator also takes http, so a receiver on loopback needs no certificate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tap_disruptive.emulator.errors import ApiError
from tap_disruptive.model.event_types import EVENT_TYPE_NAMES

HTTP_PUSH = "HTTP_PUSH"
ACTIVE = "ACTIVE"
USER_DISABLED = "USER_DISABLED"
# Set by DT alone, after days of failed pushes; a user sets ACTIVE or USER_DISABLED.
SYSTEM_DISABLED = "SYSTEM_DISABLED"
_USER_STATUSES = (ACTIVE, USER_DISABLED)
_FIELDS = frozenset({"name", "displayName", "type", "status", "events", "labels", "httpConfig"})
_HTTP_FIELDS = ("url", "signatureSecret", "headers")
# Paths an update mask may name (DT's gateway also takes snake_case; they are turned to camelCase first).
_MASK_PATHS = frozenset(
    {"displayName", "status", "events", "labels", "httpConfig", *(f"httpConfig.{f}" for f in _HTTP_FIELDS)}
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass
class HttpConfig:
    url: str
    # Signs every push; never logged, and left out of the repr so no traceback shows it.
    signature_secret: str = field(default="", repr=False)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class DataConnector:
    project_id: str
    connector_id: str
    display_name: str
    status: str
    event_types: tuple[str, ...]
    labels: tuple[str, ...]
    http: HttpConfig

    @property
    def name(self) -> str:
        return f"projects/{self.project_id}/dataconnectors/{self.connector_id}"

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def forwards(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def resource(self) -> dict[str, Any]:
        """The connector as DT's REST API returns it, in DT's key order."""
        return {
            "name": self.name,
            "displayName": self.display_name,
            "type": HTTP_PUSH,
            "status": self.status,
            "events": list(self.event_types),
            "labels": list(self.labels),
            "httpConfig": {
                "url": self.http.url,
                "signatureSecret": self.http.signature_secret,
                "headers": dict(self.http.headers),
            },
        }


def new_connector(project_id: str, connector_id: str, body: dict[str, Any]) -> DataConnector:
    """A connector from a create request's body; ApiError 400 for anything DT would refuse."""
    _check_fields(body)
    if body.get("type") != HTTP_PUSH:
        raise ApiError(400, f"type must be {HTTP_PUSH}, the only type emulated")
    config = body.get("httpConfig")
    if not isinstance(config, dict) or "url" not in config:
        raise ApiError(400, "httpConfig.url is required")
    http = HttpConfig(url="")
    _apply_http(http, config, frozenset(_HTTP_FIELDS))
    return DataConnector(
        project_id=project_id,
        connector_id=connector_id,
        display_name=_text(body, "displayName", ""),
        status=_status(body.get("status", ACTIVE)),
        event_types=_event_types(body.get("events", [])),
        labels=_strings(body.get("labels", []), "labels"),
        http=http,
    )


def apply_patch(connector: DataConnector, body: dict[str, Any], mask_text: str | None) -> None:
    """Change the fields a PATCH body gives; with an update mask, only those the mask names too.

    Everything is checked before anything changes, so a refused patch leaves the connector as it was.
    """
    _check_fields(body)
    if body.get("type", HTTP_PUSH) != HTTP_PUSH:
        raise ApiError(400, "a data connector's type cannot change")
    mask = _mask(mask_text)
    wanted = {
        key
        for key in body
        if key not in ("name", "type")
        and (mask is None or key in mask or any(path.startswith(key + ".") for path in mask))
    }
    patched = DataConnector(
        project_id=connector.project_id,
        connector_id=connector.connector_id,
        display_name=_text(body, "displayName", "") if "displayName" in wanted else connector.display_name,
        status=_status(body["status"]) if "status" in wanted else connector.status,
        event_types=_event_types(body["events"]) if "events" in wanted else connector.event_types,
        labels=_strings(body["labels"], "labels") if "labels" in wanted else connector.labels,
        http=HttpConfig(connector.http.url, connector.http.signature_secret, dict(connector.http.headers)),
    )
    if "httpConfig" in wanted:
        config = body["httpConfig"]
        if not isinstance(config, dict):
            raise ApiError(400, "httpConfig must be an object")
        fields = frozenset(
            name
            for name in _HTTP_FIELDS
            if mask is None or "httpConfig" in mask or f"httpConfig.{name}" in mask
        )
        _apply_http(patched.http, config, fields)
    connector.display_name = patched.display_name
    connector.status = patched.status
    connector.event_types = patched.event_types
    connector.labels = patched.labels
    connector.http = patched.http


class ConnectorRegistry:
    """Every project's Data Connectors by id."""

    def __init__(self) -> None:
        self._projects: dict[str, dict[str, DataConnector]] = {}

    def add(self, connector: DataConnector) -> None:
        self._projects.setdefault(connector.project_id, {})[connector.connector_id] = connector

    def get(self, project_id: str, connector_id: str) -> DataConnector:
        connector = self._projects.get(project_id, {}).get(connector_id)
        if connector is None:
            raise ApiError(404, f"data connector {connector_id} not found")
        return connector

    def remove(self, connector: DataConnector) -> None:
        self._projects.get(connector.project_id, {}).pop(connector.connector_id, None)

    def in_project(self, project_id: str) -> list[DataConnector]:
        return list(self._projects.get(project_id, {}).values())

    def __iter__(self) -> Iterator[DataConnector]:
        for connectors in self._projects.values():
            yield from connectors.values()

    def __bool__(self) -> bool:
        return any(self._projects.values())


def _check_fields(body: dict[str, Any]) -> None:
    unknown = set(body) - _FIELDS
    if unknown:
        raise ApiError(400, f"unknown data connector field: {sorted(unknown)[0]}")


def _text(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string")
    return value


def _status(value: Any) -> str:
    if value not in _USER_STATUSES:
        raise ApiError(400, f"status must be {' or '.join(_USER_STATUSES)}, not {value!r}")
    return str(value)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ApiError(400, f"{key} must be a list of non-empty strings")
    return tuple(dict.fromkeys(value))


def _event_types(value: Any) -> tuple[str, ...]:
    event_types = _strings(value, "events")
    unknown = [name for name in event_types if name not in EVENT_TYPE_NAMES]
    if unknown:
        raise ApiError(400, f"unknown event type: {unknown[0]!r}")
    return event_types


def _apply_http(http: HttpConfig, config: dict[str, Any], fields: frozenset[str]) -> None:
    unknown = set(config) - set(_HTTP_FIELDS)
    if unknown:
        raise ApiError(400, f"unknown httpConfig field: {sorted(unknown)[0]}")
    if "url" in fields and "url" in config:
        http.url = _url(config["url"])
    if "signatureSecret" in fields and "signatureSecret" in config:
        secret = config["signatureSecret"]
        if not isinstance(secret, str):
            raise ApiError(400, "httpConfig.signatureSecret must be a string")
        http.signature_secret = secret
    if "headers" in fields and "headers" in config:
        http.headers = _headers(config["headers"])


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "httpConfig.url must be a string")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ApiError(400, "httpConfig.url is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ApiError(400, "httpConfig.url must be an absolute https (or, here, http) URL")
    return value


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ApiError(400, "httpConfig.headers must map header names to values")
    for name, text in value.items():
        if not _HEADER_NAME.match(name) or not isinstance(text, str) or "\r" in text or "\n" in text:
            raise ApiError(400, f"httpConfig.headers has an invalid header: {name!r}")
    return dict(value)


def _mask(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    paths = frozenset(_camel_path(path.strip()) for path in text.split(",") if path.strip())
    unknown = paths - _MASK_PATHS
    if unknown:
        raise ApiError(400, f"update_mask names an unknown field: {sorted(unknown)[0]}")
    return paths


def _camel_path(path: str) -> str:
    def camel(part: str) -> str:
        head, *rest = part.split("_")
        return head + "".join(word.title() for word in rest)

    return ".".join(camel(part) for part in path.split("."))
