"""The tap's settings turned into what the client needs, each checked with one clear line on error."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tap_disruptive.client.protocol.errors import FatalError
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.settings import DT_API_URL, DT_TOKEN_URL, ClientSettings, Credentials
from tap_disruptive.model.times import format_timestamp, parse_timestamp


class ConfigError(FatalError):
    """A setting is missing or wrong; the message names it."""


# Where events come from: DT's event stream (and history), or the spool a Data Connector receiver fills.
STREAM, CONNECTOR = "stream", "connector"
SOURCES = (STREAM, CONNECTOR)


@dataclass(frozen=True)
class RunBounds:
    """When a run ends: the first bound reached. None means no such bound."""

    max_events: int | None = None
    max_duration: float | None = None
    # Seconds without an event (pings do not count).
    idle_timeout: float | None = None


@dataclass(frozen=True)
class TapConfig:
    project_ids: tuple[str, ...]
    # None only with the connector source and no service account: then no device is listed.
    client: ClientSettings | None
    event_filter: EventFilter
    start_date: str | None
    live: bool
    bounds: RunBounds
    source: str = STREAM
    # The receiver's spool (a SQLite file or a postgresql:// URL), for the connector source.
    spool: str | None = field(default=None, repr=False)

    @property
    def api(self) -> ClientSettings:
        """The settings of DT's API; the stream source always has them."""
        if self.client is None:
            raise ConfigError("key_id, key_secret (and email): required to read DT's API")
        return self.client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TapConfig:
        projects = config.get("project_ids")
        if isinstance(projects, str):
            projects = [part.strip() for part in projects.split(",") if part.strip()]
        if not projects or not isinstance(projects, list):
            raise ConfigError("project_ids: give at least one DT project id")
        for project in projects:
            if not isinstance(project, str) or not project or "/" in project:
                raise ConfigError(f"project_ids: not a DT project id: {project!r}")
        source = config.get("source") or STREAM
        if source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        spool = config.get("spool") or None
        if source == CONNECTOR and not isinstance(spool, str):
            raise ConfigError(
                "spool: required with source=connector (the receiver's --spool: a file or postgresql:// URL)"
            )
        try:
            api_url = _api_url(config.get("api_url") or DT_API_URL)
            client = None
            # The connector source needs no service account: one given lists devices for `devices`.
            if source == STREAM or _string(config, "key_id"):
                credentials = Credentials(
                    key_id=_string(config, "key_id"),
                    key_secret=_string(config, "key_secret"),
                    email=_string(config, "email"),
                    basic_auth=bool(config.get("basic_auth", False)),
                )
                client = ClientSettings(
                    credentials,
                    api_url=api_url,
                    token_url=config.get("token_url") or DT_TOKEN_URL,
                    max_request_rate=_bound(config, "max_request_rate", unit="requests a second"),
                )
            event_filter = EventFilter.of(
                device_ids=config.get("device_ids"),
                label_filters=config.get("label_filters"),
                device_types=config.get("device_types"),
                event_types=config.get("event_types"),
            )
        except ConfigError:
            raise
        except FatalError as error:
            raise ConfigError(str(error)) from None
        return cls(
            project_ids=tuple(dict.fromkeys(projects)),
            client=client,
            event_filter=event_filter,
            start_date=_start_date(config.get("start_date")),
            live=_boolean(config, "live", default=True),
            bounds=RunBounds(
                max_events=_bound(config, "max_events", integer=True),
                max_duration=_bound(config, "max_duration"),
                idle_timeout=_bound(config, "idle_timeout"),
            ),
            source=source,
            spool=spool if source == CONNECTOR else None,
        )


def _string(config: Mapping[str, Any], name: str) -> str:
    value = config.get(name) or ""
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def _boolean(config: Mapping[str, Any], name: str, default: bool) -> bool:
    value = config.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _bound(config: Mapping[str, Any], name: str, integer: bool = False, unit: str = "seconds") -> Any:
    value = config.get(name)
    if value is None:
        return None
    kind = "a positive whole number" if integer else f"a positive number of {unit}"
    # JSON config numbers may arrive as Decimal (the SDK's parser) or as strings (environment variables).
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {kind}, got {value!r}") from None
    if number <= 0 or (integer and number != int(number)):
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    return int(number) if integer else number


def _api_url(value: Any) -> str:
    # Without the version, every path is unknown to DT and the first answer would be a misleading 404.
    if not isinstance(value, str) or not value.rstrip("/").endswith("/v2"):
        raise ConfigError(
            f"api_url must be DT's REST API address, ending in /v2 (as {DT_API_URL}): {value!r}"
        )
    return value.rstrip("/")


def _start_date(value: Any, now: float | None = None) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        value = value.isoformat()
    try:
        seconds = parse_timestamp(str(value)).timestamp()
    except ValueError:
        raise ConfigError(
            f"start_date is not an RFC 3339 date-time such as 2026-11-01T00:00:00Z: {value!r}"
        ) from None
    # A start in the future would read nothing until then (a minute of slack for clocks that differ).
    if seconds > (time.time() if now is None else now) + 60:
        raise ConfigError(f"start_date is in the future: {value}")
    return format_timestamp(seconds)
