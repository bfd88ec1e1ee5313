"""Support for tests of pipelines built on tap-disruptive: the local emulator as a child process, and
the settings each tool needs to use it (the client, the tap, Meltano, Airflow).

    from tap_disruptive.testing import EmulatorProcess, tap_config

    with EmulatorProcess("--rate", "0") as emulator:
        device_id = emulator.create_device("temperature", {"name": "Freezer"})
        emulator.publish(device_id, "temperature", {"value": -18.5})
        config = tap_config(emulator, start_date="2026-01-01T00:00:00Z", idle_timeout=2)

`EmulatorProcess(latency=0.06, rate_limit=40)` answers as a remote DT would: each request 60 ms later,
at most 40 a second (the rest get DT's 429 with `Retry-After`; the helpers' own requests wait them out).
"""

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing.settings import (
    airflow_connection,
    client_settings,
    meltano_environment,
    tap_config,
)
from tap_disruptive.testing.waiting import wait_until

__all__ = [
    "EmulatorProcess",
    "airflow_connection",
    "client_settings",
    "meltano_environment",
    "tap_config",
    "wait_until",
]
