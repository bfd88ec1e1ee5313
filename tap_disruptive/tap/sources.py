"""Where the `events` stream reads from: DT's event stream (with history), or a Data Connector
receiver's spool. Each source hands the run batches of events and moves its own bookmarks once the run
says how many of a batch were written; the run (`streams.EventsStream.record_batches`) is the same."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tap_disruptive.client.drivers.spool import SpoolReader
from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.client.protocol.bookmarks import bookmark_after
from tap_disruptive.client.protocol.commands import Delivery
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.spooled import SpoolDelivery
from tap_disruptive.spool import shown_target
from tap_disruptive.tap.inputs import DEVICE_FRONTIERS
from tap_disruptive.tap.records import DeviceRegistry
from tap_disruptive.tap.settings import TapConfig

T = TypeVar("T")
# A device seen in an event but missing from the last listing makes the tap list devices again, at most
# this often.
DEVICE_REFRESH_INTERVAL = 30.0
# The key of a project's state that holds the spool's seq up to which everything has been written.
SPOOL_SEQ = "spool_seq"


class Bookmarks(Protocol):
    """The stream's state, as a source reads and moves it."""

    def partition_state(self, project_id: str) -> dict[str, Any]: ...
    def moved(self) -> None: ...


@dataclass
class Batch:
    """Events to write, in order, and what the source needs to move its bookmarks afterwards."""

    events: list[Event]
    # The project whose bookmark moves (None: every project's).
    project_id: str | None
    delivery: Delivery | SpoolDelivery


class EventSource(Protocol):
    def describe(self) -> str:
        """Where the run starts reading, for the start line."""
        ...

    def batches(self) -> Iterator[Batch]: ...

    def records(self, batch: Batch, count: int, make: Callable[[DeviceRegistry, Event], T]) -> list[T]:
        """The records of the batch's first `count` events."""
        ...

    def written(self, batch: Batch, taken: int) -> str | None:
        """`taken` of the batch's events are written: move the bookmarks. Returns the batch project's
        bookmark as a time, where the source has one (for the progress lines)."""
        ...

    def summary(self) -> str: ...

    def progress(self) -> str:
        """What a catch-up has cost so far, for the progress lines ("" where nothing is counted)."""
        ...


class StreamSource:
    """DT's history since each project's bookmark, then the live stream; bookmarks are times."""

    def __init__(
        self,
        config: TapConfig,
        starts: dict[str, tuple[str | None, str]],
        registry: DeviceRegistry,
        bookmarks: Bookmarks,
        resources: ExitStack,
    ) -> None:
        self._config = config
        self._starts = starts
        self._registry = registry
        self._bookmarks = bookmarks
        self._times: dict[str, str | None] = dict.fromkeys(config.project_ids)
        self._client = resources.enter_context(DisruptiveClient(config.api))
        self._subscriptions = self._client.follow_many(
            {project_id: start for project_id, (start, _) in starts.items()},
            config.event_filter,
            live=config.live,
            device_starts={
                project_id: dict(bookmarks.partition_state(project_id).get(DEVICE_FRONTIERS) or {})
                for project_id in config.project_ids
            },
        )
        self._last_refresh = time.monotonic()

    def describe(self) -> str:
        mode = "history, then the live stream" if self._config.live else "history only"
        projects = "; ".join(
            f"{project_id} from {start or 'now'} ({origin})"
            for project_id, (start, origin) in self._starts.items()
        )
        return f"{mode}: {projects}"

    def batches(self) -> Iterator[Batch]:
        for project_id, delivery in self._subscriptions.deliveries():
            yield Batch(delivery.events, project_id, delivery)

    def records(self, batch: Batch, count: int, make: Callable[[DeviceRegistry, Event], T]) -> list[T]:
        events = batch.events[:count]
        registry = self._registry
        now = time.monotonic()
        if now - self._last_refresh > DEVICE_REFRESH_INTERVAL and not all(
            registry.knows(event.device_id) for event in events
        ):
            assert batch.project_id is not None
            registry.load(self._client.devices(batch.project_id, self._config.event_filter))
            self._last_refresh = now
        return [make(registry, event) for event in events]

    def written(self, batch: Batch, taken: int) -> str | None:
        project_id, delivery = batch.project_id, batch.delivery
        assert project_id is not None and isinstance(delivery, Delivery)
        bookmark = self._times[project_id] = bookmark_after(
            self._times[project_id], delivery.events, delivery.complete_until, taken
        )
        state = self._bookmarks.partition_state(project_id)
        if delivery.device_id is not None:
            self._device_written(state, delivery, taken)
        if bookmark is not None and bookmark > (state.get("replication_key_value") or ""):
            state["replication_key"] = "timestamp"
            state["replication_key_value"] = bookmark
            # Device frontiers the bookmark has caught up with say nothing more.
            frontiers = state.get(DEVICE_FRONTIERS)
            if frontiers:
                state[DEVICE_FRONTIERS] = {d: until for d, until in frontiers.items() if until > bookmark}
            self._bookmarks.moved()
        return bookmark

    def _device_written(self, state: dict[str, Any], delivery: Delivery, taken: int) -> None:
        """A catch-up per device: how far the delivery's device is complete, where that is ahead of the
        project's bookmark (a resumed run reads that device from there)."""
        assert delivery.device_id is not None
        frontiers = state.setdefault(DEVICE_FRONTIERS, {})
        until = bookmark_after(
            frontiers.get(delivery.device_id), delivery.events, delivery.device_until, taken
        )
        if until is not None and until > (state.get("replication_key_value") or ""):
            frontiers[delivery.device_id] = until
            self._bookmarks.moved()

    def summary(self) -> str:
        return self._subscriptions.stats.summary()

    def progress(self) -> str:
        stats, pacer = self._subscriptions.stats, self._client.pacer
        devices = (
            f"devices read to the end {stats.devices_caught_up} of {stats.devices_planned}; "
            if stats.devices_planned
            else ""
        )
        return (
            f"{devices}history requests {stats.history_requests}, answered 429 {stats.faults['http_429']}, "
            f"pacing {pacer.rate:.1f} requests/s"
        )


