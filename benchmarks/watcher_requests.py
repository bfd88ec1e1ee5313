"""What asset watchers cost DT: requests per firing and per hour for 1, 10 and 100 watchers on one
project, each watching its own button, as Airflow's triggerer runs them (in-process here: Airflow's own
SharedStreamManager, events stored a second after they fire, a watcher whose run() ends re-created).

`python -m benchmarks watcher_requests [TREE]`: TREE (a checkout of an earlier version, with its own
`airflow_provider`) runs the same watchers for comparison; the emulator, which counts the requests, is
this tree's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import airflow_connection

WATCHERS = tuple(int(n) for n in os.environ.get("WATCHER_COUNTS", "1,10,100").split(","))
TOUCHES = 30
SECONDS = 50.0
# Before the touches: the streams open, and the re-read of history after each opening (DT's indexing
# delay, 12 s) is done, so that what follows is the steady cost.
SETTLE = 22.0

# Runs in a child process whose PYTHONPATH starts with the tree under test.
HARNESS = r"""
import asyncio, json, os, sys, time
from airflow.triggers.shared_stream import SharedStreamManager
from airflow_provider.triggers.disruptive import DisruptiveEventTrigger

class Store:
    def __init__(self): self.values = {}
    async def aget(self, key, default=None): return self.values.get(key, default)
    async def aset(self, key, value): self.values[key] = value

async def main(count, seconds):
    manager = SharedStreamManager(ack_timeout=60.0)
    pending, fired = [], [0]

    def watcher(index, store):
        trigger = DisruptiveEventTrigger(event_types=["touch"], label_filters={"button": f"b{index}"})
        trigger.asset_state_store = store
        return trigger

    async def life(index):
        store = Store()
        while True:  # Airflow re-creates a watcher whose run() ends
            trigger = watcher(index, store)
            key = trigger.shared_stream_key()
            if key is None:
                async for event in trigger.run():
                    pending.append(None)
                continue
            stream = manager.subscribe(trigger_id=index, trigger=trigger, key=key)
            try:
                async for event in trigger.filter_shared_stream(stream):
                    pending.append(manager.bind_pending_event(trigger_id=index, key=key))
            finally:
                await manager.unsubscribe(index, key)

    async def supervisor():
        while True:
            await asyncio.sleep(1.0)
            stored = pending[:]
            del pending[:]
            fired[0] += len(stored)
            manager.confirm_persisted([seq for seq in stored if seq is not None])

    tasks = [asyncio.ensure_future(life(i)) for i in range(count)]
    tasks.append(asyncio.ensure_future(supervisor()))
    print("READY", flush=True)
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await manager.stop_all()
    print("FIRED", fired[0] + len(pending), flush=True)

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
"""


def run_watchers(emulator: EmulatorProcess, tree: Path, count: int, devices: list[str]) -> dict[str, Any]:
    """Run `count` watchers from `tree` while touches are published; the requests they made."""
    connection = json.loads(airflow_connection(emulator))
    connection["extra"]["token_url"] = emulator.token_url  # the field's name in earlier versions
    env = {**os.environ, "PYTHONPATH": str(tree), "AIRFLOW_CONN_DISRUPTIVE_DEFAULT": json.dumps(connection)}
    before = emulator.status()["requests"]
    child = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(count), str(SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tree,
    )
    assert child.stdout is not None
    while child.stdout.readline().strip() != "READY":  # Airflow may log to stdout first
        pass
    # Let the watchers open their streams, then touch each watched button in turn.
    time.sleep(SETTLE)
    opened = emulator.status()["requests"]
    started = time.monotonic()
    for touch in range(TOUCHES):
        emulator.publish(devices[touch % count], "touch")
        time.sleep((SECONDS - SETTLE - 6.0) / TOUCHES)
    (fired_line,) = [line for line in child.stdout.read().splitlines() if line.startswith("FIRED ")]
    fired = int(fired_line.split()[1])
    child.wait()
    elapsed = time.monotonic() - started
    after = emulator.status()["requests"]
    start_up, steady = _made(before, opened), _made(opened, after)
    return {
        "watchers": count,
        "fired": fired,
        "start_up": sum(start_up.values()),
        "steady": sum(steady.values()),
        "by_kind": {kind: n for kind, n in sorted(steady.items()) if n},
        "per_firing": sum(steady.values()) / max(fired, 1),
        "per_hour": sum(steady.values()) / elapsed * 3600,
    }


def _made(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests to DT's API between two readings of the emulator's counts (publishes are ours)."""
    made = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in set(after) | set(before)}
    made.pop("publish", None)
    return made


def main(tree: str | None = None) -> None:
    trees = {"this tree": Path.cwd()}
    if tree:
        trees["given tree"] = Path(tree).resolve()
    rows = []
    for count in WATCHERS:
        with EmulatorProcess("--rate", "0", "--devices", "1", "--history-span", "0") as emulator:
            devices = [emulator.create_device("touch", {"button": f"b{index}"}) for index in range(count)]
            for name, path in trees.items():
                row = run_watchers(emulator, path, count, devices)
                rows.append({"tree": name, **row})
                print(json.dumps(rows[-1]), flush=True)
    print(f"{TOUCHES} touches, each watcher on its own button; requests to DT's API:")
    for row in rows:
        print(
            f"  {row['tree']:>10}, {row['watchers']:>3} watchers: {row['start_up']:>4} to start; then "
            f"{row['fired']:>3} fired with {row['steady']:>4} requests ({row['per_firing']:.1f} per firing, "
            f"{row['per_hour']:,.0f} per hour at this rate) {row['by_kind']}"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
