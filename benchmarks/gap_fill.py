"""Gap fill over 1,000 devices: our concurrent history reads against the official client's loop.

The emulator holds 1,000 devices with a reading every 30 s for the last 10 minutes. Both read every
device's history for the last 5 minutes: ours with `history_concurrency` requests in flight over a
pooled session, the official client one `EventHistory.list_events` call after another.
"""

from __future__ import annotations

import time

import disruptive

from benchmarks.official import use_official_client
from tap_disruptive.drivers.sync import DisruptiveClient
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.protocol.settings import ClientSettings, Credentials

DEVICES = 1000


def main() -> None:
    args = ("--rate", "0", "--devices", str(DEVICES), "--history-span", "600", "--history-interval", "30")
    with EmulatorProcess(*args) as emulator:
        use_official_client(emulator)
        start = format_timestamp(time.time() - 300)
        device_ids = [device["name"].rsplit("/", 1)[-1] for device in emulator.devices()]
        assert len(device_ids) == DEVICES

        started = time.perf_counter()
        official_events = 0
        for device_id in device_ids:
            official_events += len(
                disruptive.EventHistory.list_events(device_id, emulator.project_id, start_time=start)
            )
        official_seconds = time.perf_counter() - started

        credentials = Credentials(emulator.key_id, emulator.key_secret, emulator.email)
        settings = ClientSettings(credentials, api_url=emulator.api_url, token_url=emulator.token_url)
        with DisruptiveClient(settings) as client:
            client.project(emulator.project_id)  # fetch the token outside the measurement, as above
            started = time.perf_counter()
            ours = client.history(emulator.project_id, device_ids, start)
            our_seconds = time.perf_counter() - started
    assert len(ours) == official_events, (len(ours), official_events)
    print(
        f"gap fill of {DEVICES:,} devices ({official_events:,} events): "
        f"official loop {official_seconds:.2f} s, "
        f"ours {our_seconds:.2f} s with {settings.history_concurrency} in flight; "
        f"ratio {official_seconds / our_seconds:.2f}x faster"
    )


if __name__ == "__main__":
    main()
