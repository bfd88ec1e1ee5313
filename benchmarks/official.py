"""DT's official client (disruptive 1.7.3) pointed at an emulator: the baseline of our benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import disruptive

from tap_disruptive.emulator.process import EmulatorProcess


def use_official_client(emulator: EmulatorProcess) -> None:
    use_official_client_at(emulator.info)


def use_official_client_at(info: Mapping[str, Any]) -> None:
    """The same from the emulator's start-up line, as a benchmark's child process is given it."""
    disruptive.base_url = info["api_url"]
    disruptive.emulator_base_url = info["api_url"]
    auth = disruptive.Auth.service_account(info["key_id"], info["key_secret"], info["email"])
    auth.token_endpoint = info["token_url"]
    disruptive.default_auth = auth
