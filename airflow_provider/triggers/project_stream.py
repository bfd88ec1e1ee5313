"""One DT stream per (connection, project) in a triggerer, shared by every trigger that reads it, with
watermarks that move only once Airflow has stored what was fired.

Airflow 3.3's shared streams in ack mode: the producer follows the project (history from the earliest
watermark of the triggers that subscribe at its start, then the live stream, in time order) and hands
each delivery to every subscriber; each subscriber filters it with the protocol's filter and its
condition. Airflow tells the producer (`advance`) when every subscriber has moved past a delivery and
every TriggerEvent derived from it is stored; only then is each watcher's position written to its asset
state store. A subscriber that joins a running stream reads the stretch before it from history first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from airflow_provider.hooks.disruptive import DisruptiveHook
from tap_disruptive.client.drivers.aio import AsyncDisruptiveClient
from tap_disruptive.client.protocol.bookmarks import Position
from tap_disruptive.client.protocol.errors import FatalError
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.devices import Device
from tap_disruptive.model.event_types import LABELS_CHANGED

logger = logging.getLogger(__name__)

# How long a new stream waits for the triggers created with it (a triggerer starts all of its triggers
# within a second), so that it starts from the earliest of their watermarks.
COHORT_WAIT = 2.0
# An empty delivery is handed on at most this often: it lets subscribers that wait for history move on,
# and watermarks move on a quiet stream.
TICK_INTERVAL = 1.0
# The position of a subscriber that fired nothing since its last write is written at most this often.
QUIET_WRITE_INTERVAL = 30.0
# After a fatal error (refused credentials, unknown project), a stream is opened again no sooner.
FATAL_PAUSE = 60.0


@dataclass(frozen=True)
class SharedDelivery:
    """What subscribers receive: a delivery of the project's events in time order (maybe empty), and the
    time up to which everything has been delivered; or a fatal error (`failure`)."""

    seq: int
    events: tuple[Event, ...]
    complete_until: str | None
    failure: str | None = None
    # The project's devices as they stood (labels kept current from labelsChanged events), for the
    # subscribers' filters; None when a subscriber's own history read already applied its filter.
    devices: Mapping[str, Device] | None = None


class PositionStore(Protocol):
    """Where a watcher keeps its position: Airflow's asset state store accessor."""

    async def aset(self, key: str, value: Any) -> None: ...


class StoredPosition(Protocol):
    """A watcher's position as its store keeps it: a DT stream's `Position`, or a spool's seq."""

    def to_json(self) -> Any: ...


P = TypeVar("P", bound=StoredPosition)


@dataclass
class Subscriber(Generic[P]):
    """A trigger reading a shared stream, as the stream's producer sees it."""

    position: P
    # Where its position is written once what it fired is stored (None: nothing to write, e.g. a sensor).
    store: PositionStore | None = None
    key: str = ""
    # Nothing before now matters to it (no start time, nothing stored): it needs no history read.
    from_now: bool = False
    # How many events it has fired so far: a position with more fired than the last one written is
    # written at once (or the fired events would fire again after a restart).
    fired: int = 0
    written: P | None = None
    written_fired: int = 0
    written_at: float = 0.0


@dataclass
class Cohort(Generic[P]):
    """The shared state of one stream in this process: its subscribers, whether it has started (a
    subscriber joining later reads its stretch of history itself), and each subscriber's position as it
    stood when it moved past each delivery."""

    subscribers: dict[int, Subscriber[P]] = field(default_factory=dict)
    started: bool = False
    marks: dict[int, dict[int, tuple[P, int]]] = field(default_factory=dict)

    def mark(self, seq: int, subscriber_id: int, subscriber: Subscriber[P]) -> None:
        """The subscriber moves past delivery `seq` with this position, having fired this many events."""
        self.marks.setdefault(seq, {})[subscriber_id] = (subscriber.position, subscriber.fired)


# One cohort per shared-stream key, in this (triggerer) process.
COHORTS: dict[Hashable, Cohort[Any]] = {}
_LAST_FATAL: dict[Hashable, float] = {}


def cohort(key: Hashable) -> Cohort[Any]:
    return COHORTS.setdefault(key, Cohort())


def stream_key(conn_id: str, project_id: str) -> tuple[str, str, str]:
    return ("disruptive-project-stream", conn_id, project_id)


