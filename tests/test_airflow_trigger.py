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
from airflow_provider.triggers.disruptive import DisruptiveEventTrigger
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.testing import airflow_connection

pytestmark = pytest.mark.e2e


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
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", airflow_connection(quiet_emulator))
    return quiet_emulator


async def first_event(trigger: DisruptiveEventTrigger, seconds: float) -> Any:
    return await asyncio.wait_for(trigger.run().__anext__(), seconds)


async def one_life(trigger: DisruptiveEventTrigger, seconds: float) -> Any:
    """Run a watcher's trigger as the triggerer does, to its end; the one event it fires."""

    async def drain() -> list[Any]:
        return [event async for event in trigger.run()]

    (fired,) = await asyncio.wait_for(drain(), seconds)
    return fired


async def wait_for_stream(emulator: EmulatorProcess, streams: int = 1) -> None:
    for _ in range(400):
        if emulator.status()["open_streams"] >= streams:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the trigger never opened the stream")


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
    wrong = json.loads(airflow_connection(dt_connection))
    wrong["password"] = "a-wrong-secret-of-proper-length-0000000"
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", json.dumps(wrong))
    ok, message = DisruptiveHook().test_connection()
    assert not ok and "refused" in message and wrong["password"] not in message
    unknown = json.loads(airflow_connection(dt_connection))
    unknown["extra"]["project_id"] = "c0nosuchproject00000"
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", json.dumps(unknown))
    ok, message = DisruptiveHook().test_connection()
    assert not ok and "not found" in message
    del unknown["extra"]["project_id"]
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", json.dumps(unknown))
    ok, message = DisruptiveHook().test_connection()
    assert ok and "1 project(s) visible" in message
