"""Every bad input a user can give the tap, one row each: one line naming the problem, a non-zero exit, no
traceback, no secret, within seconds. Run as users run it: the console script against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import tap_config
from tests.support.tap_runs import TAP, bookmark, last_state, records, write_json

pytestmark = pytest.mark.e2e

# A start that cannot reach DT fails within this many seconds.
FAIL_FAST = 15.0


@dataclass(frozen=True)
class Run:
    """What a row runs: the tap's arguments and environment, in a temporary directory."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


Setup = Callable[[EmulatorProcess, Path], Run]


def with_config(**change: Any) -> Setup:
    """A run whose config is the emulator's, changed (a value of None removes the setting)."""

    def setup(emulator: EmulatorProcess, tmp: Path) -> Run:
        config = {**tap_config(emulator, max_duration=2), **change}
        config = {name: value for name, value in config.items() if value is not None}
        return Run(["--config", str(write_json(tmp / "config.json", config))])

    return setup


def with_urls(make: Callable[[str], dict[str, str]]) -> Setup:
    """A run whose api_url/token_url are made from the emulator's address (http://127.0.0.1:port)."""

    def setup(emulator: EmulatorProcess, tmp: Path) -> Run:
        return with_config(**make(emulator.api_url.removesuffix("/v2")))(emulator, tmp)

    return setup


def with_file(option: str, text: str) -> Setup:
    """A good config, and `option` given a file holding `text` (`--config` replaces the config)."""

    def setup(emulator: EmulatorProcess, tmp: Path) -> Run:
        path = tmp / "given.json"
        path.write_text(text)
        if option == "--config":
            return Run(["--config", str(path)])
        return Run([*with_config()(emulator, tmp).args, option, str(path)])

    return setup


def with_env(**variables: str) -> Setup:
    """Settings from TAP_DISRUPTIVE_* variables (`--config ENV`), some of them given here."""

    def setup(emulator: EmulatorProcess, tmp: Path) -> Run:
        env = {f"TAP_DISRUPTIVE_{name.upper()}": str(value) for name, value in tap_config(emulator).items()}
        env["TAP_DISRUPTIVE_PROJECT_IDS"] = emulator.project_id
        return Run(["--config", "ENV"], {**env, **variables})

    return setup


STATE = json.dumps(
    {"bookmarks": {"events": {"partitions": [{"context": {"project_id": "p"}, "replication_key_value": 0}]}}}
).replace("0}", "%s}")

ROWS: dict[str, tuple[Setup, str]] = {
    # Files.
    "config file missing": (
        lambda e, tmp: Run(["--config", str(tmp / "nope.json")]),
        "nope.json: no such file",
    ),
    "config not JSON": (with_file("--config", "project_ids: [p]"), "given.json: not JSON"),
    "config not an object": (with_file("--config", '["p"]'), "must hold a JSON object, not list"),
    "state not JSON": (with_file("--state", "garbage"), "--state"),
    "state not an object": (with_file("--state", "[1, 2]"), "must hold a JSON object, not list"),
    "state of the wrong shape": (with_file("--state", '{"events": "2026"}'), "not a Singer state"),
    "bookmark not a time": (with_file("--state", STATE % '"yesterday"'), "(project p) is not a time"),
    "bookmark impossible time": (with_file("--state", STATE % '"2026-01-01T25:61:00Z"'), "is not a time"),
    "device frontier not a time": (
        with_file("--state", STATE % '"2026-01-01T00:00:00Z", "device_frontiers": {"d1": "soon"}'),
        "(project p): device_frontiers.d1 is not a time: 'soon'",
    ),
    "device frontiers not an object": (
        with_file("--state", STATE % '"2026-01-01T00:00:00Z", "device_frontiers": ["d1"]'),
        "device_frontiers is not an object of device ids to times",
    ),
    "catalog not JSON": (with_file("--catalog", "{"), "--catalog"),
    # Settings.
    "unknown setting": (with_config(label_filter={"room": "lab"}), "did you mean 'label_filters'?"),
    "project_ids missing": (with_config(project_ids=None), "project_ids: give at least one"),
    "project_ids empty": (with_config(project_ids=[]), "project_ids"),
    "project id empty": (with_config(project_ids=[""]), "not a DT project id: ''"),
    "project id with a slash": (with_config(project_ids=["projects/p"]), "not a DT project id"),
    "secret not a string": (with_config(key_secret=987654321), "key_secret must be of type"),
    "api_url without /v2": (with_urls(lambda base: {"api_url": base}), "ending in /v2"),
    "label_filters a list": (with_config(label_filters=["room=lab"]), "label_filters"),
    "unknown event type": (with_config(event_types=["smell"]), "event_types"),
    "unknown device type": (with_config(device_types=["toaster"]), "device_types"),
    "max_events negative": (with_config(max_events=-5), "max_events"),
    "idle_timeout zero": (with_config(idle_timeout=0), "idle_timeout"),
    "max_request_rate zero": (
        with_config(max_request_rate=0),
        "max_request_rate must be a positive number of requests a second",
    ),
    "live not a boolean": (with_config(live="yes"), "live"),
    "start_date not a time": (with_config(start_date="last tuesday"), "start_date"),
    "start_date in the future": (
        with_config(start_date="2999-01-01T00:00:00Z"),
        "start_date is in the future",
    ),
    "number variable not a number": (with_env(TAP_DISRUPTIVE_MAX_DURATION="soon"), "must be a number"),
    # Reaching DT.
    "wrong secret": (
        with_config(key_secret="a-wrong-secret-of-proper-length-0000000"),
        "refused service account key",
    ),
    "unknown project": (
        with_config(project_ids=["c0nosuchproject00000"]),
        "project c0nosuchproject00000 not found",
    ),
    "port closed": (
        with_config(api_url="http://127.0.0.1:9/v2", token_url="http://127.0.0.1:9/oauth2/token"),
        "cannot reach token_url http://127.0.0.1:9/oauth2/token: connection refused",
    ),
    "unknown host": (
        with_config(api_url="http://dt.invalid/v2", token_url="http://dt.invalid/oauth2/token"),
        "cannot reach token_url http://dt.invalid/oauth2/token",
    ),
    "TLS to a plain port": (
        with_urls(lambda base: {"token_url": base.replace("http:", "https:") + "/oauth2/token"}),
        "cannot reach token_url https://",
    ),
    "token_url answers 404": (
        with_urls(lambda base: {"token_url": base + "/oauth2/nope"}),
        "check token_url",
    ),
}

