"""DT's official client (disruptive 1.7.3) pointed at an emulator: the baseline of our benchmarks."""

from __future__ import annotations

import disruptive

from tap_disruptive.emulator.process import EmulatorProcess


def use_official_client(emulator: EmulatorProcess) -> None:
    disruptive.base_url = emulator.api_url
    disruptive.emulator_base_url = emulator.api_url
    auth = disruptive.Auth.service_account(emulator.key_id, emulator.key_secret, emulator.email)
    auth.token_endpoint = emulator.token_url
    disruptive.default_auth = auth
