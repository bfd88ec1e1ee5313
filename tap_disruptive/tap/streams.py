"""The tap's streams: `devices`, and `events`, which follows DT's stream within the run's bounds."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.devices import Device
from tap_disruptive.model.times import canonical_timestamp, format_timestamp
from tap_disruptive.tap.progress import RunReport
from tap_disruptive.tap.records import DeviceRegistry, device_record
from tap_disruptive.tap.sdk_seams import (
    BatchedRecords,
    BookmarksFromTheSource,
    ReportedErrorsOnce,
    StopsAtCheckpoints,
)
from tap_disruptive.tap.settings import CONNECTOR, TapConfig
from tap_disruptive.tap.sources import ConnectorSource, EventSource, StreamSource

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
T = TypeVar("T")


def load_schema(stream: str) -> dict[str, Any]:
    """A stream's JSON schema, from its data file (read once: the SDK looks at it for every record)."""
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{stream}.json").read_text())
    return schema


# STATE is written at least this often while events flow (and at every end), so a stop loses nothing.
STATE_INTERVAL = 5.0


class DisruptiveStream(Stream):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger.addFilter(ReportedErrorsOnce())

    @property
    def tap_config(self) -> TapConfig:
        config: TapConfig = self._tap.tap_config  # type: ignore[attr-defined]
        return config

    def within_dry_run_limit(self, records: Iterable[T]) -> Iterator[T]:
        """The records, cut at a dry run's limit (`--test`) so that the SDK ends the stream as a success
        instead of aborting it with an error logged."""
        limit = self.ABORT_AT_RECORD_COUNT
        return iter(records) if limit is None else itertools.islice(records, limit)

    def first_listing(self) -> dict[str, list[Device]]:
        """Each project's devices as listed at the start of the run (once, for both streams)."""
        listing: dict[str, list[Device]] = self._tap.first_listing  # type: ignore[attr-defined]
        return listing


class DevicesStream(DisruptiveStream):
    """Every device the filter selects, in every project."""

    name = "devices"
    primary_keys = ("device_id",)
    replication_key = None
    schema: ClassVar[dict[str, Any]] = load_schema("devices")

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        devices = itertools.chain.from_iterable(self.first_listing().values())
        return self.within_dry_run_limit(device_record(device) for device in devices)


