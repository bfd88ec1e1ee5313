"""The Airflow provider's example DAGs on a real Airflow deployment against the emulator: api-server,
scheduler, dag-processor and triggerer as processes (LocalExecutor, SQLite in a throwaway home).

It starts both, waits for the asset watchers, triggers the door and freezer DAGs, then publishes a
round of sensor events every few seconds: touches of a `button=coffee` device (each runs
disruptive_touch_scheduled) and of a `button=tea` one (runs nothing), doors opening and closing
(collected by disruptive_door_openings), a freezer warming up (fires disruptive_freezer_alert) and a
water leak (runs disruptive_water_leaks). It prints the DAG runs as they appear and finish, a summary,
and stops everything: at the end, on Ctrl-C or on SIGTERM. About two minutes on two cores.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the deployment harness lives with the tests, in tests/support

from tap_disruptive.emulator.process import EmulatorProcess  # noqa: E402
from tap_disruptive.testing import airflow_connection, wait_until  # noqa: E402
from tests.support.airflow_deployment import AirflowDeployment, DagRun  # noqa: E402
from tests.support.emulators import list_devices  # noqa: E402

EXAMPLES = ROOT / "airflow_provider" / "example_dags"
TOUCH_DAG, DOOR_DAG, FREEZER_DAG, LEAK_DAG = (
    "disruptive_touch_scheduled",
    "disruptive_door_openings",
    "disruptive_freezer_alert",
    "disruptive_water_leaks",
)
DAGS = (TOUCH_DAG, DOOR_DAG, FREEZER_DAG, LEAK_DAG)
TOUCH_ASSET = "disruptive_coffee_button"
ROUNDS = 10
ROUND_SECONDS = 3.0
# The door DAG collects for this long from when its task starts: inside the rounds, short enough to end.
DOOR_WINDOW_SECONDS = 25
FINISH_TIMEOUT = 150.0


class Interrupted(Exception):
    """SIGTERM, handled like Ctrl-C: everything started is stopped on the way out."""


def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise Interrupted


def device(emulator: EmulatorProcess, device_type: str, labels: dict[str, str]) -> str:
    """A device of that type with those labels: the first the emulator has, or a new one."""
    selector = ",".join(f"{key}={value}" for key, value in labels.items())
    found = list_devices(emulator, label_filters=selector, device_types=device_type)
    if found:
        return str(found[0]["name"]).rsplit("/", 1)[-1]
    return emulator.create_device(device_type, labels)


class RunWatcher:
    """Prints each DAG run when it appears and when it finishes."""

    def __init__(self, airflow: AirflowDeployment, started: float) -> None:
        self.airflow = airflow
        self.started = started
        self.states: dict[tuple[str, str], str] = {}

    def poll(self) -> None:
        for dag_id in DAGS:
            for run in self.airflow.dag_runs(dag_id):
                key = (dag_id, run.run_id)
                if key not in self.states:
                    self.say(f"run of {dag_id} ({run.run_type}){describe_events(run)}: {run.state}")
                elif run.state != self.states[key] and run.finished:
                    self.say(f"run of {dag_id} {run.state}{self.result(dag_id, run)}")
                self.states[key] = run.state

    def watch(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
            time.sleep(0.5)

    def result(self, dag_id: str, run: DagRun) -> str:
        task = {DOOR_DAG: "summarise", FREEZER_DAG: "alert", TOUCH_DAG: "brew"}.get(dag_id)
        value = self.airflow.xcom(dag_id, run.run_id, task) if task and run.state == "success" else None
        return f": {value}" if value is not None else ""

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f} s] {text}", flush=True)


def describe_events(run: DagRun) -> str:
    fired = []
    for event in run.events:
        payload: dict[str, Any] = event.payload if isinstance(event.payload, dict) else {}
        touched = payload.get("event") or {}
        fired.append(f"{touched.get('eventType', '?')} {touched.get('eventId', '?')}")
    return f", triggered by {', '.join(fired)}" if fired else ""


def publish_round(emulator: EmulatorProcess, devices: dict[str, str], number: int) -> list[str]:
    """Round `number`'s events; what was published, in words."""
    said = []
    emulator.publish(devices["coffee"], "touch")
    said.append("touch coffee")
    if number % 2 == 0:
        emulator.publish(devices["tea"], "touch")
        said.append("touch tea")
    door, state = ("front", "OPEN" if number % 2 else "CLOSED") if number % 3 else ("back", "OPEN")
    emulator.publish(devices[door], "contact", {"state": state})
    said.append(f"{door} door {state}")
    celsius = -20.0 if number < 4 else -12.0 + number / 2
    emulator.publish(devices["freezer"], "temperature", {"value": celsius})
    said.append(f"freezer {celsius} °C")
    if number in (2, 6):
        leak = "PRESENT" if number == 6 else "NOT_PRESENT"
        emulator.publish(devices["leak"], "waterPresent", {"state": leak})
        said.append(f"water {leak}")
    return said


