"""Airflow's triggerer in miniature, in-process: triggers read shared streams through Airflow's own
`SharedStreamManager` (ack mode included), and what they fire is "stored" (persisted, then confirmed to
the manager) when the test says so. A crash abandons everything not stored; the asset state store
survives it, as the metadata database does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import BaseEventTrigger
from airflow.triggers.shared_stream import SharedStreamManager


class MemoryStateStore:
    """Stands in for an asset's state store (what the triggerer injects into event triggers). Writes
    after `freeze()` are lost, as a crashed triggerer's would be."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.frozen = False

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        if not self.frozen:
            self.values[key] = value


@dataclass
class Fired:
    trigger_id: int
    payload: dict[str, Any]
    seq: int | None


@dataclass
class Triggerer:
    """Runs triggers as Airflow's triggerer does (shared streams when they have a key, else `run()`)."""

    manager: SharedStreamManager = field(default_factory=lambda: SharedStreamManager(ack_timeout=60.0))
    # Fired by the triggers, not yet stored.
    pending: list[Fired] = field(default_factory=list)
    # Stored: as asset events, in the order they were stored.
    stored: list[Fired] = field(default_factory=list)
    tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)

    def start(self, trigger_id: int, trigger: BaseEventTrigger) -> None:
        self.tasks[trigger_id] = asyncio.ensure_future(self._run(trigger_id, trigger))

    async def _run(self, trigger_id: int, trigger: BaseEventTrigger) -> None:
        key = trigger.shared_stream_key()
        if key is None:
            async for event in trigger.run():
                self.pending.append(Fired(trigger_id, event.payload, None))
            return
        stream = self.manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        try:
            async for event in trigger.filter_shared_stream(stream):
                seq = self.manager.bind_pending_event(trigger_id=trigger_id, key=key)
                self.pending.append(Fired(trigger_id, event.payload, seq))
        finally:
            await self.manager.unsubscribe(trigger_id, key)

    def store(self) -> list[Fired]:
        """Store what was fired (as the triggerer's supervisor does about once a second)."""
        stored, self.pending = self.pending, []
        self.stored += stored
        self.manager.confirm_persisted([fired.seq for fired in stored if fired.seq is not None])
        return stored

    async def stop(self) -> None:
        """A graceful stop (SIGTERM): triggers cancelled, streams stopped."""
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.manager.stop_all()
        self.tasks.clear()

    async def crash(self, stores: list[MemoryStateStore]) -> None:
        """A SIGKILL: nothing more reaches the database; what was fired and not stored is gone."""
        for store in stores:
            store.frozen = True
        self.pending.clear()
        await self.stop()
        for store in stores:
            store.frozen = False


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def fired_ids(fired: list[Any], trigger_id: int | None = None) -> list[str]:
    """The eventIds of the fired events (of one trigger, if given), in the order fired."""
    return [f.payload["event"]["eventId"] for f in fired if trigger_id is None or f.trigger_id == trigger_id]
