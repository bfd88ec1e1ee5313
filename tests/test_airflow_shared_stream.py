"""Triggers on Airflow's shared streams (ack mode), in-process with Airflow's own SharedStreamManager,
against the emulator: one DT stream per project for every trigger; a watcher's position written only
once what it fired is stored; every touch fired once, in time order, across stops and crashes."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from airflow_provider.conditions import field
from airflow_provider.triggers.disruptive import POSITION_KEY, DisruptiveEventTrigger
from tap_disruptive.client.protocol.bookmarks import Position
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.testing import airflow_connection
from tests.support.triggerer import MemoryStateStore, Triggerer, fired_ids, until

pytestmark = pytest.mark.e2e


@pytest.fixture
def dt_connection(monkeypatch: pytest.MonkeyPatch, quiet_emulator: EmulatorProcess) -> EmulatorProcess:
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", airflow_connection(quiet_emulator))
    return quiet_emulator


def watcher(store: MemoryStateStore, **filters: Any) -> DisruptiveEventTrigger:
    trigger = DisruptiveEventTrigger(**filters)
    trigger.asset_state_store = store  # type: ignore[assignment]
    return trigger


def test_many_triggers_on_one_project_share_one_stream(dt_connection: EmulatorProcess) -> None:
    emulator = dt_connection
    coffee = emulator.create_device("touch", {"button": "coffee"})
    tea = emulator.create_device("touch", {"button": "tea"})
    stores = [MemoryStateStore() for _ in range(5)]

    async def scenario() -> Triggerer:
        triggerer = Triggerer()
        for index, store in enumerate(stores[:4]):
            button = "coffee" if index % 2 == 0 else "tea"
            triggerer.start(index, watcher(store, event_types=["touch"], label_filters={"button": button}))
        # A sensor's trigger (no state store) joins the same stream.
        triggerer.start(9, DisruptiveEventTrigger(event_types=["touch"], device_ids=[tea]))
        await until(lambda: emulator.status()["open_streams"] >= 1, 30, "the stream")
        for device in (coffee, tea, coffee):
            emulator.publish(device, "touch")
        await until(lambda: len(triggerer.pending) >= 7, 30, "seven firings")
        triggerer.store()
        # Positions are written once what was fired is stored (the next delivery's advance).
        await until(lambda: all(POSITION_KEY in store.values for store in stores[:4]), 30, "positions")
        await triggerer.stop()
        return triggerer

    triggerer = asyncio.run(scenario())
    status = emulator.status()
    assert status["connections_served"] == 1 and status["requests"]["stream"] == 1, status
    coffee_touches = [touch["eventId"] for touch in emulator.ledger(device_ids=coffee)[0]]
    tea_touches = [touch["eventId"] for touch in emulator.ledger(device_ids=tea)[0]]
    assert fired_ids(triggerer.stored, 0) == fired_ids(triggerer.stored, 2) == coffee_touches
    assert fired_ids(triggerer.stored, 1) == fired_ids(triggerer.stored, 3) == tea_touches
    assert fired_ids(triggerer.stored, 9) == tea_touches[:1]  # the sensor: its first match, then it ends


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_touch_fires_once_in_time_order_across_stops_and_crashes(
    dt_connection: EmulatorProcess, seed: int
) -> None:
    emulator = dt_connection
    button = emulator.create_device("touch", {"button": "coffee"})
    other = emulator.create_device("touch", {"button": "tea"})
    store = MemoryStateStore()
    chance = random.Random(seed)
    # Events stored but not yet acknowledged when a triggerer stopped: these alone may fire twice.
    in_flight: set[str] = set()

    def acknowledged() -> Position:
        stored = store.values.get(POSITION_KEY)
        return Position.from_json(stored) if stored else Position()

    async def publish(count: int) -> None:
        for _ in range(count):
            emulator.publish(button, "touch")
            emulator.publish(other, "touch")
            await asyncio.sleep(chance.choice([0.0, 0.1, 0.4]))

    async def scenario() -> list[str]:
        triggerer = Triggerer()
        stored: list[str] = []
        for life in range(6):
            triggerer.start(life, watcher(store, event_types=["touch"], label_filters={"button": "coffee"}))
            await until(lambda: emulator.status()["open_streams"] >= 1, 30, "the stream")
            await publish(chance.randint(1, 4))
            await asyncio.sleep(chance.uniform(0.5, 3.0))
            stored += fired_ids(triggerer.store())
            await asyncio.sleep(chance.uniform(0.0, 2.0))
            if chance.random() < 0.6:
                # Touches fired on but not stored when the triggerer goes: they must fire again.
                await publish(chance.randint(1, 2))
                await asyncio.sleep(chance.uniform(0.3, 1.5))
            # Stored (or, on a graceful stop, about to be) but not acknowledged yet: Airflow cannot tell
            # the watcher, so these fire again after the restart.
            position = acknowledged()
            crash = chance.random() < 0.5
            storing = stored if crash else stored + fired_ids(triggerer.pending)
            in_flight.update(
                event_id for event_id in storing if not position.seen(_touch(emulator, event_id))
            )
            if crash:
                await triggerer.crash([store])
            else:
                await triggerer.stop()
                stored += fired_ids(triggerer.store())
            if chance.random() < 0.5:
                await publish(chance.randint(1, 3))  # while no triggerer runs
        # A last life to fire whatever is left.
        triggerer.start(99, watcher(store, event_types=["touch"], label_filters={"button": "coffee"}))
        touches = len(emulator.ledger(device_ids=button)[0])
        await until(lambda: len(set(stored + fired_ids(triggerer.pending))) >= touches, 60, "every touch")
        await asyncio.sleep(1.0)
        stored += fired_ids(triggerer.store())
        await triggerer.stop()
        return stored

    stored = asyncio.run(scenario())
    touches = [touch["eventId"] for touch in emulator.ledger(device_ids=button)[0]]
    assert set(stored) == set(touches), "a touch never fired"
    twice = {event_id for event_id in stored if stored.count(event_id) > 1}
    assert twice <= in_flight, f"fired twice though acknowledged: {twice - in_flight}"
    first_times = list(dict.fromkeys(stored))
    assert first_times == touches, "not in time order"


def _touch(emulator: EmulatorProcess, event_id: str) -> Event:
    (found,) = [event for event in emulator.ledger()[0] if event["eventId"] == event_id]
    return Event.from_mapping(found)


def test_a_deferred_sensor_returns_the_first_match_after_a_triggerer_restart(
    dt_connection: EmulatorProcess,
) -> None:
    emulator = dt_connection
    freezer = emulator.create_device("temperature", {"room": "freezer"})
    started = format_timestamp(time.time())

    def sensor() -> DisruptiveEventTrigger:
        # As DisruptiveEventSensor defers: from the task's start, the first match by time.
        return DisruptiveEventTrigger(
            event_types=["temperature"],
            device_ids=[freezer],
            condition=field("data.temperature.value", ">", -15),
            start_time=started,
        )

    async def scenario() -> list[Any]:
        first = Triggerer()
        first.start(1, sensor())
        await until(lambda: emulator.status()["open_streams"] >= 1, 30, "the stream")
        await first.stop()  # the triggerer goes before anything matches
        for value in (-20.0, -12.0, -11.0):
            emulator.publish(freezer, "temperature", {"value": value})
        second = Triggerer()
        second.start(1, sensor())
        await until(lambda: bool(second.pending), 60, "the sensor's event")
        await second.stop()
        return [fired.payload for fired in second.pending]

    (payload,) = asyncio.run(scenario())
    assert payload["status"] == "success"
    assert payload["event"]["data"]["temperature"]["value"] == -12.0