class EventsStream(BatchedRecords, BookmarksFromTheSource, DisruptiveStream):
    """DT's events: history since the bookmark (or start_date), then the live stream until a bound."""

    name = "events"
    primary_keys = ("event_id",)
    replication_key = "timestamp"
    schema: ClassVar[dict[str, Any]] = load_schema("events")
    # Events of different devices, and events recovered from history, do not come in time order; each
    # project's bookmark is the time up to which everything has been written, kept by get_records.
    is_sorted = False
    state_partitioning_keys = ("project_id",)
    # Records are typed as the schema says by construction: no per-record conformance pass.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @property
    def partitions(self) -> None:
        """None: every project is followed at once, by one call of get_records, each with its own
        bookmark. (As partitions, the SDK would read them one after another, and a live one never ends.)"""
        return None

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """The records, one by one, for the SDK's own record path (stream maps, flattening, selection)."""
        return self.within_dry_run_limit(self._records_one_by_one())

    def _records_one_by_one(self) -> Iterator[dict[str, Any]]:
        batches = self.record_batches(DeviceRegistry.record)
        try:
            records = next(batches)
            while True:
                yield from records  # each written by the SDK before the next is asked for
                records = batches.send(len(records))
        except StopIteration:
            return
        finally:
            batches.close()

    def record_batches(
        self, registry_record: Callable[[DeviceRegistry, Event], T]
    ) -> Generator[list[T], int, None]:
        """The run: records a delivery at a time (empty ones too, so that bounds hold on a quiet stream),
        each made by `registry_record` (as a dict, or as JSON text); the consumer sends back how many of
        each batch it has written, and the bookmark moves to match."""
        config = self.tap_config
        tap: StopsAtCheckpoints = self._tap  # type: ignore[assignment]
        report = RunReport(self.logger)
        registry = DeviceRegistry()
        for devices in self.first_listing().values():
            registry.load(devices)
        bounds, started = config.bounds, report.started
        last_event = last_state = started
        reason = "the end of the stream" if config.live else "the end of history"
        with ExitStack() as resources:
            source: EventSource
            if config.source == CONNECTOR:
                source = ConnectorSource(config, registry, self, resources)
                reason = "the end of the spool" if not config.live else reason
            else:
                starts = {project_id: self._resume_point(project_id) for project_id in config.project_ids}
                source = StreamSource(config, starts, registry, self, resources)
                report.set_starts({project_id: start for project_id, (start, _) in starts.items()})
            report.start(source.describe(), config.event_filter, config.bounds, source.progress)
            batches = source.batches()
            try:
                for batch in batches:
                    now = time.monotonic()
                    count = len(batch.events)
                    if count:
                        last_event = now
                        if bounds.max_events is not None:
                            count = min(count, bounds.max_events - report.written)
                    taken = yield source.records(batch, count, registry_record)
                    bookmark = source.written(batch, taken)
                    report.written_up_to(batch.project_id, taken, bookmark)
                    if now - last_state >= STATE_INTERVAL:
                        self.write_state_now()
                        last_state = now
                    stop = _bound_reached(config, report.written, now - started, now - last_event)
                    if stop is None and tap.stop_requested.is_set():
                        stop = "a signal, at a checkpoint"
                    if stop is not None:
                        reason = stop
                        break
            except GeneratorExit:
                reason = "the SDK's record limit"
                raise
            except Exception:
                reason = "an error"
                raise
            finally:
                batches.close()  # type: ignore[attr-defined]
                report.end(reason, source.summary())

    def record_json_batches(self) -> Generator[list[bytes], int, None]:
        """The same run, records as JSON text, for the batched path (see `sdk_seams.BatchedRecords`)."""
        return self.record_batches(DeviceRegistry.record_json)

    def partition_state(self, project_id: str) -> dict[str, Any]:
        """A project's bookmarks, for its source to read and move."""
        state: dict[str, Any] = self.get_context_state({"project_id": project_id})
        return state

    def moved(self) -> None:
        """A bookmark has moved: the next STATE message carries it."""
        self.state_manager.is_flushed = False

    def _resume_point(self, project_id: str) -> tuple[str | None, str]:
        """Where a project's reading starts, and why: its bookmark (a time up to which everything was
        written, allowing already for late arrivals), else start_date, else now (None) or, for a
        history-only run, a day ago."""
        bookmark = self.get_context_state({"project_id": project_id}).get("replication_key_value")
        if bookmark:
            return canonical_timestamp(str(bookmark)), "the bookmark"
        if self.tap_config.start_date:
            return self.tap_config.start_date, "start_date"
        if not self.tap_config.live:
            return format_timestamp(time.time() - 86_400), "no bookmark or start_date: the last day"
        return None, "no bookmark or start_date"

    def writes_records_as_they_are(self) -> bool:
        """True when no stream map, flattening or deselected property changes records."""
        maps = self.stream_maps
        if len(maps) != 1 or type(maps[0]) is not SameRecordTransform or maps[0].flattening_enabled:
            return False
        if maps[0].stream_alias != self.name:
            return False
        return all(self.mask.get(("properties", name), True) for name in self.schema["properties"])


def _bound_reached(config: TapConfig, emitted: int, elapsed: float, idle: float) -> str | None:
    """The bound that ends the run now, if any."""
    bounds = config.bounds
    if bounds.max_events is not None and emitted >= bounds.max_events:
        return "max_events"
    if bounds.max_duration is not None and elapsed >= bounds.max_duration:
        return "max_duration"
    if bounds.idle_timeout is not None and idle >= bounds.idle_timeout:
        return "idle_timeout"
    return None