class ConnectorSource:
    """The spool a Data Connector receiver fills, read in its own order (seq) from each project's
    bookmark on; events carry their device's type and forwarded labels as DT pushed them."""

    def __init__(
        self,
        config: TapConfig,
        registry: DeviceRegistry,
        bookmarks: Bookmarks,
        resources: ExitStack,
    ) -> None:
        assert config.spool is not None
        self._config = config
        self._registry = registry
        self._bookmarks = bookmarks
        # Each project's seq up to which its events are written. Reading starts at the lowest (a
        # project added since the last run starts at the beginning of the spool); the others skip
        # what they have written already.
        self._seqs = {
            project: int(bookmarks.partition_state(project).get(SPOOL_SEQ) or 0)
            for project in config.project_ids
        }
        self._seq = self._start = min(self._seqs.values())
        self._reader = resources.enter_context(SpoolReader(config.spool))

    def describe(self) -> str:
        mode = "the spool, then what the receiver adds" if self._config.live else "the spool as it stands"
        origin = f"after seq {self._start} (the bookmark)" if self._start else "from its start"
        since = f", events stamped from {self._config.start_date} on" if self._config.start_date else ""
        projects = ", ".join(self._config.project_ids)
        return f"{mode}: {shown_target(self._config.spool or '')} {origin}{since}; projects {projects}"

    def batches(self) -> Iterator[Batch]:
        deliveries = self._reader.deliveries(
            self._seq,
            self._config.project_ids,
            self._config.event_filter,
            since=self._config.start_date,
            live=self._config.live,
        )
        seqs = self._seqs
        for read in deliveries:
            delivery = read
            if read.events and read.events[0].seq <= max(seqs.values()):
                fresh = [pushed for pushed in read.events if pushed.seq > seqs[pushed.event.project_id]]
                delivery = SpoolDelivery(fresh, read.through_seq)
            yield Batch([pushed.event for pushed in delivery.events], None, delivery)

    def records(self, batch: Batch, count: int, make: Callable[[DeviceRegistry, Event], T]) -> list[T]:
        assert isinstance(batch.delivery, SpoolDelivery)
        registry, records = self._registry, []
        for pushed in batch.delivery.events[:count]:
            registry.learn(pushed.event.device_id, pushed.device_type, pushed.labels)
            records.append(make(registry, pushed.event))
        return records

    def written(self, batch: Batch, taken: int) -> str | None:
        assert isinstance(batch.delivery, SpoolDelivery)
        seq = batch.delivery.seq_after(taken, self._seq)
        if seq > self._seq:
            self._seq = seq
            for project_id, written in self._seqs.items():
                if seq > written:
                    self._seqs[project_id] = seq
                    self._bookmarks.partition_state(project_id)[SPOOL_SEQ] = seq
            self._bookmarks.moved()
        return None

    def summary(self) -> str:
        return self._reader.stats.summary()

    def progress(self) -> str:
        return ""
