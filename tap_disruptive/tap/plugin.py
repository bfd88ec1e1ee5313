"""tap-disruptive: Disruptive Technologies sensor events as a Singer tap."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from functools import cached_property
from typing import Any, ClassVar

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities

from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.client.protocol.errors import DisruptiveError
from tap_disruptive.client.protocol.settings import DT_API_URL, DT_TOKEN_URL
from tap_disruptive.model.device_types import DEVICE_TYPE_NAMES
from tap_disruptive.model.devices import Device
from tap_disruptive.model.event_types import EVENT_TYPE_NAMES
from tap_disruptive.tap.inputs import check_settings, check_state
from tap_disruptive.tap.output import SingerLineWriter, whole_line_stdout
from tap_disruptive.tap.sdk_seams import CheckedInputs, StopsAtCheckpoints
from tap_disruptive.tap.settings import TapConfig
from tap_disruptive.tap.streams import DevicesStream, EventsStream


class TapDisruptive(CheckedInputs, StopsAtCheckpoints, Tap):
    """Disruptive Technologies sensor events: history since the bookmark, then the live stream."""

    name = "tap-disruptive"
    # Records in batches, with orjson; DT's payloads passed through as the JSON text they came as.
    message_writer_class = SingerLineWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "project_ids",
            th.ArrayType(th.StringType),
            # Required to run, but checked by the tap (TapConfig), not the schema: discovery needs no
            # settings, and the SDK would warn of a failed validation there.
            title="Project IDs",
            description="DT projects to read, one or more (required).",
        ),
        th.Property("key_id", th.StringType, title="Key ID", description="Service account key id."),
        th.Property(
            "key_secret",
            th.StringType,
            secret=True,
            title="Key secret",
            description="Service account secret.",
        ),
        th.Property(
            "email",
            th.StringType,
            title="Service account email",
            description="Service account email, the JWT issuer for OAuth2 (not needed with basic_auth).",
        ),
        th.Property(
            "basic_auth",
            th.BooleanType,
            default=False,
            title="Basic auth",
            description="Send key id and secret as HTTP Basic auth instead of exchanging a JWT for a token.",
        ),
        th.Property(
            "api_url",
            th.URIType,
            default=DT_API_URL,
            title="API URL",
            description="DT's REST API (v2), or a local emulator's.",
        ),
        th.Property(
            "token_url",
            th.URIType,
            default=DT_TOKEN_URL,
            title="Token URL",
            description="DT's OAuth2 token endpoint, or a local emulator's.",
        ),
        th.Property(
            "source",
            th.StringType(allowed_values=["stream", "connector"]),
            default="stream",
            title="Source",
            description="Where events come from: 'stream', DT's event stream and history; or 'connector', "
            "the spool a Data Connector receiver (disruptive-receiver) fills from DT's pushes.",
        ),
        th.Property(
            "spool",
            th.StringType,
            secret=True,
            title="Spool",
            description="With source=connector: the receiver's --spool, a SQLite file path or a "
            "postgresql:// URL. (Secret: a URL may hold a password.)",
        ),
        th.Property(
            "device_ids",
            th.ArrayType(th.StringType),
            title="Device IDs",
            description="Only events of these devices.",
        ),
        th.Property(
            "label_filters",
            th.ObjectType(additional_properties=th.StringType(nullable=True)),
            title="Label filters",
            description='Only devices with these labels: {"key": "value"}, or {"key": null} for any value. '
            "All must hold.",
        ),
        th.Property(
            "device_types",
            th.ArrayType(th.StringType(allowed_values=sorted(DEVICE_TYPE_NAMES))),
            title="Device types",
            description="Only devices of these types.",
        ),
        th.Property(
            "event_types",
            th.ArrayType(th.StringType(allowed_values=sorted(EVENT_TYPE_NAMES))),
            title="Event types",
            description="Only events of these types.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="How far back the first run reads history (DT keeps 31 days). Without it, a first "
            "live run starts now, and a first run with live=false reads the last 24 hours.",
        ),
        th.Property(
            "live",
            th.BooleanType,
            default=True,
            title="Follow the live stream",
            description="After catching up from history, follow the live stream (until a bound is reached).",
        ),
        th.Property(
            "max_events",
            th.IntegerType,
            title="Max events",
            description="End the run after this many events.",
        ),
        th.Property(
            "max_duration",
            th.NumberType,
            title="Max duration (seconds)",
            description="End the run after this many seconds.",
        ),
        th.Property(
            "idle_timeout",
            th.NumberType,
            title="Idle timeout (seconds)",
            description="End the run after this many seconds without an event (pings do not count).",
        ),
        th.Property(
            "max_request_rate",
            th.NumberType,
            title="Max request rate (requests/s)",
            description="Never send DT more requests a second than this (the rate is otherwise learned from "
            "DT's 429 answers).",
        ),
    ).to_dict()

    # Events are written as they arrive, from a stream without end: BATCH files do not fit it.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        capability for capability in Tap.capabilities if capability != PluginCapabilities.BATCH
    ]

    @cached_property
    def tap_config(self) -> TapConfig:
        return TapConfig.from_config(self.config)

    def __init__(
        self,
        *,
        config: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
        validate_config: bool = True,
        **kwargs: Any,
    ) -> None:
        # Every setting and the state checked before anything is read or written. Discovery needs no
        # settings: the schemas are data.
        if validate_config and isinstance(config, dict):
            check_settings(config, self.settings_schema())
        if state:
            check_state(state, "state")
        super().__init__(config=config, state=state, validate_config=validate_config, **kwargs)
        if validate_config:
            _ = self.tap_config

    @cached_property
    def first_listing(self) -> dict[str, list[Device]]:
        """Each project's devices, listed once at the start of the run. These first requests prove the
        address, the credentials and the projects, with a few quick tries only: a wrong address fails in
        seconds rather than after the patience a long run deserves."""
        config = self.tap_config
        if config.client is None:
            self.logger.info("No service account set (source=connector): devices are not listed")
            return {}
        with DisruptiveClient(replace(config.client, max_attempts=3, backoff_cap=1.0)) as client:
            return {
                project_id: client.devices(project_id, config.event_filter)
                for project_id in config.project_ids
            }

    def discover_streams(self) -> list[Stream]:
        return [DevicesStream(self), EventsStream(self)]


def main(early_stop: threading.Event | None = None) -> None:
    """The console script: the SDK's CLI, with configuration and DT errors as one line, not a traceback.
    `early_stop`: set by a signal that came before the tap was made (see `tap_disruptive.tap.main`)."""
    StopsAtCheckpoints.early_stop = early_stop
    whole_line_stdout()
    try:
        TapDisruptive.cli()
    except ConfigValidationError as error:
        details = "; ".join(error.errors) if getattr(error, "errors", None) else str(error)
        sys.exit(f"tap-disruptive: bad config: {details}")
    except DisruptiveError as error:
        sys.exit(f"tap-disruptive: {error}")
