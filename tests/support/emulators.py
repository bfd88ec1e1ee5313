"""Emulators for tests: the arguments of a quiet one, the fixture's type, and reading its device list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tap_disruptive.emulator.process import EmulatorProcess

# A quiet emulator: no simulated traffic, so every event in a test is one the test published.
QUIET = ("--rate", "0", "--history-span", "0", "--indexing-delay", "0.2")

StartEmulator = Callable[..., EmulatorProcess]


def list_devices(emulator: EmulatorProcess, **params: Any) -> list[dict[str, Any]]:
    """Every device the emulator lists (its paging followed), as DT's JSON resources."""
    url = f"{emulator.api_url}/projects/{emulator.project_id}/devices"
    found: list[dict[str, Any]] = []
    token = ""
    while True:
        response = emulator.http.get(url, params={**params, "page_token": token}, timeout=30)
        response.raise_for_status()
        page = response.json()
        found += page["devices"]
        token = page["nextPageToken"]
        if not token:
            return found
