"""Stream throughput: our follower against DT's official `Stream.event_stream` on the same fast feed.

Both consume the emulator's fast feed (every event, no filter) for the same window, one after the other,
in this process. The feed itself tops out near 50-60,000 events/s here, so wall-clock rates of a client
faster than that only show the feed; the capacity of each client is its events per CPU-second of this
process, and the ratio of those capacities is the figure that counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import disruptive

from benchmarks.official import use_official_client
from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.client.protocol.settings import ClientSettings, Credentials
from tap_disruptive.emulator.process import EmulatorProcess

FEED_RATE = 60_000
WINDOW = 10.0


def measure(counts: Iterator[int], window: float = WINDOW) -> tuple[float, float, int]:
    """(events/s wall clock, events per CPU-second, events) over `window` seconds after the first event."""
    events, started, cpu_started = 0, 0.0, 0.0
    for count in counts:
        if not started:
            started, cpu_started = time.perf_counter(), time.process_time()
            continue
        events += count
        if time.perf_counter() - started >= window:
            break
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return events / wall, events / cpu, events


def main() -> None:
    with EmulatorProcess("--rate", str(FEED_RATE), "--history-span", "0", "--devices", "1000") as emulator:
        use_official_client(emulator)

        def official() -> Iterator[int]:
            for _event in disruptive.Stream.event_stream(emulator.project_id):
                yield 1

        credentials = Credentials(emulator.key_id, emulator.key_secret, emulator.email)
        settings = ClientSettings(credentials, api_url=emulator.api_url, token_url=emulator.token_url)
        with DisruptiveClient(settings) as client:
            stream = client.follow(emulator.project_id)

            def ours() -> Iterator[int]:
                for delivery in stream.deliveries():
                    yield len(delivery.events)

            base_wall, base_cpu, base_n = measure(official())
            our_wall, our_cpu, our_n = measure(ours())
            stream.close()
    print(
        f"official client: {base_wall:,.0f} events/s wall, {base_cpu:,.0f} events/CPU-s ({base_n:,} events)\n"
        f"our follower:    {our_wall:,.0f} events/s wall, {our_cpu:,.0f} events/CPU-s ({our_n:,} events)\n"
        f"ratio (ours / official): {our_cpu / base_cpu:.2f}x by capacity (events per CPU-second), "
        f"{our_wall / base_wall:.2f}x by wall clock on a {FEED_RATE:,}/s feed"
    )


if __name__ == "__main__":
    main()
