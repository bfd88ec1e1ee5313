"""The tap's streams: `devices`, and `events`, which follows DT's stream within the run's bounds."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from singer_sdk import SchemaDirectory, Stream, StreamSchema
from singer_sdk.mapper import SameRecordTransform

from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.client.protocol.bookmarks import bookmark_after
from tap_disruptive.model.times import format_timestamp, timestamp_seconds
from tap_disruptive.tap.output import RecordWriter
from tap_disruptive.tap.records import DeviceRegistry, device_record
from tap_disruptive.tap.settings import TapConfig

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

SCHEMAS = SchemaDirectory(Path(__file__).parent / "schemas")
# STATE is written at least this often while events flow (and at every end), so a stop loses nothing.
STATE_INTERVAL = 5.0
# A device seen in an event but missing from the last listing makes the tap list devices again, at most
# this often.
DEVICE_REFRESH_INTERVAL = 30.0


class DisruptiveStream(Stream):
    @property
    def tap_config(self) -> TapConfig:
        config: TapConfig = self._tap.tap_config  # type: ignore[attr-defined]
        return config


class DevicesStream(DisruptiveStream):
    """Every device the filter selects, in every project."""

    name = "devices"
    primary_keys = ("device_id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        config = self.tap_config
        with DisruptiveClient(config.client) as client:
            for project_id in config.project_ids:
                for device in client.devices(project_id, config.event_filter):
                    if self._tap.stop_requested.is_set():  # type: ignore[attr-defined]
                        return
                    yield device_record(device)


class EventsStream(DisruptiveStream):
    """DT's events: history since the bookmark (or start_date), then the live stream until a bound."""

    name = "events"
    primary_keys = ("event_id",)
    replication_key = "timestamp"
    schema = StreamSchema(SCHEMAS)
    # Events of different devices, and events recovered from history, do not come in time order; the
    # bookmark is the follower's "complete until" time, managed here rather than from record values.
    is_sorted = False
    state_partitioning_keys = ("project_id",)

    @property
    def partitions(self) -> list[dict[str, Any]]:
        return [{"project_id": project_id} for project_id in self.tap_config.project_ids]

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        return None  # bookmarks only ever hold times up to which everything was written

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        # The SDK calls this only through _sync_records, which is replaced below.
        raise NotImplementedError

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[dict[str, Any], Any, Any]:
        config = self.tap_config
        project_ids = [context["project_id"]] if context else list(config.project_ids)
        starts = {project_id: self._resume_point({"project_id": project_id}) for project_id in project_ids}
        if not config.live:
            # A history-only run with neither bookmark nor start_date reads the last day.
            day_ago = format_timestamp(time.time() - 86_400)
            starts = {project_id: start or day_ago for project_id, start in starts.items()}
        bookmarks: dict[str, str | None] = {project_id: None for project_id in project_ids}
        fast = write_messages and self._writes_records_as_they_are()
        writer = RecordWriter(self.name)
        registry = DeviceRegistry()
        bounds = config.bounds
        emitted, started = 0, time.monotonic()
        last_event = last_state = last_refresh = started
        # The first requests prove the address, credentials and projects; a few quick tries only, so a
        # wrong address fails in seconds rather than after the patience a long run deserves.
        with DisruptiveClient(replace(config.client, max_attempts=3, backoff_cap=1.0)) as preflight:
            for project_id in project_ids:
                registry.load(preflight.devices(project_id, config.event_filter))
        with DisruptiveClient(config.client) as client:
            deliveries = client.follow_many(starts, config.event_filter, live=config.live)
            try:
                for project_id, delivery in deliveries:
                    now = time.monotonic()
                    events = delivery.events
                    taken = len(events)
                    if events:
                        last_event = now
                        if bounds.max_events is not None:
                            events = events[: bounds.max_events - emitted]
                        if now - last_refresh > DEVICE_REFRESH_INTERVAL and not all(
                            registry.knows(event.device_id) for event in events
                        ):
                            registry.load(client.devices(project_id, config.event_filter))
                            last_refresh = now
                        records = [registry.record(event) for event in events]
                        taken = yield from self._emit(
                            records, emitted, writer if fast else None, write_messages
                        )
                        emitted += taken
                    bookmarks[project_id] = bookmark_after(
                        bookmarks[project_id], delivery.events, delivery.complete_until, taken
                    )
                    self._checkpoint(project_id, bookmarks[project_id])
                    if write_messages and now - last_state >= STATE_INTERVAL:
                        self._write_state_message()
                        last_state = now
                    if _bound_reached(config, emitted, now - started, now - last_event):
                        break
                    if self._tap.stop_requested.is_set():  # type: ignore[attr-defined]
                        self.logger.info("Stopping on a signal, at a checkpoint")
                        break
            finally:
                deliveries.close()
        self.logger.info("Wrote %d events in %.1f s", emitted, time.monotonic() - started)

    def _emit(
        self, records: list[dict[str, Any]], emitted: int, writer: RecordWriter | None, write_messages: bool
    ) -> Generator[dict[str, Any], Any, int]:
        """Write the records (all, or up to the SDK's test limit); returns how many were written."""
        limit = self.ABORT_AT_RECORD_COUNT
        if limit is not None and emitted + len(records) > limit:
            records = records[: max(0, limit - emitted)]
        if self.selected and write_messages:
            if writer is not None:
                writer.write(records)
                self.state_manager.is_flushed = False
            else:
                for record in records:
                    self._write_record_message(record)
        yield from records
        if limit is not None:
            self._check_max_record_limit(current_record_index=emitted + len(records))
        return len(records)

    def _checkpoint(self, project_id: str, bookmark: str | None) -> None:
        """Advance the project's bookmark to the time up to which every event has been written."""
        if bookmark is None:
            return
        state = self.get_context_state({"project_id": project_id})
        if bookmark > (state.get("replication_key_value") or ""):
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = bookmark
            self.state_manager.is_flushed = False

    def _resume_point(self, context: dict[str, Any]) -> str | None:
        """Where a project's reading starts: its bookmark (the follower's complete-until time, which
        already allows for late arrivals), else start_date, else now (None)."""
        self._write_starting_replication_value(context)
        start = self.get_starting_replication_key_value(context)
        return format_timestamp(timestamp_seconds(str(start))) if start else None

    def _writes_records_as_they_are(self) -> bool:
        """True when no stream map, flattening or deselected property changes records: the fast path."""
        maps = self.stream_maps
        if len(maps) != 1 or type(maps[0]) is not SameRecordTransform or maps[0].flattening_enabled:
            return False
        if maps[0].stream_alias != self.name:
            return False
        return all(self.mask.get(("properties", name), True) for name in self.schema["properties"])


def _bound_reached(config: TapConfig, emitted: int, elapsed: float, idle: float) -> bool:
    bounds = config.bounds
    return (
        (bounds.max_events is not None and emitted >= bounds.max_events)
        or (bounds.max_duration is not None and elapsed >= bounds.max_duration)
        or (bounds.idle_timeout is not None and idle >= bounds.idle_timeout)
    )