# Rows whose API answers every request with a fault, however often the tap tries.
FAULT_ROWS: dict[str, tuple[dict[str, Any], str]] = {
    "API answers 503 forever": ({"status": 503}, "gave up after"),
    "API answers an HTML page": ({"status": 502}, "gave up after"),
}


def run(emulator: EmulatorProcess, tmp: Path, setup: Setup) -> tuple[subprocess.CompletedProcess[str], float]:
    given = setup(emulator, tmp)
    env = {name: value for name, value in os.environ.items() if not name.startswith("TAP_DISRUPTIVE_")}
    started = time.monotonic()
    result = subprocess.run(
        [str(TAP), *given.args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp,
        env={**env, **given.env},
    )
    return result, time.monotonic() - started


def assert_one_clear_line(
    result: subprocess.CompletedProcess[str], elapsed: float, message: str, secret: str
) -> None:
    assert result.returncode != 0
    assert elapsed < FAIL_FAST, f"took {elapsed:.1f} s"
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("tap-disruptive:")]
    assert message in line, result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    assert " ERROR " not in result.stderr, result.stderr[-1500:]
    assert secret not in result.stderr + result.stdout
    assert "987654321" not in result.stderr + result.stdout
    assert not [m for m in map(json.loads, result.stdout.splitlines()) if m["type"] == "RECORD"]


@pytest.mark.parametrize("row", sorted(ROWS))
def test_bad_input(shared_quiet_emulator: EmulatorProcess, tmp_path: Path, row: str) -> None:
    setup, message = ROWS[row]
    result, elapsed = run(shared_quiet_emulator, tmp_path, setup)
    assert_one_clear_line(result, elapsed, message, shared_quiet_emulator.key_secret)


@pytest.mark.parametrize("row", sorted(FAULT_ROWS))
def test_api_in_trouble_at_the_start(
    shared_quiet_emulator: EmulatorProcess, tmp_path: Path, row: str
) -> None:
    fault, message = FAULT_ROWS[row]
    shared_quiet_emulator.inject("http", scope="rest", count=1000, **fault)
    try:
        result, elapsed = run(shared_quiet_emulator, tmp_path, with_config())
    finally:
        shared_quiet_emulator.clear_faults()
    assert_one_clear_line(result, elapsed, message, shared_quiet_emulator.key_secret)
    # Each fault was said as it happened, with the wait it caused.
    assert "retrying in" in result.stderr


def test_bounds_hold_while_the_stream_is_refused(
    shared_quiet_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    shared_quiet_emulator.inject("http", scope="stream", count=1000, status=503)
    try:
        result, elapsed = run(shared_quiet_emulator, tmp_path, with_config(max_duration=3))
    finally:
        shared_quiet_emulator.clear_faults()
    assert result.returncode == 0, result.stderr[-1500:]
    assert elapsed < 3 + FAIL_FAST / 3
    assert "ended by max_duration" in result.stderr
    assert "HTTP 503" in result.stderr and "retrying in" in result.stderr


def test_settings_from_the_environment_are_typed(
    shared_quiet_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    result, _ = run(shared_quiet_emulator, tmp_path, with_env(TAP_DISRUPTIVE_MAX_DURATION="1.5"))
    assert result.returncode == 0, result.stderr[-1500:]
    assert "max_duration=1.5 s" in result.stderr


def test_a_whole_state_message_is_read_as_its_value(
    shared_quiet_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    emulator = shared_quiet_emulator
    since = "2026-01-01T00:00:00.000000Z"
    value = {
        "bookmarks": {
            "events": {
                "partitions": [
                    {
                        "context": {"project_id": emulator.project_id},
                        "replication_key": "timestamp",
                        "replication_key_value": since,
                    }
                ]
            }
        }
    }
    setup = with_file("--state", json.dumps({"type": "STATE", "value": value}))
    result, _ = run(emulator, tmp_path, setup)
    assert result.returncode == 0, result.stderr[-1500:]
    assert "holds a whole STATE message" in result.stderr
    assert f"{emulator.project_id} from {since} (the bookmark)" in result.stderr
    assert bookmark(last_state(result.stdout), emulator.project_id) >= since
    assert all(record["timestamp"] >= since for record in records(result.stdout))


def test_discovery_needs_no_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(TAP), "--discover"], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-1500:]
    streams = {entry["tap_stream_id"] for entry in json.loads(result.stdout)["streams"]}
    assert streams == {"devices", "events"}
