"""What each tool needs to reach an emulator: built here, so that the emulator knows none of them."""

from __future__ import annotations

import json
from typing import Any

from tap_disruptive.client.protocol.settings import ClientSettings, Credentials
from tap_disruptive.emulator.process import EmulatorProcess


def client_settings(emulator: EmulatorProcess, basic_auth: bool = False, **overrides: Any) -> ClientSettings:
    """The client's settings for the emulator; `overrides` are other `ClientSettings` fields."""
    credentials = Credentials(emulator.key_id, emulator.key_secret, emulator.email, basic_auth=basic_auth)
    return ClientSettings(credentials, api_url=emulator.api_url, token_url=emulator.token_url, **overrides)


def tap_config(emulator: EmulatorProcess, **settings: Any) -> dict[str, Any]:
    """A tap-disruptive config for the emulator's first project, with any other settings given."""
    return {
        "project_ids": [emulator.project_id],
        "key_id": emulator.key_id,
        "key_secret": emulator.key_secret,
        "email": emulator.email,
        "api_url": emulator.api_url,
        "token_url": emulator.token_url,
        **settings,
    }


def meltano_environment(emulator: EmulatorProcess) -> dict[str, str]:
    """The variables meltano.yml's `emulator` environment reads."""
    return {
        "DT_EMULATOR_PROJECT_ID": emulator.project_id,
        "DT_EMULATOR_KEY_ID": emulator.key_id,
        "DT_EMULATOR_KEY_SECRET": emulator.key_secret,
        "DT_EMULATOR_EMAIL": emulator.email,
        "DT_EMULATOR_API_URL": emulator.api_url,
        "DT_EMULATOR_TOKEN_URL": emulator.token_url,
    }


def airflow_connection(emulator: EmulatorProcess) -> str:
    """An Airflow connection of type `disruptive` for the emulator, as JSON for AIRFLOW_CONN_<ID>."""
    extra = {
        "email": emulator.email,
        "project_id": emulator.project_id,
        "api_url": emulator.api_url,
        "identity_url": emulator.token_url,
    }
    connection = {"conn_type": "disruptive", "login": emulator.key_id, "password": emulator.key_secret}
    return json.dumps({**connection, "extra": extra})