class ProjectStreamProducer(SharedStreamProducer):
    """Follows one project for every subscriber, and writes watermarks once Airflow has stored events."""

    def __init__(self, conn_id: str, project_id: str, private: bool = False, in_order: bool = True) -> None:
        """`private`: a stream for one trigger alone (run on its own), which waits for nobody. `in_order`:
        events in time order (after each connect, the stream waits up to DT's indexing delay for
        history that could come before it); a trigger that collects a window takes them as they come."""
        self.in_order = in_order
        self.conn_id = conn_id
        self.project_id = project_id
        self.key = stream_key(conn_id, project_id)
        self.cohort: Cohort[Position] = Cohort() if private else cohort(self.key)
        self.cohort_wait = 0.0 if private else COHORT_WAIT

    async def open_stream(self) -> AsyncIterator[tuple[SharedDelivery, int]]:
        pause = FATAL_PAUSE - (time.monotonic() - _LAST_FATAL.get(self.key, -FATAL_PAUSE))
        await asyncio.sleep(max(self.cohort_wait, pause))
        seq = 0
        try:
            async for events, complete_until, devices in self._follow():
                seq += 1
                yield SharedDelivery(seq, events, complete_until, devices=devices), seq
        except FatalError as error:
            # Said to every subscriber once (a sensor fails with it), then the stream ends; it is opened
            # again no sooner than FATAL_PAUSE.
            _LAST_FATAL[self.key] = time.monotonic()
            seq += 1
            yield SharedDelivery(seq, (), None, failure=str(error)), seq
            raise
        finally:
            self.cohort.started = False

    async def _follow(
        self,
    ) -> AsyncIterator[tuple[tuple[Event, ...], str | None, Mapping[str, Device]]]:
        """The project's deliveries, from the earliest start among the subscribers (empty ones at most
        every TICK_INTERVAL)."""
        hook = DisruptiveHook(self.conn_id)
        client = await hook.ashared_client()
        project_id = await hook.aproject_id(self.project_id)
        cohort = self.cohort
        # The earliest position that history must be read from; none (the stream from now) when every
        # subscriber only wants what comes from now on.
        starts = [s.position.until for s in cohort.subscribers.values() if not s.from_now]
        start = min((until for until in starts if until is not None), default=None)
        cohort.started = True
        logger.info(
            "DT stream of project %s (connection %s) opens for %d trigger(s), from %s",
            project_id,
            self.conn_id,
            len(cohort.subscribers),
            start or "now",
        )
        devices = Devices(client, project_id)
        await devices.refresh()
        subscription = client.follow(project_id, None, start, in_order=self.in_order)
        last_tick = 0.0
        try:
            async for delivery in subscription.deliveries():
                now = time.monotonic()
                if not delivery.events and now - last_tick < TICK_INTERVAL:
                    continue
                last_tick = now
                await devices.follow(delivery.events)
                yield tuple(delivery.events), delivery.complete_until, devices.current
        finally:
            await subscription.aclose()

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Every subscriber has moved past these deliveries; where all of them did so cleanly, what each
        fired up to then is stored, and its position may be written."""
        latest: dict[int, tuple[Position, int]] = {}
        for item in batch:
            marks = self.cohort.marks.pop(item.broker_payload, {})
            if item.outcome.failed == 0:
                latest.update(marks)
        for subscriber_id, (position, fired) in latest.items():
            subscriber = self.cohort.subscribers.get(subscriber_id)
            if subscriber is not None:
                await write_position(subscriber, position, fired)

    async def aclose(self) -> None:
        self.cohort.marks.clear()


class Devices:
    """The project's devices for the subscribers' filters: listed at the start, listed again (at most
    every RELIST_INTERVAL) when an event names an unknown one, labels kept current from events."""

    RELIST_INTERVAL = 5.0

    def __init__(self, client: AsyncDisruptiveClient, project_id: str) -> None:
        self.client = client
        self.project_id = project_id
        # Replaced, never changed in place: a delivery keeps the devices as they stood.
        self.current: Mapping[str, Device] = {}
        self.listed_at = 0.0

    async def refresh(self) -> None:
        listed = await self.client.devices(self.project_id)
        self.current = {device.device_id: device for device in listed}
        self.listed_at = time.monotonic()

    async def follow(self, events: Sequence[Event]) -> None:
        unknown = any(event.device_id not in self.current for event in events)
        if unknown and time.monotonic() - self.listed_at >= self.RELIST_INTERVAL:
            await self.refresh()
        changes = [event for event in events if event.event_type == LABELS_CHANGED]
        if changes:
            current = dict(self.current)
            for event in changes:
                if event.device_id in current:
                    current[event.device_id] = current[event.device_id].with_label_change(event.data)
            self.current = current


async def write_position(
    subscriber: Subscriber[P], position: P, fired: int, quiet_interval: float = QUIET_WRITE_INTERVAL
) -> None:
    """Write a subscriber's position: at once if it has fired since the last write, else now and then."""
    if subscriber.store is None or position == subscriber.written:
        return
    quiet = subscriber.written is not None and fired == subscriber.written_fired
    if quiet and time.monotonic() - subscriber.written_at < quiet_interval:
        return
    try:
        await subscriber.store.aset(subscriber.key, position.to_json())
    except Exception:  # the older position stays: its events may fire again, but are never lost
        logger.exception("could not store a watcher's position")
        return
    subscriber.written, subscriber.written_fired, subscriber.written_at = position, fired, time.monotonic()
