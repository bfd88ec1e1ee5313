"""The example DAGs, run end to end with `dag.test()` against the emulator (Airflow on a throwaway
SQLite home): each DAG runs in a subprocess, as Airflow's settings are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import airflow_connection, wait_until
from tests.support.dag_parsing import migrated_airflow_home, parse_dags
from tests.support.emulators import QUIET, StartEmulator
from tests.support.services import ROOT

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "airflow_provider" / "example_dags"
RUNNER = Path(__file__).parent / "support" / "airflow_run.py"


@pytest.fixture(scope="module")
def airflow_home() -> dict[str, str]:
    return migrated_airflow_home(EXAMPLES)


def run_dag(
    environment: dict[str, str],
    emulator: EmulatorProcess,
    dag_file: str,
    dag_id: str,
    while_running: Callable[[], None],
    **extra_env: str,
) -> dict[str, Any]:
    env = {**environment, "AIRFLOW_CONN_DISRUPTIVE_DEFAULT": airflow_connection(emulator), **extra_env}
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), str(EXAMPLES / dag_file), dag_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    helper = threading.Thread(target=while_running, daemon=True)
    helper.start()
    stdout, stderr = process.communicate(timeout=240)
    helper.join(30)
    lines = [line for line in stdout.splitlines() if line.startswith("OUTCOME ")]
    assert lines, f"no outcome; stderr: {stderr[-3000:]}"
    outcome: dict[str, Any] = json.loads(lines[-1][len("OUTCOME ") :])
    outcome["log"] = stdout + stderr
    return outcome


def when_streaming(emulator: EmulatorProcess, action: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        assert wait_until(lambda: emulator.status()["open_streams"] >= 1, timeout=120)
        time.sleep(0.5)
        action()

    return run


def test_freezer_sensor_fires_on_a_matching_event_only(
    airflow_home: dict[str, str], start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(*QUIET)
    freezer = emulator.create_device("temperature", {"kind": "freezer"})
    fridge = emulator.create_device("temperature", {"kind": "fridge"})

    def publish() -> None:
        emulator.publish(fridge, "temperature", {"value": 10.0})  # not a freezer
        emulator.publish(freezer, "temperature", {"value": -20.0})  # a freezer, cold enough
        emulator.publish(freezer, "temperature", {"value": -7.5})  # the match

    outcome = run_dag(
        airflow_home,
        emulator,
        "freezer_alert.py",
        "disruptive_freezer_alert",
        when_streaming(emulator, publish),
    )
    assert outcome["state"].endswith("success"), outcome["log"][-3000:]
    event = outcome["xcom"]["wait_for_a_warm_freezer.return_value"]
    assert event["device_id"] == freezer and event["data"]["temperature"]["value"] == -7.5
    assert outcome["xcom"]["alert.return_value"].startswith(f"freezer {freezer} is at -7.5")


def test_sensor_survives_a_fault_while_waiting(
    airflow_home: dict[str, str], start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(*QUIET)
    freezer = emulator.create_device("temperature", {"kind": "freezer"})

    def cut_then_publish() -> None:
        emulator.inject("stall", seconds=30)  # the stream goes silent; the match comes in the gap
        emulator.publish(freezer, "temperature", {"value": -3.0})

    outcome = run_dag(
        airflow_home,
        emulator,
        "freezer_alert.py",
        "disruptive_freezer_alert",
        when_streaming(emulator, cut_then_publish),
    )
    assert outcome["state"].endswith("success"), outcome["log"][-3000:]
    assert outcome["xcom"]["wait_for_a_warm_freezer.return_value"]["data"]["temperature"]["value"] == -3.0


def test_door_operator_collects_exactly_the_matching_events_of_its_window(
    airflow_home: dict[str, str], start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(*QUIET)
    doors = [emulator.create_device("contact", {"door": name}) for name in ("front", "back")]
    motion = emulator.create_device("motion")

    def publish() -> None:
        for state in ("OPEN", "CLOSED", "OPEN"):
            for door in doors:
                emulator.publish(door, "contact", {"state": state})
        emulator.publish(motion, "motion", {"state": "MOTION_DETECTED"})

    outcome = run_dag(
        airflow_home,
        emulator,
        "door_openings.py",
        "disruptive_door_openings",
        when_streaming(emulator, publish),
        DOOR_WINDOW_SECONDS="8",
    )
    assert outcome["state"].endswith("success"), outcome["log"][-3000:]
    collected = outcome["xcom"]["collect_door_openings.return_value"]
    ledger, _ = emulator.ledger(event_types="contact")
    opened = [event["eventId"] for event in ledger if event["data"]["contact"]["state"] == "OPEN"]
    assert sorted(event["eventId"] for event in collected) == sorted(opened)
    assert outcome["xcom"]["summarise.return_value"] == {doors[0]: 2, doors[1]: 2}
    assert f"door {doors[0]} opened at" in outcome["log"]


def test_every_example_dag_parses(airflow_home: dict[str, str]) -> None:
    parsed = parse_dags(EXAMPLES, airflow_home)
    assert parsed["errors"] == {}
    assert parsed["dags"] == [
        "disruptive_door_openings",
        "disruptive_freezer_alert",
        "disruptive_spool_touches",
        "disruptive_touch_scheduled",
        "disruptive_water_leaks",
    ]