def finished(airflow: AirflowDeployment, touches: int) -> bool:
    """Every touch taken by a finished run, and one finished run of each other DAG."""
    touch_runs = [run for run in airflow.dag_runs(TOUCH_DAG) if run.events]
    taken = sum(len(run.events) for run in touch_runs)
    return (
        taken >= touches
        and all(run.finished for run in touch_runs)
        and all(any(run.finished for run in airflow.dag_runs(dag_id)) for dag_id in DAGS[1:])
    )


def summary(airflow: AirflowDeployment, touches: list[str], tea: str) -> bool:
    events = [(event.payload or {}).get("event", {}) for event in airflow.asset_events(TOUCH_ASSET)]
    fired = [event.get("eventId") for event in events]
    runs = {dag_id: airflow.dag_runs(dag_id) for dag_id in DAGS}
    in_runs = [
        (event.payload or {}).get("event", {}).get("eventId")
        for run in runs[TOUCH_DAG]
        for event in run.events
    ]
    print("\nSummary")
    print(
        f"  coffee touches published: {len(touches)}, asset events: {len(fired)}, "
        f"taken by {len(runs[TOUCH_DAG])} runs of {TOUCH_DAG}"
    )
    ok = fired == touches and in_runs == touches
    print(f"  each touch fired once, in order, and ran the DAG once: {ok}")
    ignored = all(event.get("device_id") != tea for event in events)
    print(f"  touches of the button=tea device ran nothing: {ignored}")
    ok = ok and ignored
    for dag_id in DAGS[1:]:
        states = [run.state for run in runs[dag_id]]
        print(f"  {dag_id}: runs {states}")
        ok = ok and "success" in states
    return ok


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    try:
        return demo(started)
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted: Airflow and the emulator are stopped", file=sys.stderr)
        return 130


def demo(started: float) -> int:
    print(
        "Starting the emulator and Airflow (api-server, scheduler, dag-processor, triggerer)...", flush=True
    )
    with EmulatorProcess("--rate", "0", "--history-span", "0") as emulator:
        devices = {
            "coffee": device(emulator, "touch", {"button": "coffee"}),
            "tea": device(emulator, "touch", {"button": "tea"}),
            "front": device(emulator, "contact", {"door": "front"}),
            "back": device(emulator, "contact", {"door": "back"}),
            "freezer": device(emulator, "temperature", {"kind": "freezer"}),
            "leak": device(emulator, "waterDetector", {"room": "basement"}),
        }
        settings = {"DOOR_WINDOW_SECONDS": str(DOOR_WINDOW_SECONDS), "FREEZER_WAIT_SECONDS": "180"}
        connections = {"disruptive_default": airflow_connection(emulator)}
        with AirflowDeployment(EXAMPLES, connections=connections, environment=settings) as airflow:
            watcher = RunWatcher(airflow, started)
            watcher.say(f"emulator {emulator.api_url}; Airflow UI {airflow.api_url} (no login)")
            watcher.say(f"process logs in {airflow.logs}; Ctrl-C stops everything")
            running = airflow.wait_for_watchers(2)
            watcher.say(f"asset watchers running: {', '.join(w.name for w in running)}")
            wait_until(lambda: emulator.status()["open_streams"] >= 1, timeout=90, interval=0.2)
            watcher.say("the triggerer streams the project's events")
            for dag_id in (DOOR_DAG, FREEZER_DAG):
                airflow.trigger_dag(dag_id)
                watcher.say(f"triggered {dag_id}")
            touches = []
            for number in range(1, ROUNDS + 1):
                said = publish_round(emulator, devices, number)
                touches.append(emulator.ledger(device_ids=devices["coffee"])[0][-1]["eventId"])
                watcher.say(f"round {number}: {', '.join(said)}")
                watcher.watch(ROUND_SECONDS)
            watcher.say("all published; waiting for the runs to finish")
            deadline = time.monotonic() + FINISH_TIMEOUT
            while not finished(airflow, len(touches)) and time.monotonic() < deadline:
                watcher.watch(1)
            watcher.poll()
            ok = summary(airflow, touches, devices["tea"])
            watcher.say("stopping Airflow and the emulator")
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
