"""Nothing lost across runs, end to end: the `tap-disruptive` command against the emulator (an hour of
history on many devices, small newest-first pages, live publishing), run after run, each stopped in the
middle of its catch-up by a different means (max_events, max_duration, SIGTERM, SIGKILL) and resumed from
the last STATE its predecessor wrote. Together the runs write every event."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.testing import tap_config
from tests.support.emulators import StartEmulator
from tests.support.tap_runs import TAP, bookmark, messages, write_json

pytestmark = pytest.mark.e2e

# An hour of history on 48 devices, a reading each 30 s (5,760 events), pages of 7, 5 events/s live.
EMULATOR = (
    "--devices", "48", "--history-span", "3600", "--history-interval", "30",
    "--history-page-max", "7", "--rate", "5", "--indexing-delay", "1",
)  # fmt: skip


def run(config: dict[str, Any], state: dict[str, Any] | None, tmp: Path, stop: str | None = None) -> str:
    """Run the tap; `stop` names a signal sent a second and a half in. Returns what it wrote."""
    args = [str(TAP), "--config", str(write_json(tmp / "config.json", config))]
    if state is not None:
        args += ["--state", str(write_json(tmp / "state.json", state))]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if stop is not None:
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM if stop == "SIGTERM" else signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == (-9 if stop == "SIGKILL" else 0), stderr[-2000:]
    return stdout


def test_runs_stopped_in_the_middle_of_their_catch_up_lose_nothing(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator: EmulatorProcess = start_emulator(*EMULATOR)
    base = tap_config(emulator, start_date=format_timestamp(time.time() - 3600))
    written: list[str] = []
    state: dict[str, Any] | None = None
    bookmarks = []
    for settings, stop in (
        ({"max_events": 700}, None),
        ({"max_duration": 1.5}, None),
        ({}, "SIGTERM"),
        ({}, "SIGKILL"),
        ({"max_duration": 20}, None),  # the last run catches up and follows the stream for a while
    ):
        stdout = run({**base, **settings}, state, tmp_path, stop)
        # A killed run may have been cut in the middle of its last line.
        text = stdout.rsplit("\n", 1)[0] if stop == "SIGKILL" else stdout
        for number, line in enumerate(text.splitlines()):
            assert line.startswith("{") and line.endswith("}"), (
                f"{stop or settings}: line {number} cut: {line[:80]}"
            )
        lines = messages(text)
        written += [
            m["record"]["event_id"] for m in lines if m["type"] == "RECORD" and m["stream"] == "events"
        ]
        states = [m["value"] for m in lines if m["type"] == "STATE"]
        if states:
            state = states[-1]
            bookmarks.append(bookmark(state, emulator.project_id))
    assert bookmarks == sorted(bookmarks), "a bookmark went backwards"
    ledger, _ = emulator.ledger()
    assert len(ledger) > 5760
    final = bookmarks[-1]
    # Owed: every event from start_date to the last bookmark. The emulator's history begins an hour before
    # it started, a moment before start_date was taken: an event in that moment is not owed.
    start = base["start_date"]
    missing = [
        event["eventId"]
        for event in ledger
        if start <= event["timestamp"] <= final and event["eventId"] not in written
    ]
    assert not missing, f"{len(missing)} of {len(ledger)} events never written, e.g. {missing[:3]}"
    # The last run ran long enough for its bookmark to pass everything the earlier runs could see.
    assert final >= format_timestamp(time.time() - 120)
    # Runs resumed from a bookmark write again only what came after it: far fewer than twice the events.
    assert len(written) < 1.5 * len(ledger), (len(written), len(ledger))
    assert json.dumps(state)  # a STATE a target can store as it is
