"""A backfill over a remote DT's network, end to end: the `tap-disruptive` command (`live: false`) against
an emulator answering each request 50 ms late and allowing 40 requests a second, a day of history on 100
devices. A first run is stopped part way by SIGTERM, its successor by SIGKILL, each resumed from the
last STATE its predecessor printed, and a last run finishes. Together they write every event; every
STATE (the bookmark and each device's frontier) claims only what was written before it; the history
requests stay near the minimum a reader needs, resumes included; and few requests are refused (429)."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from tap_disruptive.model.times import format_timestamp, timestamp_seconds
from tap_disruptive.testing import tap_config, wait_until
from tests.support.emulators import StartEmulator, list_devices
from tests.support.tap_runs import TAP, write_json

pytestmark = pytest.mark.e2e

DEVICES = 100
SPAN = 86_400.0
# 1,200 events a device: two of DT's pages each, 120,000 in all; a whole backfill takes some 15 s.
INTERVAL = 72.0
EMULATOR = (
    "--devices", str(DEVICES), "--history-span", str(SPAN), "--history-interval", str(INTERVAL),
    "--rate", "0",
)  # fmt: skip
PAGE = 1000  # DT's largest history page
# The STATE a stopped run is resumed from comes every few seconds: a run is signalled once it has
# printed one with device frontiers, or gives up waiting after this long.
STOP_WAIT = 40.0


class TapRun:
    """The tap as a child process, its stdout read line by line as it comes (stderr to a file)."""

    def __init__(self, config: dict[str, Any], state: dict[str, Any] | None, tmp: Path, name: str) -> None:
        args = [str(TAP), "--config", str(write_json(tmp / f"{name}-config.json", config))]
        if state is not None:
            args += ["--state", str(write_json(tmp / f"{name}-state.json", state))]
        self.name = name
        self.stderr_path = tmp / f"{name}.stderr"
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.lines: list[str] = []
        self._scanned = self.records = self.signalled_at = 0
        self.resumable = False
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: IO[str]) -> None:
        # Whole lines only: a killed run may leave its last line cut.
        for line in stdout:
            if line.endswith("\n"):
                self.lines.append(line.rstrip("\n"))

    def _scan(self) -> None:
        """Count the events' records, and note a STATE with device frontiers printed after one (the
        first STATE only says again what the run was given); each line is looked at once."""
        end = len(self.lines)
        for line in self.lines[self._scanned : end]:
            head = line[:48]
            if '"RECORD"' in head and '"events"' in head:
                self.records += 1
            elif '"STATE"' in head and self.records:
                self.resumable = self.resumable or bool(frontiers(json.loads(line)["value"]))
        self._scanned = end

    def stop_when(self, sig: signal.Signals, ready: Callable[[TapRun], bool]) -> None:
        def scanned() -> bool:
            self._scan()
            return ready(self)

        assert wait_until(scanned, timeout=STOP_WAIT), f"{self.name}: not ready to stop in {STOP_WAIT} s"
        self.process.send_signal(sig)
        self.signalled_at = self.records

    def finish(self, expected: int) -> list[dict[str, Any]]:
        code = self.process.wait(timeout=120)
        self._reader.join(timeout=30)
        assert code == expected, f"{self.name} exited {code}: {self.stderr_path.read_text()[-2000:]}"
        return [json.loads(line) for line in self.lines if line.strip()]


def partition(state: dict[str, Any]) -> dict[str, Any]:
    """The project's bookmarks of the events stream (none before it starts)."""
    partitions = state["bookmarks"].get("events", {}).get("partitions") or [{}]
    (only,) = partitions
    result: dict[str, Any] = only
    return result


def frontiers(state: dict[str, Any]) -> dict[str, str]:
    return dict(partition(state).get("device_frontiers") or {})


