"""The tap on its own: records and state, bounds, resume, stops, and clear errors for bad config."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.event_types import EVENT_TYPES
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.tap.columns import snake_data
from tap_disruptive.testing import tap_config, wait_until
from tests.support.emulators import QUIET, StartEmulator
from tests.support.tap_runs import TAP, bookmark, last_state, records, run_tap, write_json

pytestmark = pytest.mark.e2e

EVENT_COLUMNS = {
    "event_id",
    "event_type",
    "timestamp",
    "project_id",
    "device_id",
    "target_name",
    "device_type",
    "labels",
    "data",
}


def ledger_upto(emulator: EmulatorProcess, until: str, **filters: Any) -> dict[str, dict[str, Any]]:
    events, _ = emulator.ledger(**filters)
    return {event["eventId"]: event for event in events if event["timestamp"] <= until}


def test_history_then_live_within_max_duration(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("--rate", "40", "--history-span", "600", "--history-interval", "60")
    result = run_tap(tap_config(emulator, start_date="2000-01-01T00:00:00Z", max_duration=3), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    devices = records(result.stdout, "devices")
    assert len(devices) == 24 and {d["device_type"] for d in devices} >= {"temperature", "ccon"}
    events = records(result.stdout)
    assert set(events[0]) == EVENT_COLUMNS
    ids = [event["event_id"] for event in events]
    assert len(ids) == len(set(ids))
    # Everything up to the bookmark was written: the ten minutes of history (but the bookmark's
    # allowance for late arrivals) and the live events.
    until = bookmark(last_state(result.stdout), emulator.project_id)
    expected = ledger_upto(emulator, until)
    assert len(expected) >= 200
    assert set(expected) <= set(ids)
    sample = next(e for e in events if e["event_type"] == "temperature")
    assert sample["device_type"] == "temperature" and sample["labels"]["name"].startswith("temperature")
    assert set(sample["data"]["temperature"]) == {"value", "update_time", "samples", "is_backfilled"}
    # Each record's data is DT's payload, its keys in snake_case.
    for event in events:
        if event["event_id"] in expected:
            dt_event = expected[event["event_id"]]
            assert event["data"] == snake_data(dt_event["eventType"], dt_event["data"])


def test_filters_bounds_and_resume(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator(*QUIET)
    door = emulator.create_device("contact", {"site": "oslo", "door": "front"})
    other = emulator.create_device("contact", {"site": "bergen"})
    for state in ("OPEN", "CLOSED", "OPEN"):
        emulator.publish(door, "contact", {"state": state})
        emulator.publish(other, "contact", {"state": state})
        emulator.publish(door, "touch")
    time.sleep(0.5)  # indexed into history
    config = tap_config(
        emulator,
        start_date="2000-01-01T00:00:00Z",
        label_filters={"site": "oslo", "door": None},
        event_types=["contact"],
        max_events=2,
    )
    first = run_tap(config, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    written = records(first.stdout)
    assert [r["data"]["contact"]["state"] for r in written] == ["OPEN", "CLOSED"]
    assert {r["device_id"] for r in written} == {door}
    # The second run resumes from the state: the third door event comes, nothing of the other device.
    config.update(max_events=None, idle_timeout=2)
    second = run_tap(config, tmp_path, state=last_state(first.stdout))
    assert second.returncode == 0, second.stderr[-2000:]
    again = records(second.stdout)
    assert {r["device_id"] for r in again} == {door}
    states = [r["data"]["contact"]["state"] for r in again]
    assert states[-1] == "OPEN" and len(again) >= 1
    every = {r["event_id"] for r in written} | {r["event_id"] for r in again}
    assert every == set(ledger_upto(emulator, "9999", device_ids=door, event_types="contact"))


def test_live_false_reads_history_and_ends(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator("--rate", "0", "--history-span", "600", "--history-interval", "60")
    result = run_tap(tap_config(emulator, live=False, start_date="2000-01-01T00:00:00Z"), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    ledger, _ = emulator.ledger()
    assert sorted(r["event_id"] for r in records(result.stdout)) == sorted(e["eventId"] for e in ledger)
    assert emulator.status()["connections_served"] == 0  # no stream was opened


def test_events_of_every_type_published_just_before_a_bounded_run_are_all_written(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    # History shows an event 8 s after it happens: the run's first read of history misses them all, and
    # its re-read after the indexing delay, due well within its idle timeout, must find them.
    emulator = start_emulator("--rate", "0", "--history-span", "0", "--indexing-delay", "8")
    config = tap_config(emulator, idle_timeout=2)
    first = run_tap(config, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    published = set()
    for device_type in DEVICE_TYPES.values():
        device_id = emulator.create_device(device_type.name)
        for event_type in (*device_type.event_types, *device_type.variant_event_types):
            if event_type not in published:
                emulator.publish(device_id, event_type)
                published.add(event_type)
    emulator.set_labels(device_id, {"room": "lab"})  # a labelsChanged event
    published.add("labelsChanged")
    assert published == set(EVENT_TYPES)
    time.sleep(2)
    second = run_tap({**config, "idle_timeout": 20}, tmp_path, state=last_state(first.stdout))
    assert second.returncode == 0, second.stderr[-2000:]
    assert {record["event_type"] for record in records(second.stdout)} == published


def test_sigterm_writes_state_and_a_resumed_run_loses_nothing(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("--rate", "100", "--history-span", "0", "--indexing-delay", "1")
    # Live, no bound: runs until stopped. From a minute back, so that its bookmark moves within the run.
    config = tap_config(emulator, start_date=format_timestamp(time.time() - 60))
    # Output to files, not pipes: a pipe nobody reads until the end would stop the tap once it is full.
    out, err = tmp_path / "stdout.jsonl", tmp_path / "stderr.log"
    with out.open("w") as stdout_file, err.open("w") as stderr_file:
        process = subprocess.Popen(
            [str(TAP), "--config", str(write_json(tmp_path / "config.json", config))],
            stdout=stdout_file,
            stderr=stderr_file,
            text=True,
        )
    assert wait_until(lambda: emulator.status()["open_streams"] == 1, timeout=30), err.read_text()[-2000:]
    time.sleep(18)  # past the re-read of what came before the stream, and the state interval
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, err.read_text()[-2000:]
    stdout = out.read_text()
    state = last_state(stdout)
    written = {r["event_id"] for r in records(stdout)}
    until = bookmark(state, emulator.project_id)
    assert written and set(ledger_upto(emulator, until)) <= written
    # The next run starts from the bookmark and fills in everything since, including what the
    # stopped run never saw.
    time.sleep(2)
    config["idle_timeout"] = 1.5
    config["max_duration"] = 6
    resumed = run_tap(config, tmp_path, state=state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    both = written | {r["event_id"] for r in records(resumed.stdout)}
    end = bookmark(last_state(resumed.stdout), emulator.project_id)
    assert set(ledger_upto(emulator, end)) <= both


def test_about_documents_every_setting() -> None:
    about = json.loads(
        subprocess.run(
            [str(TAP), "--about", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    properties = about["settings"]["properties"]
    for name in (
        "project_ids",
        "key_id",
        "key_secret",
        "email",
        "api_url",
        "token_url",
        "device_ids",
        "label_filters",
        "device_types",
        "event_types",
        "start_date",
        "live",
        "max_events",
        "max_duration",
        "idle_timeout",
    ):
        assert properties[name].get("description"), name
    assert properties["key_secret"]["secret"] is True
    assert "temperature" in json.dumps(properties["event_types"])
    assert "batch" not in about["capabilities"]
