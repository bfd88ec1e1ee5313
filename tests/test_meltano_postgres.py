"""End to end with real parts: `meltano run tap-disruptive target-postgres` into a PostgreSQL the test run
started, a resumed second run, faults during a run, and the tap piped into target-postgres by hand."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.tap.columns import snake_data
from tap_disruptive.testing import meltano_environment, tap_config
from tests.support.emulators import StartEmulator
from tests.support.services import TARGET_POSTGRES, Postgres, run_meltano
from tests.support.tap_runs import TAP, write_json

pytestmark = pytest.mark.e2e

EMULATOR = ("--rate", "60", "--history-span", "600", "--history-interval", "60", "--indexing-delay", "1")


def meltano_run(
    emulator: EmulatorProcess, postgres: Postgres, database: str, state_dir: Path, **settings: str
) -> subprocess.CompletedProcess[str]:
    extra = {
        "MELTANO_ENVIRONMENT": "emulator",
        **meltano_environment(emulator),
        **postgres.environment(database),
        **{f"TAP_DISRUPTIVE_{name.upper()}": value for name, value in settings.items()},
    }
    return run_meltano(state_dir, extra, "run", "tap-disruptive", "target-postgres")


def table(postgres: Postgres, database: str, query: str) -> list[tuple[Any, ...]]:
    with postgres.connect(database) as connection:
        return connection.execute(query).fetchall()


def bookmark_of(state_dir: Path, project_id: str) -> str:
    """The bookmark Meltano stored for the pipeline (its file state backend keeps one JSON per state id)."""
    (state_file,) = [path for path in state_dir.rglob("*.json")]
    state = json.loads(state_file.read_text())
    singer_state = state.get("singer_state") or state.get("completed", {}).get("singer_state") or state
    partitions = singer_state["bookmarks"]["events"]["partitions"]
    (partition,) = [p for p in partitions if p["context"]["project_id"] == project_id]
    return str(partition["replication_key_value"])


def ledger_ids(emulator: EmulatorProcess, until: str) -> set[str]:
    events, _ = emulator.ledger()
    return {event["eventId"] for event in events if event["timestamp"] <= until}


def test_meltano_run_lands_events_once_and_resumes(
    start_emulator: StartEmulator, postgres: Postgres, tmp_path: Path
) -> None:
    emulator = start_emulator(*EMULATOR)
    database = postgres.new_database("meltano_resume")
    first = meltano_run(emulator, postgres, database, tmp_path, max_duration="4")
    assert first.returncode == 0, first.stderr[-3000:]
    # event_id is the primary key of the events table.
    keys = table(
        postgres,
        database,
        """
        select a.attname from pg_index i
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = 'tap_disruptive.events'::regclass and i.indisprimary""",
    )
    assert keys == [("event_id",)]
    rows = {row[0] for row in table(postgres, database, "select event_id from tap_disruptive.events")}
    until = bookmark_of(tmp_path, emulator.project_id)
    assert ledger_ids(emulator, until) <= rows
    devices = table(postgres, database, "select count(*) from tap_disruptive.devices")
    assert devices == [(24,)]

    time.sleep(2)
    second = meltano_run(emulator, postgres, database, tmp_path, max_duration="3")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"from {until}" in second.stderr  # it resumed from the first run's state
    later = bookmark_of(tmp_path, emulator.project_id)
    assert later > until
    ids = [row[0] for row in table(postgres, database, "select event_id from tap_disruptive.events")]
    assert len(ids) == len(set(ids))
    everything, _ = emulator.ledger()
    assert ledger_ids(emulator, later) <= set(ids) <= {event["eventId"] for event in everything}


def test_faults_during_a_run_leave_exactly_the_ledger(
    start_emulator: StartEmulator, postgres: Postgres, tmp_path: Path
) -> None:
    emulator = start_emulator(*EMULATOR)
    database = postgres.new_database("meltano_faults")
    faults: list[dict[str, Any]] = [
        {"kind": "cut"},
        {"kind": "error", "after_events": 5},
        {"kind": "http", "status": 503, "count": 2},
        {"kind": "end"},
        {"kind": "garbage"},
        {"kind": "stall", "seconds": 12},
    ]

    finished = threading.Event()

    def inject() -> None:
        for fault in faults:
            while emulator.status()["open_streams"] == 0 and not finished.wait(0.1):
                pass
            if finished.is_set():
                return
            if fault["kind"] == "http":
                emulator.inject(**fault)
                emulator.inject("end")
            else:
                emulator.inject(**fault)
            finished.wait(1.5)

    injector = threading.Thread(target=inject, daemon=True)
    injector.start()
    run = meltano_run(emulator, postgres, database, tmp_path, max_duration="40", idle_timeout="30")
    finished.set()
    injector.join(30)
    assert run.returncode == 0, run.stderr[-3000:]
    ids = [row[0] for row in table(postgres, database, "select event_id from tap_disruptive.events")]
    assert len(ids) == len(set(ids))
    until = bookmark_of(tmp_path, emulator.project_id)
    everything, _ = emulator.ledger()
    expected = ledger_ids(emulator, until)
    # Enough events for the faults to fall among them (fewer come when the machine is loaded).
    assert len(expected) > 200
    assert expected <= set(ids) <= {event["eventId"] for event in everything}


def pipe_into_postgres(
    emulator: EmulatorProcess, postgres: Postgres, database: str, tmp_path: Path, **settings: Any
) -> None:
    """The tap piped into target-postgres by hand, all of the emulator's history into schema `dt`."""
    tap = write_json(
        tmp_path / "tap.json",
        tap_config(emulator, live=False, start_date="2000-01-01T00:00:00Z", **settings),
    )
    target = write_json(
        tmp_path / "target.json",
        {
            "host": postgres.host,
            "port": postgres.port,
            "user": postgres.user,
            "password": postgres.password,
            "database": database,
            "default_target_schema": "dt",
        },
    )
    pipeline = f"{TAP} --config {tap} | {TARGET_POSTGRES} --config {target}"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_tap_piped_into_target_postgres_without_meltano(
    start_emulator: StartEmulator, postgres: Postgres, tmp_path: Path
) -> None:
    emulator = start_emulator("--rate", "0", "--history-span", "600", "--history-interval", "60")
    database = postgres.new_database("plain_pipe")
    pipe_into_postgres(emulator, postgres, database, tmp_path)
    ledger, _ = emulator.ledger()
    rows = table(postgres, database, "select event_id, data, labels, device_type from dt.events")
    assert sorted(row[0] for row in rows) == sorted(event["eventId"] for event in ledger)
    by_id = {event["eventId"]: event for event in ledger}
    for event_id, data, labels, device_type in rows:
        event_type = by_id[event_id]["eventType"]
        # DT's payload, its keys in snake_case.
        assert data == snake_data(event_type, by_id[event_id]["data"])
        if event_type != "labelsChanged":
            assert "update_time" in next(iter(data.values()))
        assert labels["name"].startswith(device_type)


def test_flattened_into_postgres_the_columns_are_snake_case(
    start_emulator: StartEmulator, postgres: Postgres, tmp_path: Path
) -> None:
    emulator = start_emulator("--rate", "0", "--history-span", "600", "--history-interval", "60")
    database = postgres.new_database("flattened")
    pipe_into_postgres(
        emulator, postgres, database, tmp_path, flattening_enabled=True, flattening_max_depth=3
    )
    columns = {
        row[0]
        for row in table(
            postgres,
            database,
            "select column_name from information_schema.columns"
            " where table_schema = 'dt' and table_name = 'events'",
        )
    }
    assert {
        "data__temperature__update_time",
        "data__network_status__signal_strength",
        "data__humidity__relative_humidity",
        "labels",
    } <= columns
    assert [column for column in columns if "updatetime" in column.lower()] == []
    temperatures = {event["eventId"] for event in emulator.ledger()[0] if event["eventType"] == "temperature"}
    rows = table(postgres, database, "select event_id, data__temperature__update_time from dt.events")
    stamps = [stamp for event_id, stamp in rows if event_id in temperatures]
    assert stamps and None not in stamps
