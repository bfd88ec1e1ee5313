"""One DT stream per (connection, project) in a triggerer, shared by every trigger that reads it, with
watermarks that move only once Airflow has stored what was fired (see `shared`).

The producer follows the project (history from the earliest watermark of the triggers that subscribe at
its start, then the live stream, in time order) and hands each delivery, with the project's devices, to
every subscriber; each subscriber filters it with the protocol's filter and its condition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass

from airflow_provider.hooks.disruptive import DisruptiveHook
from airflow_provider.triggers.shared import AcknowledgedProducer
from tap_disruptive.client.drivers.aio import AsyncDisruptiveClient
from tap_disruptive.client.protocol.bookmarks import Position
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.devices import Device
from tap_disruptive.model.event_types import LABELS_CHANGED

logger = logging.getLogger(__name__)


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


def stream_key(conn_id: str, project_id: str) -> tuple[str, str, str]:
    return ("disruptive-project-stream", conn_id, project_id)


class ProjectStreamProducer(AcknowledgedProducer[Position, SharedDelivery]):
    """Follows one project for every subscriber, and writes watermarks once Airflow has stored events."""

    def __init__(self, conn_id: str, project_id: str, private: bool = False, in_order: bool = True) -> None:
        """`private`: a stream for one trigger alone (run on its own), which waits for nobody. `in_order`:
        events in time order (after each connect, the stream waits up to DT's indexing delay for
        history that could come before it); a trigger that collects a window takes them as they come."""
        super().__init__(stream_key(conn_id, project_id), private)
        self.in_order = in_order
        self.conn_id = conn_id
        self.project_id = project_id

    def failure(self, message: str) -> SharedDelivery:
        return SharedDelivery(0, (), None, failure=message)

    async def follow(self) -> AsyncGenerator[SharedDelivery, None]:
        """The project's deliveries, from the earliest start among the subscribers."""
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
        try:
            async for delivery in subscription.deliveries():
                await devices.follow(delivery.events)
                yield SharedDelivery(
                    0, tuple(delivery.events), delivery.complete_until, devices=devices.current
                )
        finally:
            await subscription.aclose()


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
