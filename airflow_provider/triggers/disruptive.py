"""DisruptiveEventTrigger: waits, without blocking the triggerer, for DT events that match the filters
and the condition. In a triggerer it reads its project's shared stream (`project_stream`); reconnects
and gap fills come from the client core, so a match published while the stream reconnects still fires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Iterator, Mapping
from functools import partial
from typing import Any

from airflow.triggers.base import TriggerEvent
from airflow.triggers.shared_stream import SharedStreamProducer

from airflow_provider.conditions import check, evaluate
from airflow_provider.hooks.disruptive import DisruptiveHook
from airflow_provider.triggers.project_stream import ProjectStreamProducer, SharedDelivery, stream_key
from airflow_provider.triggers.shared import Reading, SharedStreamTrigger, Subscriber
from tap_disruptive.client.protocol.bookmarks import Position
from tap_disruptive.client.protocol.errors import DisruptiveError
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.model.devices import Device
from tap_disruptive.model.times import canonical_timestamp, format_timestamp, just_before

# Where an asset watcher keeps its position: every event up to a time dealt with, and those after it
# that it fired on, so that a re-created watcher fires on everything else exactly once, in time order.
POSITION_KEY = "disruptive_position"


def event_document(event: Event) -> dict[str, Any]:
    """The event as DT sends it, plus its device and project ids: what conditions see and XCom holds."""
    return {**event.as_dict(), "device_id": event.device_id, "project_id": event.project_id}


class DisruptiveEventTrigger(SharedStreamTrigger[Position, SharedDelivery]):
    """Fires on DT events of `project_id` passing DT's four filters and `condition`.

    With the defaults it fires on the first match by time, with `{"status": "success", "event": {...}}`,
    and ends (a sensor's wait); in an asset watcher (Airflow gives it a state store) it fires on every
    match, in time order, for good, resuming from its stored position. With `max_events` above 1 or a
    `window_seconds`, it collects matches until either bound and fires once with
    `{"status": "success", "events": [...]}` (a watcher: window after window). Fatal errors (refused
    credentials, an unknown project) fire `{"status": "error", "message": ...}`. `start_time` reads
    history from then on first.
    """

    def __init__(
        self,
        *,
        project_id: str | None = None,
        device_ids: list[str] | None = None,
        label_filters: dict[str, str | None] | None = None,
        device_types: list[str] | None = None,
        event_types: list[str] | None = None,
        condition: dict[str, Any] | None = None,
        disruptive_conn_id: str = DisruptiveHook.default_conn_name,
        start_time: str | None = None,
        max_events: int = 1,
        window_seconds: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        # Normalised so that serialisation, and so the trigger's identity, is deterministic.
        self.event_filter = EventFilter.of(device_ids, label_filters, device_types, event_types)
        self.project_id = project_id
        self.condition = check(condition) if condition is not None else None
        self.disruptive_conn_id = disruptive_conn_id
        self.start_time = start_time
        self.max_events = max_events
        self.window_seconds = window_seconds
        if max_events < 1:
            raise ValueError("max_events must be at least 1")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        filters = self.event_filter.to_json()
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "project_id": self.project_id,
                "device_ids": filters["device_ids"],
                "label_filters": filters["label_filters"],
                "device_types": filters["device_types"],
                "event_types": filters["event_types"],
                "condition": self.condition,
                "disruptive_conn_id": self.disruptive_conn_id,
                "start_time": self.start_time,
                "max_events": self.max_events,
                "window_seconds": self.window_seconds,
            },
        )

    @property
    def collects(self) -> bool:
        return self.max_events > 1 or self.window_seconds is not None

    # --- the shared stream (Airflow 3.3): one per connection and project in a triggerer -------------

    def shared_stream_key(self) -> Hashable:
        # "" stands for the connection's default project, resolved where the stream opens.
        return stream_key(self.disruptive_conn_id, self.project_id or "")

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        return ProjectStreamProducer(kwargs["disruptive_conn_id"], kwargs.get("project_id") or "")

    def _private_producer(self) -> ProjectStreamProducer:
        return ProjectStreamProducer(
            self.disruptive_conn_id, self.project_id or "", private=True, in_order=not self.collects
        )

    # --- matching ----------------------------------------------------------------------------------------

    async def _join(self) -> Reading[Position, SharedDelivery]:
        position, from_now = await self._starting_position()
        subscriber = Subscriber(position, self.asset_state_store, POSITION_KEY, from_now=from_now)
        window = _Window(self.window_seconds)
        return Reading(
            subscriber,
            take=partial(self._take, subscriber, window=window),
            catch_up=self._history_until_now,
            due=lambda: window.fire() if window.due() else None,
        )

    def _take(
        self, subscriber: Subscriber[Position], delivery: SharedDelivery, window: _Window
    ) -> Iterator[TriggerEvent]:
        """Fire on the matches of one delivery that the subscriber has not dealt with; its position moves
        past the delivery (or, when not watching, up to the first match)."""
        events, complete_until, devices = delivery.events, delivery.complete_until, delivery.devices
        position = subscriber.position
        taken, acted = len(events), []
        for index, event in enumerate(events):
            if position.seen(event):
                continue
            if devices is not None and not self._selects(event, devices):
                continue
            document = event_document(event)
            if not evaluate(self.condition, document):
                continue
            acted.append(event)
            if self.collects:
                window.add(document)
                if len(window.matches) >= self.max_events:
                    subscriber.position = position.advanced(events, complete_until, index + 1, acted)
                    yield window.fire()
                    position, acted = subscriber.position, []
            else:
                subscriber.position = position.advanced(events, complete_until, index + 1, acted)
                yield TriggerEvent({"status": "success", "event": document})  # type: ignore[no-untyped-call]
                position, acted = subscriber.position, []
        subscriber.position = position.advanced(events, complete_until, taken, acted)

    def _selects(self, event: Event, devices: Mapping[str, Device]) -> bool:
        """DT's filters, applied here: the stream is the whole project's. A device not listed (yet) passes
        only a filter that needs nothing of it."""
        device = devices.get(event.device_id)
        if device is None and (self.event_filter.label_filters or self.event_filter.device_types is not None):
            return False
        return self.event_filter.matches(event, device)

    async def _starting_position(self) -> tuple[Position, bool]:
        """A watcher's stored position; for anything else (or a watcher's first life), `start_time`, else
        now: events from before never count. True with it when only what comes from now on is wanted (no
        start time, nothing stored, not a watcher): then no history is read for it."""
        if self.asset_state_store is not None:
            stored = await self.asset_state_store.aget(POSITION_KEY)
            if stored is not None:
                try:
                    return Position.from_json(stored), False
                except ValueError as error:
                    raise DisruptiveError(f"the watcher's stored position is unreadable: {error}") from None
        start = self.start_time or format_timestamp(time.time())
        from_now = self.start_time is None and self.asset_state_store is None
        return Position(just_before(canonical_timestamp(start))), from_now

    async def _history_until_now(self, position: Position) -> list[SharedDelivery]:
        """The subscriber's matches from its position up to now, from history, once DT has indexed them."""
        hook = DisruptiveHook(self.disruptive_conn_id)
        client = await hook.ashared_client()
        project_id = await hook.aproject_id(self.project_id)
        now = time.time()
        until = format_timestamp(now)
        if position.until is None or position.until >= until:
            return []
        await asyncio.sleep(max(0.0, client.settings.indexing_delay - (time.time() - now)))
        deliveries: list[SharedDelivery] = []
        subscription = client.follow(
            project_id, self.event_filter, position.until, live=False, end_time=until
        )
        try:
            async for delivery in subscription.deliveries():
                deliveries.append(SharedDelivery(0, tuple(delivery.events), delivery.complete_until))
        finally:
            await subscription.aclose()
        return deliveries


class _Window:
    """Matches collected for one firing: until `max_events` of them, or `seconds` after the first."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.matches: list[dict[str, Any]] = []
        self.opened = time.monotonic()

    def add(self, document: dict[str, Any]) -> None:
        self.matches.append(document)

    def due(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.opened >= self.seconds

    def fire(self) -> TriggerEvent:
        matches, self.matches, self.opened = self.matches, [], time.monotonic()
        return TriggerEvent({"status": "success", "events": matches})  # type: ignore[no-untyped-call]
