"""Running the tap as users do: the `tap-disruptive` console script, against an emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

TAP = Path(sys.executable).parent / "tap-disruptive"


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def run_tap(
    config: dict[str, Any], tmp: Path, state: dict[str, Any] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    args = [str(TAP), "--config", str(write_json(tmp / "config.json", config))]
    if state is not None:
        args += ["--state", str(write_json(tmp / "state.json", state))]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def messages(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def records(stdout: str, stream: str = "events") -> list[dict[str, Any]]:
    return [m["record"] for m in messages(stdout) if m["type"] == "RECORD" and m["stream"] == stream]


def last_state(stdout: str) -> dict[str, Any]:
    states = [m["value"] for m in messages(stdout) if m["type"] == "STATE"]
    assert states, "the tap wrote no STATE"
    state: dict[str, Any] = states[-1]
    return state


def bookmark(state: dict[str, Any], project_id: str) -> str:
    partitions = state["bookmarks"]["events"]["partitions"]
    (partition,) = [p for p in partitions if p["context"] == {"project_id": project_id}]
    value = str(partition["replication_key_value"])
    return value
