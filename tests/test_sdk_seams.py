"""The places where the tap leans on the Singer SDK beyond its public surface (tap/sdk_seams.py) are
still there, take what the tap gives them, and still do what the tap relies on; and the batched record
path writes exactly the records the SDK's own path writes. If the SDK changes beneath us, this fails."""

from __future__ import annotations

import inspect
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.plugin_base import _ConfigInput

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.tap.output import SingerLineWriter
from tap_disruptive.tap.plugin import TapDisruptive
from tap_disruptive.tap.sdk_seams import SEAMS, BookmarksFromTheSource
from tap_disruptive.testing import tap_config
from tests.support.tap_runs import TAP, messages, run_tap


@pytest.mark.parametrize("name", sorted(SEAMS))
def test_each_seam_is_where_the_sdk_had_it(name: str) -> None:
    owner, parameters = SEAMS[name]
    member = getattr(owner, name, None)
    assert callable(member), f"the SDK's {owner.__name__}.{name} is gone"
    assert tuple(inspect.signature(member).parameters) == parameters, f"{owner.__name__}.{name} changed"


class Counting(Stream):
    """A toy stream whose records' times run ahead of what its source says is complete."""

    name = "counting"
    replication_key = "at"
    schema = th.PropertiesList(th.Property("at", th.StringType)).to_dict()

    def get_records(self, context: Any) -> Any:
        for second in range(3):
            yield {"at": f"2026-01-01T00:00:0{second}Z"}


class SourceBookmarked(BookmarksFromTheSource, Counting):
    pass


class ToyTap(Tap):
    name = "toy"
    config_jsonschema = th.PropertiesList().to_dict()
    streams_class: type[Stream] = Counting

    def discover_streams(self) -> list[Stream]:
        return [self.streams_class(self)]


def final_bookmark(stream_class: type[Stream], capsys: pytest.CaptureFixture[str]) -> Any:
    tap = type("Tap", (ToyTap,), {"streams_class": stream_class})(config={})
    tap.sync_all()
    states = [m["value"] for m in messages(capsys.readouterr().out) if m["type"] == "STATE"]
    return states[-1]["bookmarks"]["counting"].get("replication_key_value")


def test_the_sdk_moves_bookmarks_from_record_values_where_the_seam_stops_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without the seam the SDK takes the largest record value as the bookmark; with it, nothing does.
    assert final_bookmark(Counting, capsys) == "2026-01-01T00:00:02Z"
    assert final_bookmark(SourceBookmarked, capsys) is None


def test_the_sdk_hands_sigterm_to_the_handler_the_tap_overrides() -> None:
    tap = TapDisruptive(config=tap_config_stub())
    handler = signal.getsignal(signal.SIGTERM)
    assert getattr(handler, "__func__", None) is TapDisruptive._handle_termination
    handler(signal.SIGTERM, None)  # type: ignore[operator, misc]
    assert tap.stop_requested.is_set()  # a flag, no exit: the run ends at its next checkpoint


def test_the_tap_writes_through_its_own_writer() -> None:
    assert isinstance(TapDisruptive(config=tap_config_stub()).message_writer, SingerLineWriter)


def tap_config_stub() -> dict[str, Any]:
    return {
        "project_ids": ["c0demoproject0000000"],
        "key_id": "c0demokey00000000000",
        "key_secret": "a-secret-of-proper-length-0000000000000",
        "email": "sa@c0demoproject0000000.serviceaccount.d21s.com",
    }


def test_the_batched_path_writes_what_the_sdks_own_path_writes(tmp_path: Path) -> None:
    with EmulatorProcess("--rate", "0", "--history-span", "1800", "--history-interval", "60") as emulator:
        config = tap_config(emulator, live=False, start_date="2000-01-01T00:00:00Z")
        # A stream map that changes nothing still sends the records through the SDK's own path.
        mapped = {**config, "stream_maps": {"events": {"event_id": "event_id"}}}
        batched, through_sdk = (run_tap(settings, tmp_path) for settings in (config, mapped))
    assert batched.returncode == 0 and through_sdk.returncode == 0, batched.stderr[-2000:]

    def records(stdout: str) -> list[dict[str, Any]]:
        found = [m for m in messages(stdout) if m["type"] == "RECORD" and m["stream"] == "events"]
        assert all(m["time_extracted"].endswith("Z") for m in found)
        return sorted((m["record"] for m in found), key=lambda record: record["event_id"])

    written = records(batched.stdout)
    assert len(written) == 24 * 30
    assert written == records(through_sdk.stdout)


def test_the_sdk_command_still_reads_state_and_catalog_as_the_tap_hands_them() -> None:
    # CheckedInputs replaces the SDK's --state and --catalog options and builds its _ConfigInput.
    sdk_command = Tap.get_singer_command.__func__(TapDisruptive)  # type: ignore[attr-defined]
    names = {param.name for param in sdk_command.params}
    assert {"state", "catalog", "config"} <= names
    assert {"config", "parse_env"} <= set(_ConfigInput.__dataclass_fields__)
    assert "state" in inspect.signature(Tap.invoke).parameters


def test_plain_about_describes_every_setting() -> None:
    result = subprocess.run([str(TAP), "--about"], capture_output=True, text=True, timeout=60, check=True)
    for name, definition in TapDisruptive.config_jsonschema["properties"].items():
        block = result.stdout.split(f"  - Name: {name}\n", 1)[1].split("  - Name: ", 1)[0]
        assert f"    Description: {definition['description']}" in block, name
