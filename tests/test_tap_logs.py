"""What an operator reads: the start line, each fault with its kind and wait, and end counters that match
what was written; structured (JSON) when the SDK's logging config asks for it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import tap_config
from tests.support.emulators import StartEmulator
from tests.support.tap_runs import TAP, records, run_tap, write_json

pytestmark = pytest.mark.e2e

END_LINE = re.compile(
    r"Wrote (\d+) events in [\d.]+ s \(\d+/s\); ended by (.+?)\. "
    r"stream: (\d+) connections \((\d+) after a fault\).*faults: (.+)$"
)


def test_a_chaotic_run_reports_each_fault_and_counts_what_it_wrote(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emulator = start_emulator("--rate", "20", "--chaos", "1.5", "--chaos-kinds", "cut,end,garbage,error")
    result = run_tap(tap_config(emulator, max_duration=10), tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    start = [line for line in lines if "Reading history, then the live stream" in line]
    assert start and emulator.project_id in start[0] and "max_duration=10 s" in start[0]
    (end,) = [match for line in lines if (match := END_LINE.search(line))]
    written, reason, _connections, reconnects, faults = end.groups()
    assert int(written) == len(records(result.stdout)) > 0
    assert reason == "max_duration"
    assert int(reconnects) >= 1 and faults != "none"
    # One line for each fault that cost a reconnect, with its kind in brackets and the wait.
    retries = [line for line in lines if re.search(r"\[\w+\]; retrying in [\d.]+ s", line)]
    assert len(retries) >= int(reconnects)
    assert all(" WARNING " in line for line in retries)
    # Nothing per event at INFO.
    assert len([line for line in lines if " INFO " in line]) < 40


def test_catch_up_progress_is_reported(start_emulator: StartEmulator, tmp_path: Path) -> None:
    # A day of history, 40 devices, an event every 10 s each: about 345,000 events to catch up on.
    emulator = start_emulator(
        "--rate", "0", "--devices", "40", "--history-span", "86400", "--history-interval", "10"
    )
    config = tap_config(emulator, start_date="2000-01-01T00:00:00Z", max_duration=12)
    result = run_tap(config, tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    progress = [line for line in result.stderr.splitlines() if "Catching up:" in line]
    assert progress, result.stderr[-2000:]
    line = progress[0]
    assert re.search(
        r"Catching up: \d+ events written \(\d+/s\), complete up to \S+, [\d.]+ \w+ behind now", line
    )
    # What it costs DT: the devices read so far, the requests, the 429s and the pace.
    found = re.search(
        r"devices read to the end (\d+) of 40; history requests (\d+), answered 429 (\d+), "
        r"pacing ([\d.]+) requests/s",
        line,
    )
    assert found, line
    assert int(found.group(1)) <= 40 and int(found.group(2)) >= 1 and float(found.group(4)) > 0
    # The plan's start: the devices and the fewest requests they can take.
    assert re.search(
        r"history of project \S+: 40 devices from \S+ to \S+, at least 40 requests", result.stderr
    )


def test_structured_logs_when_asked(shared_quiet_emulator: EmulatorProcess, tmp_path: Path) -> None:
    logging_config = tmp_path / "logging.yml"
    logging_config.write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters:\n  structured:\n    (): singer_sdk.logging.StructuredFormatter\n"
        "handlers:\n  stderr:\n    class: logging.StreamHandler\n    formatter: structured\n"
        "    stream: ext://sys.stderr\n"
        "root:\n  level: INFO\n  handlers: [stderr]\n"
    )
    config = write_json(tmp_path / "config.json", tap_config(shared_quiet_emulator, max_duration=1))
    result = subprocess.run(
        [str(TAP), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SINGER_SDK_LOG_CONFIG": str(logging_config)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    messages = [entry.get("message", "") for entry in logged]
    assert any(message.startswith("Reading history") for message in messages), result.stderr[-2000:]
    assert any(message.startswith("Wrote ") for message in messages)
