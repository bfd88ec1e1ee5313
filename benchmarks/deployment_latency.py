"""Publish-to-DAG-run latency in a real Airflow deployment (api-server, scheduler, dag-processor and
triggerer as processes, LocalExecutor, SQLite): touches of the example touch DAG's button, each timed
from its publish on the emulator to its asset event and to the DAG run that takes it (median, p99).
`trigger_latency` measures the trigger alone (publish to TriggerEvent, in-process) for comparison.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import airflow_connection, wait_until
from tests.support.airflow_deployment import AirflowDeployment
from tests.support.services import ROOT

TOUCHES = 30
GAP = 2.0
ASSET = "disruptive_coffee_button"
DAG_ID = "disruptive_touch_scheduled"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmulatorProcess("--rate", "0", "--history-span", "0") as emulator,
    ):
        dags = Path(tmp) / "dags"
        dags.mkdir()
        shutil.copy(ROOT / "airflow_provider" / "example_dags" / "touch_scheduled.py", dags)
        button = emulator.create_device("touch", {"button": "coffee"})
        connections = {"disruptive_default": airflow_connection(emulator)}
        with AirflowDeployment(dags, connections=connections) as airflow:
            airflow.wait_for_watchers(1)
            assert wait_until(lambda: emulator.status()["open_streams"] >= 1, timeout=120)
            time.sleep(15)  # past the stream's first re-read of history: the steady state
            published: dict[str, datetime] = {}
            position = emulator.ledger_position()
            for _ in range(TOUCHES):
                at = datetime.now(UTC)
                emulator.publish(button, "touch")
                (event,), position = emulator.ledger(after=position, device_ids=button)
                published[event["eventId"]] = at
                time.sleep(GAP)

            def all_taken() -> bool:
                taken = {
                    e.payload["event"]["eventId"] for run in airflow.dag_runs(DAG_ID) for e in run.events
                }
                return set(published) <= taken

            assert wait_until(all_taken, timeout=120), "not every touch reached a DAG run"
            to_event = {
                event.payload["event"]["eventId"]: (
                    event.timestamp - published[event.payload["event"]["eventId"]]
                )
                for event in airflow.asset_events(ASSET)
            }
            to_run = {
                e.payload["event"]["eventId"]: (run.queued_at or run.start_date or e.timestamp)
                - published[e.payload["event"]["eventId"]]
                for run in airflow.dag_runs(DAG_ID)
                for e in run.events
            }
    event_seconds = [delta.total_seconds() for delta in to_event.values()]
    run_seconds = [delta.total_seconds() for delta in to_run.values()]
    print(f"{TOUCHES} touches {GAP:g} s apart, on a real deployment (2 shared cores):")
    for what, values in (
        ("publish -> asset event", event_seconds),
        ("publish -> DAG run queued", run_seconds),
    ):
        print(
            f"  {what}: median {statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s, "
            f"max {max(values):.2f} s"
        )


if __name__ == "__main__":
    main()
