"""DisruptiveEventTrigger: waits, without blocking the triggerer, for DT events that match the filters
and the condition. Reconnects and gap fills come from the client core, so a match published while the
stream reconnects still fires."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider.conditions import check, evaluate
from airflow_provider.hooks.disruptive import DisruptiveHook
from tap_disruptive.client.drivers.aio import AsyncDisruptiveClient
from tap_disruptive.client.protocol.bookmarks import Position
from tap_disruptive.client.protocol.errors import DisruptiveError
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.model.times import format_timestamp

# Where an asset watcher keeps its position: every event up to a time dealt with, and those after it
# that it fired on, so that a re-created watcher fires on everything else exactly once, in time order.
POSITION_KEY = "disruptive_position"


def event_document(event: Event) -> dict[str, Any]:
    """The event as DT sends it, plus its device and project ids: what conditions see and XCom holds."""
    return {**event.as_dict(), "device_id": event.device_id, "project_id": event.project_id}


class DisruptiveEventTrigger(BaseEventTrigger):
    """Fires on DT events of `project_id` passing DT's four filters and `condition`.

    With the defaults it fires once, on the first match, with `{"status": "success", "event": {...}}`.
    With `max_events` above 1 or a `window_seconds`, it collects matches until either bound and fires
    once with `{"status": "success", "events": [...]}`. Fatal errors (refused credentials, an unknown
    project) fire `{"status": "error", "message": ...}`. `start_time` reads history from then on first.
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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = DisruptiveHook(self.disruptive_conn_id)
        try:
            client: AsyncDisruptiveClient = await hook.aget_client()
            project_id = self.project_id or await hook.adefault_project_id()
            if not project_id:
                raise DisruptiveError(
                    f"no project_id given, and connection {self.disruptive_conn_id} has none in its extra"
                )
            position = await self._stored_position()
            try:
                matches, fired_position = await self._collect(client, project_id, position)
            finally:
                await client.close()
        except DisruptiveError as error:
            yield TriggerEvent({"status": "error", "message": str(error)})  # type: ignore[no-untyped-call]
            return
        if self.collects:
            yield TriggerEvent({"status": "success", "events": matches})  # type: ignore[no-untyped-call]
        else:
            yield TriggerEvent({"status": "success", "event": matches[0]})  # type: ignore[no-untyped-call]
        if fired_position is not None:
            # Stored once the event is handed to Airflow, not before: a triggerer that dies in between
            # fires that event again rather than never.
            await self._store(fired_position)

    async def _stored_position(self) -> Position | None:
        """An asset watcher resumes where it stands in the asset state store; anything else starts anew."""
        if self.asset_state_store is None:
            return None
        stored = await self.asset_state_store.aget(POSITION_KEY)
        if stored is None:
            return Position()
        try:
            return Position.from_json(stored)
        except ValueError as error:
            raise DisruptiveError(f"the watcher's stored position is unreadable: {error}") from None

    async def _collect(
        self, client: AsyncDisruptiveClient, project_id: str, position: Position | None
    ) -> tuple[list[dict[str, Any]], Position | None]:
        """Matches in time order, skipping what a watcher's position has seen; the position is stored as
        it moves, and returned as it stands once the matches are fired on."""
        deadline = None if self.window_seconds is None else time.monotonic() + self.window_seconds
        matches: list[dict[str, Any]] = []
        if position is None:
            start = self.start_time
        elif position.until is None:
            # A watcher's first life: what happens from now on (DT's history of the wait so far is read).
            start = self.start_time or format_timestamp(time.time())
        else:
            start = position.until
        saved_at = time.monotonic()
        # Firing on the first match, or once per match, goes in time order; a window takes what comes.
        stream = client.follow(project_id, self.event_filter, start, in_order=not self.collects)
        try:
            async for delivery in stream.deliveries():
                events, taken, acted = delivery.events, len(delivery.events), []
                for index, event in enumerate(events):
                    if position is not None and position.seen(event):
                        continue
                    document = event_document(event)
                    if evaluate(self.condition, document):
                        matches.append(document)
                        acted.append(event)
                        if len(matches) >= self.max_events:
                            taken = index + 1
                            break
                if position is not None:
                    moved = position.advanced(events, delivery.complete_until, taken, acted)
                    # Stored when first known, then now and then, so that a re-created watcher reads
                    # little; never with a match in it before the match is fired.
                    first = position.until is None and moved.until is not None
                    if not matches and (first or time.monotonic() - saved_at > 30) and moved != position:
                        await self._store(moved)
                        saved_at = time.monotonic()
                    position = moved
                full = len(matches) >= self.max_events
                if full or (deadline is not None and time.monotonic() >= deadline):
                    return matches, position
        finally:
            await stream.aclose()
        return matches, position

    async def _store(self, position: Position) -> None:
        assert self.asset_state_store is not None
        await self.asset_state_store.aset(POSITION_KEY, position.to_json())
