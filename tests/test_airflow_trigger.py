"""The trigger and the sensor's poke mode, in-process against the emulator: event-driven scheduling
fires on new events only and resumes after the last one it fired on."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider.conditions import field
from airflow_provider.hooks.disruptive import DisruptiveHook
from airflow_provider.sensors.disruptive import DisruptiveEventSensor
from airflow_provider.triggers.disruptive import LAST_FIRED_KEY, DisruptiveEventTrigger
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp
from tests.test_airflow_dags import connection


class MemoryStateStore:
    """Stands in for Airflow's asset state store (what the triggerer injects into event triggers)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


@pytest.fixture
def dt_connection(monkeypatch: pytest.MonkeyPatch, quiet_emulator: EmulatorProcess) -> EmulatorProcess:
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", connection(quiet_emulator))
    return quiet_emulator


async def first_event(trigger: DisruptiveEventTrigger, seconds: float) -> Any:
    return await asyncio.wait_for(trigger.run().__anext__(), seconds)


async def wait_for_stream(emulator: EmulatorProcess, streams: int = 1) -> None:
    for _ in range(400):
        if emulator.status()["open_streams"] >= streams:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the trigger never opened the stream")


def test_an_asset_watcher_fires_on_new_events_only_and_resumes(dt_connection: EmulatorProcess) -> None:
    emulator = dt_connection
    button = emulator.create_device("touch", {"button": "coffee"})
    store = MemoryStateStore()

    def watcher() -> DisruptiveEventTrigger:
        trigger = DisruptiveEventTrigger(event_types=["touch"], label_filters={"button": "coffee"})
        trigger.asset_state_store = store  # type: ignore[assignment]
        return trigger

    async def scenario() -> tuple[Any, Any, Any]:
        first = asyncio.ensure_future(first_event(watcher(), 60))
        await wait_for_stream(emulator)
        emulator.publish(button, "touch")
        fired_first = await first
        # Re-run, as Airflow re-runs a watcher's trigger: the touch it fired on does not fire again.
        again = asyncio.ensure_future(first_event(watcher(), 60))
        await wait_for_stream(emulator)
        await asyncio.sleep(3)  # history since the last fired event has been read by now
        assert not again.done(), "fired again on an event it had fired on"
        emulator.publish(button, "touch")
        fired_second = await again
        return fired_first, fired_second, store.values[LAST_FIRED_KEY]

    fired_first, fired_second, last = asyncio.run(scenario())
    touches, _ = emulator.ledger(device_ids=button)
    assert [fired_first.payload["event"]["eventId"], fired_second.payload["event"]["eventId"]] == [
        touch["eventId"] for touch in touches
    ]
    assert last["event_id"] == touches[-1]["eventId"]


def test_the_trigger_collects_a_window_and_reports_fatal_errors(dt_connection: EmulatorProcess) -> None:
    emulator = dt_connection
    probe = emulator.create_device("temperature")

    async def window() -> Any:
        trigger = DisruptiveEventTrigger(
            event_types=["temperature"], condition=field("data.temperature.value", ">", 0), max_events=2
        )
        collecting = asyncio.ensure_future(first_event(trigger, 60))
        await wait_for_stream(emulator)
        for value in (5.0, -5.0, 7.0, 9.0):
            emulator.publish(probe, "temperature", {"value": value})
        return await collecting

    collected = asyncio.run(window())
    assert collected.payload["status"] == "success"
    assert [e["data"]["temperature"]["value"] for e in collected.payload["events"]] == [5.0, 7.0]

    bad = DisruptiveEventTrigger(project_id="c0nosuchproject00000", event_types=["touch"])
    failed = asyncio.run(first_event(bad, 60))
    assert failed.payload["status"] == "error"
    assert "project c0nosuchproject00000 not found" in failed.payload["message"]


def test_poke_mode_reads_history_since_the_sensor_started(dt_connection: EmulatorProcess) -> None:
    emulator = dt_connection
    door = emulator.create_device("contact")
    emulator.publish(door, "contact", {"state": "OPEN"})  # before the sensor: never counts
    time.sleep(0.3)
    sensor = DisruptiveEventSensor(
        task_id="door_open",
        deferrable=False,
        event_types=["contact"],
        condition=field("data.contact.state", "==", "OPEN"),
    )
    sensor._started_at = format_timestamp(time.time())
    assert sensor.poke({}).is_done is False
    emulator.publish(door, "contact", {"state": "CLOSED"})
    emulator.publish(door, "contact", {"state": "OPEN"})
    time.sleep(0.5)  # indexed into history
    result = sensor.poke({})
    assert result.is_done is True
    opened, _ = emulator.ledger(device_ids=door, event_types="contact")
    assert isinstance(result.xcom_value, dict)
    assert result.xcom_value["eventId"] == opened[-1]["eventId"]
    assert json.loads(json.dumps(result.xcom_value)) == result.xcom_value


def test_hook_test_connection_really_checks(
    dt_connection: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, message = DisruptiveHook().test_connection()
    assert ok and "connected to project" in message
    wrong = json.loads(connection(dt_connection))
    wrong["password"] = "a-wrong-secret-of-proper-length-0000000"
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", json.dumps(wrong))
    ok, message = DisruptiveHook().test_connection()
    assert not ok and "refused" in message and wrong["password"] not in message
    unknown = json.loads(connection(dt_connection))
    unknown["extra"]["project_id"] = "c0nosuchproject00000"
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", json.dumps(unknown))
    ok, message = DisruptiveHook().test_connection()
    assert not ok and "not found" in message
    del unknown["extra"]["project_id"]
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", json.dumps(unknown))
    ok, message = DisruptiveHook().test_connection()
    assert ok and "1 project(s) visible" in message
