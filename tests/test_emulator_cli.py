"""The emulator's command line: argument checks, --version, the advertised address, and its log."""

from __future__ import annotations

import base64
import importlib.metadata
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.serving.arguments import advertised_host
from tap_disruptive.testing import wait_until
from tests.support.emulators import QUIET
from tests.support.stream_reader import open_stream
from tests.test_emulator_api import assertion, bearer, devices_url, exchange


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tap_disruptive.emulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def logging_emulator(log_path: Path, *args: str) -> Iterator[EmulatorProcess]:
    """A quiet emulator whose stderr goes to `log_path`."""
    with log_path.open("w") as log, EmulatorProcess(*QUIET, *args, stderr=log) as emulator:
        yield emulator


def logged(log_path: Path, pattern: str) -> bool:
    """Whether a line matching `pattern` shows in the log within a few seconds."""
    return wait_until(lambda: re.search(pattern, log_path.read_text(), re.MULTILINE) is not None, timeout=10)


# --- arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--devices", "0"), "--devices"),
        (("--devices", "many"), "--devices"),
        (("--history-interval", "0"), "--history-interval"),
        (("--port", "65536"), "--port"),
        (("--rate", "-1"), "--rate"),
        (("--rate", "nan"), "--rate"),
        (("--backfill-ratio", "1.5"), "--backfill-ratio"),
        (("--token-lifetime", "0"), "--token-lifetime"),
        (("--ping-interval", "0"), "--ping-interval"),
        (("--history-page-max", "0"), "--history-page-max"),
        (("--project-id", "projects/c0demoproject0000000"), "--project-id"),
        (("--project-id", "my project"), "--project-id"),
        (("--project-id", ""), "--project-id"),
        (("--chaos-kinds", "cut,meteor"), "--chaos-kinds"),
        (("--chaos", "0", "--chaos-kinds", "end"), "--chaos-kinds"),
        (("--log-level", "loud"), "--log-level"),
        (("--latency", "-0.1"), "--latency"),
        (("--latency", "inf"), "--latency"),
        (("--rate-limit", "-1"), "--rate-limit"),
        (("--rate-limit", "fast"), "--rate-limit"),
        (("--rate-limit", "40", "--rate-limit-burst", "0"), "--rate-limit-burst"),
        (("--rate-limit-burst", "5"), "--rate-limit-burst"),
    ],
)
def test_bad_arguments_are_refused_in_one_line_with_exit_code_2(args: tuple[str, ...], named: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"disruptive-emulator: error: argument {named}: "), lines[0]


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"disruptive-emulator {importlib.metadata.version('tap-disruptive')}\n"


@pytest.mark.parametrize(
    ("bound", "advertised"),
    [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("127.0.0.1", "127.0.0.1"), ("localhost", "localhost")],
)
def test_a_wildcard_bind_is_advertised_as_loopback(bound: str, advertised: str) -> None:
    assert advertised_host(bound) == advertised


def test_listening_on_every_interface_prints_reachable_urls() -> None:
    with EmulatorProcess(*QUIET, "--host", "0.0.0.0") as emulator:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.base_url)
        assert emulator.api_url == f"{emulator.base_url}/v2"
        assert emulator.token_url == f"{emulator.base_url}/oauth2/token"
        assert requests.get(devices_url(emulator), auth=(emulator.key_id, emulator.key_secret), timeout=10).ok


# --- the log -------------------------------------------------------------------------------------------


def test_start_up_facts_are_logged_at_info(tmp_path: Path) -> None:
    log_path = tmp_path / "emulator.log"
    with logging_emulator(log_path, "--log-level", "info", "--devices", "5") as emulator:
        port = emulator.base_url.rsplit(":", 1)[1]
        listening = rf" INFO .*listening on 127\.0\.0\.1 port {port}; clients use {emulator.base_url}$"
        assert logged(log_path, listening)
        assert logged(log_path, rf" INFO .*projects {emulator.project_id}: 5 devices each")
        assert logged(log_path, r" INFO .*chaos: off$")


def test_naming_chaos_kinds_turns_chaos_on(tmp_path: Path) -> None:
    log_path = tmp_path / "emulator.log"
    with logging_emulator(log_path, "--log-level", "info", "--chaos-kinds", "end,cut"):
        assert logged(log_path, r" INFO .*chaos: a stream fault every 10 s on average, of end, cut$")


def test_each_request_is_logged_at_info_and_no_credential_ever_is(tmp_path: Path) -> None:
    log_path = tmp_path / "emulator.log"
    with logging_emulator(log_path, "--log-level", "debug") as emulator:
        url = devices_url(emulator)
        signed = assertion(emulator)
        token = exchange(emulator, signed).json()["access_token"]
        assert requests.get(url, headers=bearer(token), timeout=10).status_code == 200
        assert emulator.http.get(url, params={"query": "kitchen"}, timeout=10).status_code == 200  # Basic
        in_query = requests.post(emulator.token_url, params={"assertion": signed}, timeout=10)
        assert in_query.status_code == 400
        path = re.escape(f"/v2/projects/{emulator.project_id}/devices")
        assert logged(log_path, rf" INFO disruptive-emulator: GET {path} 200 \d+\.\dms$")
        assert logged(log_path, r" INFO disruptive-emulator: POST /oauth2/token 400 \d+\.\dms$")
        basic = base64.b64encode(f"{emulator.key_id}:{emulator.key_secret}".encode()).decode()
        # Credentials in every form they travelled in, and a query value: none may show.
        never_logged = (emulator.key_secret, token, signed, basic, "kitchen")
    text = log_path.read_text()
    assert len(re.findall(rf"GET {path} 200", text)) == 2
    for value in never_logged:
        assert value not in text
    assert "authorization" not in text.lower()


def test_injected_faults_are_logged_at_warning_and_counted_by_kind(tmp_path: Path) -> None:
    log_path = tmp_path / "emulator.log"
    # EmulatorProcess logs at warning unless told otherwise: faults show, requests do not.
    with logging_emulator(log_path, "--chaos", "0.1", "--chaos-kinds", "end") as emulator:
        url = f"{emulator.api_url}/projects/{emulator.project_id}/devices:stream"
        reader = open_stream(emulator.http, url, {"ping_interval": "1s"})
        assert reader.wait_end() == "clean end"  # chaos only strikes open streams
        emulator.inject("http", status=503, scope="rest")
        assert logged(log_path, r" WARNING .*fault injected: kind=end source=chaos after_events=\d+")
        http_line = r" WARNING .*fault injected: kind=http source=api status=503 count=1 scope=rest$"
        assert logged(log_path, http_line)
        counts = emulator.status()["faults_injected"]
        assert counts["end"] >= 1
        assert counts["http"] == 1
        assert counts["cut"] == 0
    assert " INFO " not in log_path.read_text()
