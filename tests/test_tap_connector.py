"""The tap with `source: connector`: the events a Data Connector receiver spooled, as the same records as
the stream source's, read by the spool's seq and resumed from it after a stop at any moment."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.event_types import EVENT_TYPES, LABELS_CHANGED
from tap_disruptive.model.ids import IdFactory
from tap_disruptive.model.pushes import parse_push
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.receiver.process import ReceiverProcess
from tap_disruptive.spool import open_spool
from tap_disruptive.testing import meltano_environment, tap_config, wait_until
from tests.support.emulators import QUIET, StartEmulator
from tests.support.services import Postgres, run_meltano
from tests.support.tap_runs import TAP, last_state, messages, records, run_tap, write_json

# Every test runs the tap's console script (and some the emulator, the receiver and Meltano).
pytestmark = pytest.mark.e2e

SECRET = "a-connector-signature-secret-for-tests-0123"
IDS = IdFactory()


def push_body(project: str, device: str, number: int, labels: dict[str, str] | None = None) -> bytes:
    stamp = format_timestamp(time.time() - 3600 + number)
    event = {
        "eventId": IDS.new_id(time.time()),
        "targetName": f"projects/{project}/devices/{device}",
        "eventType": "temperature",
        "data": {"temperature": {"value": number / 10, "updateTime": stamp, "samples": []}},
        "timestamp": stamp,
    }
    metadata = {"deviceId": device, "projectId": project, "deviceType": "temperature", "productNumber": ""}
    document = {"event": event, "labels": labels or {"room": "lab"}, "metadata": metadata}
    return json.dumps(document, separators=(",", ":")).encode()


def fill(spool: Path, pushes: list[tuple[str, str]], start: int) -> list[str]:
    """Append a push per (project, device) to the spool, as the receiver does; their event ids."""
    store = open_spool(str(spool))
    try:
        ids = []
        for number, (project, device) in enumerate(pushes, start):
            push = parse_push(push_body(project, device, number))
            store.append(push, time.time())
            ids.append(push.event_id)
        return ids
    finally:
        store.close()


def connector_config(spool: Path, projects: list[str], **settings: Any) -> dict[str, Any]:
    return {"project_ids": projects, "source": "connector", "spool": str(spool), **settings}


def spool_seqs(state: dict[str, Any]) -> dict[str, int]:
    partitions = state["bookmarks"]["events"]["partitions"]
    return {p["context"]["project_id"]: int(p["spool_seq"]) for p in partitions if "spool_seq" in p}


def test_a_run_reads_its_projects_events_in_spool_order_and_the_next_run_only_what_came_since(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool.sqlite"
    first = fill(spool, [("p1", "d1"), ("p2", "d2"), ("p1", "d3"), ("other", "d4")] * 5, 0)
    config = connector_config(spool, ["p1", "p2"], live=False, device_ids=["d1", "d2", "d4"])

    run = run_tap(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    written = records(run.stdout)
    wanted = [event_id for index, event_id in enumerate(first) if index % 4 in (0, 1)]
    assert [record["event_id"] for record in written] == wanted
    assert {record["labels"]["room"] for record in written} == {"lab"}
    assert {record["device_type"] for record in written} == {"temperature"}
    assert spool_seqs(last_state(run.stdout)) == {"p1": 20, "p2": 20}
    assert "ended by the end of the spool" in run.stderr

    more = fill(spool, [("p2", "d2"), ("p1", "d1")], 100)
    again = run_tap(config, tmp_path, state=last_state(run.stdout))
    assert again.returncode == 0, again.stderr[-2000:]
    assert [record["event_id"] for record in records(again.stdout)] == more
    assert spool_seqs(last_state(again.stdout)) == {"p1": 22, "p2": 22}
    assert "after seq 20 (the bookmark)" in again.stderr


def test_a_project_added_later_reads_the_spool_from_its_start_and_the_others_nothing_twice(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool.sqlite"
    ids = fill(spool, [("p1", "d1"), ("p2", "d2")] * 3, 0)
    run = run_tap(connector_config(spool, ["p1"], live=False), tmp_path)
    assert [record["event_id"] for record in records(run.stdout)] == ids[0::2]

    both = run_tap(connector_config(spool, ["p1", "p2"], live=False), tmp_path, state=last_state(run.stdout))
    assert both.returncode == 0, both.stderr[-2000:]
    assert [record["event_id"] for record in records(both.stdout)] == ids[1::2]
    assert spool_seqs(last_state(both.stdout)) == {"p1": 6, "p2": 6}


def test_a_missing_spool_or_a_bad_bookmark_is_one_line(tmp_path: Path) -> None:
    missing = run_tap(connector_config(tmp_path / "nowhere.sqlite", ["p1"], live=False), tmp_path)
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines()[-1] == (
        f"tap-disruptive: no spool at {tmp_path / 'nowhere.sqlite'}: is it the receiver's --spool?"
    )
    assert not (tmp_path / "nowhere.sqlite").exists()  # a reader never makes a spool
    no_spool = run_tap({"project_ids": ["p1"], "source": "connector"}, tmp_path)
    assert no_spool.stderr.strip().splitlines()[-1].startswith("tap-disruptive: spool: required")
    spool = tmp_path / "spool.sqlite"
    fill(spool, [("p1", "d1")], 0)
    state = {"bookmarks": {"events": {"partitions": [{"context": {"project_id": "p1"}, "spool_seq": "x"}]}}}
    bad = run_tap(connector_config(spool, ["p1"], live=False), tmp_path, state=state)
    assert bad.returncode != 0
    assert "spool_seq is not a spool position: 'x'" in bad.stderr.strip().splitlines()[-1]


def stop_run(
    config: dict[str, Any], state: dict[str, Any] | None, tmp: Path, how: str, after: float
) -> tuple[list[str], dict[str, Any] | None]:
    """One run stopped by `how` (a bound in the config, SIGTERM or SIGKILL after `after` seconds):
    the event ids it wrote, and the last STATE it wrote (None if none)."""
    args = [str(TAP), "--config", str(write_json(tmp / "config.json", config))]
    if state is not None:
        args += ["--state", str(write_json(tmp / "state.json", state))]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as tap:
        if how in ("SIGTERM", "SIGKILL"):
            time.sleep(after)
            os.kill(tap.pid, signal.SIGTERM if how == "SIGTERM" else signal.SIGKILL)
        stdout, stderr = tap.communicate(timeout=120)
    if how != "SIGKILL":
        assert tap.returncode == 0, stderr[-2000:]
    # A killed run may have cut its last line: what a target would have read are the whole lines.
    lines = stdout.splitlines(keepends=True)
    whole = "".join(line for line in lines if line.endswith("\n"))
    written = [m["record"]["event_id"] for m in messages(whole) if m["type"] == "RECORD"]
    states = [m["value"] for m in messages(whole) if m["type"] == "STATE"]
    return written, states[-1] if states else state


def test_runs_stopped_at_any_moment_resume_from_the_spool_seq_and_lose_nothing(tmp_path: Path) -> None:
    """Random stops (max_events, max_duration, SIGTERM, SIGKILL) while the receiver keeps adding rows:
    after every run, every event up to the bookmark has been written; events are written twice only
    when a run was killed after writing them and before its next STATE; at the end, all of them."""
    spool = tmp_path / "spool.sqlite"
    chance = random.Random(int(os.environ.get("CONNECTOR_STOPS_SEED", "7")))
    devices = [("p1", "d1"), ("p2", "d2"), ("p1", "d3")]
    spooled = fill(spool, [chance.choice(devices) for _ in range(400)], 0)
    state: dict[str, Any] | None = None
    written: Counter[str] = Counter()
    killed_after_state = 0
    for run in range(8):
        how = chance.choice(["max_events", "max_duration", "SIGTERM", "SIGKILL"])
        bound: dict[str, float] = {"max_events": chance.randint(1, 150)} if how == "max_events" else {}
        if how == "max_duration":
            bound = {"max_duration": round(chance.uniform(0.2, 2.0), 1)}
        # Every run ends: by its bound, its signal, or a quiet spool.
        config = connector_config(spool, ["p1", "p2"], idle_timeout=2, **bound)
        ids, new_state = stop_run(config, state, tmp_path, how, after=chance.uniform(0.3, 3.0))
        before = spool_seqs(state) if state else {}
        after = spool_seqs(new_state) if new_state else {}
        # Nothing before the old bookmark again, unless it came after the last STATE of a killed run.
        seq_of = {event_id: seq for seq, event_id in enumerate(spooled, 1)}
        assert all(seq_of[event_id] > min(before.values(), default=0) for event_id in ids), how
        written.update(ids)
        if how == "SIGKILL":
            killed_after_state += sum(1 for e in ids if seq_of[e] > min(after.values(), default=0))
        # Every event up to the new bookmark has been written.
        upto = min(after.values(), default=0)
        assert all(written[event_id] for event_id in spooled[:upto]), (run, how)
        state = new_state
        spooled += fill(spool, [chance.choice(devices) for _ in range(chance.randint(0, 60))], 1000 * run)
    ids, state = stop_run(connector_config(spool, ["p1", "p2"], live=False), state, tmp_path, "end", 0)
    written.update(ids)
    assert set(written) == set(spooled)
    repeats = sum(count - 1 for count in written.values())
    assert repeats <= killed_after_state


def test_the_connector_source_writes_the_stream_sources_records(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    """Every event type, published on the emulator, pushed by its Data Connector to a real receiver,
    read back from the spool: the same records as read from DT's history, when the connector forwards
    every label."""
    emulator = start_emulator(*QUIET, "--connector-timeout", "2", "--connector-backoff", "0.2")
    spool = tmp_path / "spool.sqlite"
    with ReceiverProcess(
        "--port", "0", "--spool", str(spool), env={"DT_CONNECTOR_SECRET": SECRET}
    ) as receiver:
        # Every label the emulator's devices have (it marks them as virtual).
        connect(emulator, receiver.url, labels=["room", "name", "virtual-sensor"])
        published = publish_every_type(emulator)
        assert wait_until(lambda: receiver.metrics()["stored"] >= published, timeout=30)
        since = "2000-01-01T00:00:00Z"
        pushed = run_tap(connector_config(spool, [emulator.project_id], live=False), tmp_path)
        streamed = run_tap(tap_config(emulator, live=False, start_date=since), tmp_path)
    assert pushed.returncode == 0 and streamed.returncode == 0, (
        pushed.stderr[-2000:] + streamed.stderr[-2000:]
    )
    from_spool = {record["event_id"]: record for record in records(pushed.stdout)}
    from_stream = {record["event_id"]: record for record in records(streamed.stdout)}
    assert len(from_spool) == published
    assert {record["event_type"] for record in from_spool.values()} == set(EVENT_TYPES)
    # The one event before a label change: the push carries the labels of its time; history read after
    # the change joins it with the labels listed at the start of the run.
    (relabelled,) = [
        event_id
        for event_id, record in from_spool.items()
        if record["labels"] != from_stream[event_id]["labels"]
    ]
    assert from_spool[relabelled]["labels"]["room"] == "lab"
    assert from_stream[relabelled]["labels"]["room"] == "cellar"
    from_spool[relabelled]["labels"] = from_stream[relabelled]["labels"]
    assert from_spool == from_stream


def connect(emulator: EmulatorProcess, url: str, labels: list[str]) -> None:
    body = {"type": "HTTP_PUSH", "httpConfig": {"url": url, "signatureSecret": SECRET}, "labels": labels}
    answer = emulator.http.post(
        f"{emulator.api_url}/projects/{emulator.project_id}/dataconnectors", json=body, timeout=10
    )
    assert answer.status_code == 200, answer.text


def publish_every_type(emulator: EmulatorProcess) -> int:
    """An event of every type DT has, from a device with labels (one labelsChanged among them)."""
    count = 0
    for event_type in EVENT_TYPES:
        if event_type == LABELS_CHANGED:
            continue
        sender = next(kind for kind in DEVICE_TYPES.values() if kind.sends(event_type))
        device_id = emulator.create_device(sender.name, {"room": "lab", "name": event_type})
        emulator.publish(device_id, event_type)
        count += 1
    emulator.set_labels(device_id, {"room": "cellar"})
    emulator.publish(device_id, event_type)
    return count + 2


def test_events_pushed_around_a_receiver_crash_land_once_in_postgres_through_meltano(
    start_emulator: StartEmulator, postgres: Postgres, tmp_path: Path
) -> None:
    """DT pushes while the receiver is SIGKILLed and restarted: every event is spooled once, and
    `meltano run tap-disruptive target-postgres` lands each once; a second run adds only the new ones."""
    emulator = start_emulator(*QUIET, "--connector-timeout", "1", "--connector-backoff", "0.2")
    spool = tmp_path / "spool.sqlite"
    env = {"DT_CONNECTOR_SECRET": SECRET}
    first = ReceiverProcess("--port", "0", "--spool", str(spool), env=env).start()
    port = first.url.rsplit(":", 1)[1].split("/", 1)[0]
    connect(emulator, first.url, labels=["room"])
    device = emulator.create_device("touch", {"room": "hall"})
    start = emulator.ledger_position()
    for _ in range(10):
        emulator.publish(device, "touch")
    first.kill()
    for _ in range(10):  # pushed into a dead endpoint: DT keeps them and re-sends
        emulator.publish(device, "touch")
    with ReceiverProcess("--port", port, "--spool", str(spool), env=env):
        for _ in range(10):
            emulator.publish(device, "touch")
        events, _ = emulator.ledger(after=start, device_ids=device)
        published = [event["eventId"] for event in events]
        assert len(published) == 30
        assert wait_until(lambda: sorted(spooled_ids(spool)) == sorted(published), timeout=30)
        database = postgres.new_database("connector_crash")
        state_dir = tmp_path / "state"
        run = meltano_connector_run(emulator, spool, postgres, database, state_dir)
        assert run.returncode == 0, run.stderr[-3000:]
        landed = table_ids(postgres, database)
        assert sorted(landed) == sorted(published)  # each once: event_id is the table's primary key
        assert len(spooled_ids(spool)) == 30  # and each once in the spool
        read_through = last_seq(spool)

        for _ in range(5):
            emulator.publish(device, "touch")
        assert wait_until(lambda: len(spooled_ids(spool)) == 35, timeout=30)
        again = meltano_connector_run(emulator, spool, postgres, database, state_dir)
        assert again.returncode == 0, again.stderr[-3000:]
    reading = [line for line in again.stderr.splitlines() if "Reading the spool" in line or "Wrote" in line]
    assert f"after seq {read_through} (the bookmark)" in reading[0], reading
    assert "Wrote 5 events" in again.stderr
    assert sorted(table_ids(postgres, database)) == sorted(spooled_ids(spool))


def spooled_ids(spool: Path) -> list[str]:
    store = open_spool(str(spool), create=False)
    try:
        return [row.event_id for row in store.read(0, 10_000)]
    finally:
        store.close()


def last_seq(spool: Path) -> int:
    store = open_spool(str(spool), create=False)
    try:
        return store.last_seq()
    finally:
        store.close()


def table_ids(postgres: Postgres, database: str) -> list[str]:
    with postgres.connect(database) as connection:
        rows = connection.execute("SELECT event_id FROM tap_disruptive.events").fetchall()
    return [str(row[0]) for row in rows]


def meltano_connector_run(
    emulator: EmulatorProcess, spool: Path, postgres: Postgres, database: str, state_dir: Path
) -> subprocess.CompletedProcess[str]:
    extra = {
        "MELTANO_ENVIRONMENT": "connector",
        "DT_SPOOL": str(spool),
        **meltano_environment(emulator),
        **postgres.environment(database),
    }
    return run_meltano(state_dir, extra, "run", "tap-disruptive", "target-postgres")