def owed_by(state: dict[str, Any], ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events a STATE says are written: stamped at or before the bookmark, or at or before their
    device's frontier."""
    bookmark = str(partition(state).get("replication_key_value") or "")
    ahead = frontiers(state)
    return [
        event
        for event in ledger
        if event["timestamp"] <= bookmark or event["timestamp"] <= ahead.get(device_of(event), "")
    ]


def device_of(event: dict[str, Any]) -> str:
    return str(event["targetName"]).rsplit("/", 1)[-1]


def test_a_backfill_stopped_twice_over_a_wan_loses_nothing_and_reads_little_again(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator(*EMULATOR, latency=0.05, rate_limit=40)
    ledger, _ = emulator.ledger()
    per_device = Counter(device_of(event) for event in ledger)
    devices = [str(device["name"]).rsplit("/", 1)[-1] for device in list_devices(emulator)]
    assert len(devices) == DEVICES and len(ledger) > 100_000
    config = tap_config(emulator, start_date=format_timestamp(time.time() - SPAN - 600), live=False)

    written: set[str] = set()
    state: dict[str, Any] | None = None
    per_run = []
    # The first run is stopped early (SIGTERM: it prints a last STATE); the second once it has printed
    # a STATE of its own (SIGKILL: nothing more), which comes a few seconds in, or, on a machine fast
    # enough to write most of it first, a third of the way (its successor then resumes from the STATE
    # it was given); the last one finishes.
    runs: list[tuple[str, signal.Signals | None, Callable[[TapRun], bool]]] = [
        ("sigterm", signal.SIGTERM, lambda run: run.records >= len(ledger) // 10),
        ("sigkill", signal.SIGKILL, lambda run: run.resumable or run.records >= len(ledger) // 3),
        ("last", None, lambda run: False),
    ]
    for name, stop, ready in runs:
        run = TapRun(config, state, tmp_path, name)
        if stop is not None:
            run.stop_when(stop, ready)
        lines = run.finish(-signal.SIGKILL if stop == signal.SIGKILL else 0)
        records = 0
        for message in lines:
            if message["type"] == "RECORD" and message["stream"] == "events":
                written.add(message["record"]["event_id"])
                records += 1
            elif message["type"] == "STATE":
                # (2) Each STATE claims only what this run and its predecessors wrote before it.
                state = message["value"]
                missing = [e["eventId"] for e in owed_by(state, ledger) if e["eventId"] not in written]
                assert not missing, (
                    f"{name}: a STATE claims {len(missing)} events not written before it, e.g. "
                    f"{missing[:3]}; bookmark {partition(state).get('replication_key_value')}, "
                    f"{len(frontiers(state))} device frontiers"
                )
        assert state is not None, f"{name} printed no STATE"
        per_run.append((name, run.signalled_at, records, len(frontiers(state))))
        if stop is not None:
            # Stopped part way: what it claims does not cover the whole history yet.
            assert len(owed_by(state, ledger)) < len(ledger), f"{name} was not stopped part way"

    # (1) Nothing lost. The last run's bookmark reaches the end of history, less the stretch near its start
    # that DT could still be indexing (a history-only run leaves that to its successor).
    assert state is not None
    newest = max(event["timestamp"] for event in ledger)
    assert partition(state)["replication_key_value"] >= format_timestamp(timestamp_seconds(newest) - 120)
    missing = [event["eventId"] for event in ledger if event["eventId"] not in written]
    assert not missing, f"{len(missing)} of {len(ledger)} events never written, e.g. {missing[:3]}"

    # (3) History requests: the minimum (a request per page of 1,000 events of each device, at least
    # one), half as much again, one more per device, and one window read again per device per resume.
    status = emulator.status()
    resumes = 2
    minimum = sum(max(1, math.ceil(per_device[d] / PAGE)) for d in devices)
    bound = 1.5 * minimum + len(devices) + resumes * len(devices)
    history = status["requests"].get("history", 0)
    # (4) Requests refused with a 429, over every kind.
    requests_made = sum(status["requests"].values())
    throttled = sum(status["throttled"].values())
    print(
        f"events {len(ledger)}; per run (records at the signal, records, frontiers in its last STATE) "
        f"{per_run}; history requests {history}, minimum {minimum}, bound {bound:g}; "
        f"requests {status['requests']}, throttled {status['throttled']} "
        f"({throttled / requests_made:.1%})"
    )
    assert history <= bound, f"{history} history requests, over the bound {bound:g} (minimum {minimum})"
    assert throttled < 0.05 * requests_made, f"{throttled} of {requests_made} requests throttled"
