"""The Airflow trigger: latency from a publish on the emulator to the trigger's event (median and 99th
percentile), against a bare aiohttp reader of the same stream in the same run; and how many triggers one
event loop holds, with memory per trigger, all firing on one published event."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import aiohttp

from airflow_provider.triggers.disruptive import DisruptiveEventTrigger
from benchmarks.measure import rss_bytes
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import airflow_connection

ROUNDS = 100
# How many triggers run at once in the second part (TRIGGER_LATENCY_CONCURRENT="" skips it): each runs on
# its own (run(), its own stream), as it would outside a triggerer.
CONCURRENT = tuple(
    int(n) for n in os.environ.get("TRIGGER_LATENCY_CONCURRENT", "50,200,1000").split(",") if n
)


async def status(emulator: EmulatorProcess, session: aiohttp.ClientSession) -> dict[str, Any]:
    async with session.get(f"{emulator.base_url}/_emulator/status") as answer:
        result: dict[str, Any] = await answer.json()
        return result


async def connected(emulator: EmulatorProcess, session: aiohttp.ClientSession, served: int) -> None:
    """Wait until the emulator has served `served` stream connections in all."""
    while (await status(emulator, session))["connections_served"] < served:  # noqa: ASYNC110 - polling another process
        await asyncio.sleep(0.02)


async def publish(emulator: EmulatorProcess, session: aiohttp.ClientSession, device_id: str) -> None:
    url = f"{emulator.api_url}/projects/{emulator.project_id}/devices/{device_id}:publish"
    async with session.post(url, json={"touch": {}}) as answer:
        answer.raise_for_status()


async def bare_latencies(
    emulator: EmulatorProcess, session: aiohttp.ClientSession, device_id: str
) -> list[float]:
    """The floor: a plain reader of the stream, waiting for the published event's line."""
    url = f"{emulator.api_url}/projects/{emulator.project_id}/devices:stream"
    latencies = []
    served = (await status(emulator, session))["connections_served"]
    async with session.get(
        url, params={"event_types": "touch"}, timeout=aiohttp.ClientTimeout(total=None)
    ) as stream:
        await connected(emulator, session, served + 1)
        for _ in range(ROUNDS):
            started = time.perf_counter()
            await publish(emulator, session, device_id)
            while b'"touch"' not in await stream.content.readline():
                pass
            latencies.append(time.perf_counter() - started)
    return latencies


async def trigger_latencies(
    emulator: EmulatorProcess, session: aiohttp.ClientSession, device_id: str
) -> list[float]:
    latencies = []
    for _ in range(ROUNDS):
        trigger = DisruptiveEventTrigger(event_types=["touch"], device_ids=[device_id])
        served = (await status(emulator, session))["connections_served"]
        waiting = asyncio.ensure_future(trigger.run().__anext__())
        await connected(emulator, session, served + 1)
        started = time.perf_counter()
        await publish(emulator, session, device_id)
        await waiting
        latencies.append(time.perf_counter() - started)
    return latencies


async def concurrent(
    emulator: EmulatorProcess, session: aiohttp.ClientSession, device_id: str, count: int
) -> str:
    before = rss_bytes(os.getpid())
    triggers = [DisruptiveEventTrigger(event_types=["touch"], device_ids=[device_id]) for _ in range(count)]
    served = (await status(emulator, session))["connections_served"]
    waiting = [asyncio.ensure_future(trigger.run().__anext__()) for trigger in triggers]
    await connected(emulator, session, served + count)
    held = rss_bytes(os.getpid()) - before
    started = time.perf_counter()
    await publish(emulator, session, device_id)
    fired = await asyncio.gather(*waiting)
    elapsed = time.perf_counter() - started
    assert all(event.payload["status"] == "success" for event in fired)
    return (
        f"{count} triggers in one event loop: {held / count / 1024:,.0f} KiB each while waiting; "
        f"one publish fired all {count} in {elapsed * 1000:,.0f} ms"
    )


def summary(bare: list[float], ours: list[float]) -> str:
    bare_ms, our_ms = statistics.median(bare) * 1000, statistics.median(ours) * 1000
    return (
        f"bare stream reader median {bare_ms:.1f} ms, p99 {percentile(bare, 0.99) * 1000:.1f} ms; "
        f"trigger median {our_ms:.1f} ms, p99 {percentile(ours, 0.99) * 1000:.1f} ms; "
        f"ratio of medians {our_ms / bare_ms:.2f}"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    with EmulatorProcess("--rate", "0", "--history-span", "0") as emulator:
        os.environ["AIRFLOW_CONN_DISRUPTIVE_DEFAULT"] = airflow_connection(emulator)
        device_id = emulator.create_device("touch")

        async def run() -> list[str]:
            headers = {"Authorization": aiohttp.encode_basic_auth(emulator.key_id, emulator.key_secret)}
            async with aiohttp.ClientSession(headers=headers) as session:
                bare = await bare_latencies(emulator, session, device_id)
                ours = await trigger_latencies(emulator, session, device_id)
                lines = [f"publish -> event, {ROUNDS} rounds: " + summary(bare, ours)]
                for count in CONCURRENT:
                    lines.append(await concurrent(emulator, session, device_id, count))
                return lines

        for line in asyncio.run(run()):
            print(line)


if __name__ == "__main__":
    main()
