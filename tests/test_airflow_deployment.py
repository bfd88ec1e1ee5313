"""The touch example DAG on a real Airflow deployment (api-server, scheduler, dag-processor and
triggerers as processes; see tests/support/airflow_deployment.py) against the emulator: every touch of
a `button=coffee` device becomes exactly one asset event, in time order, and is taken by exactly one DAG
run, through quick bursts, a graceful triggerer restart, a triggerer crash, and a standby triggerer
taking over from a crashed one.

One exception, which Airflow's API leaves no way around: a touch stored by Airflow in the last seconds
before its triggerer stops, not yet acknowledged to the trigger (Airflow acknowledges on the next round,
about a second later, and a stopping triggerer has none), fires again after the restart. The tests stop
triggerers right after a firing on purpose, and allow a second asset event to the touches stored from
ACK_WINDOW seconds before a stop signal to the triggerer's exit, and to no other.

Airflow gives a DAG run all the asset events queued since the previous run: a burst may become fewer
runs than touches, each touch still in exactly one of them. So what is compared with the touches is the
asset events, and the triggering events of the runs taken in order.

Cost on 2 shared cores (the watcher runs ~10 s after start, its DT stream opens ~7 s later; the first
touch after a stream opens fired only after 10-13 s): one deployment through every phase, plus 4-8 s once
per process to migrate the template database. A touch that never fires costs up to 90 s of waiting, unless
a later touch fires first.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.receiver.process import ReceiverProcess
from tap_disruptive.testing import airflow_connection, wait_until
from tests.support.airflow_deployment import KEEP_HOME_VARIABLE, AirflowDeployment, DagRun
from tests.support.emulators import QUIET, StartEmulator
from tests.support.services import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DAG_ID = "disruptive_touch_scheduled"
ASSET = "disruptive_coffee_button"
TOUCH_DAG = ROOT / "airflow_provider" / "example_dags" / "touch_scheduled.py"
SPOOL_DAG_ID = "disruptive_spool_touches"
SPOOL_ASSET = "disruptive_spool_coffee_button"
SPOOL_DAG = ROOT / "airflow_provider" / "example_dags" / "spool_touches.py"
CONNECTOR_SECRET = "a-connector-signature-secret-for-tests-0123"

# Publish to asset event: the first touch after a start or a takeover waits for the trigger's stream.
FIRE_TIMEOUT = 90.0
RUNS_TIMEOUT = 120.0
# How long before a stop a stored event may be left unacknowledged (Airflow's round is about a second).
ACK_WINDOW = 3.0


@pytest.fixture
def touch_dags(tmp_path: Path) -> Path:
    """A DAG folder with the touch DAG alone: no other watcher of the example DAGs runs beside it."""
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(TOUCH_DAG, folder)
    return folder


class CoffeeButton:
    """Touches of a device labelled button=coffee (and of one labelled button=tea, which must never
    fire), and what the deployment made of them."""

    def __init__(
        self, emulator: EmulatorProcess, airflow: AirflowDeployment, asset: str = ASSET, dag_id: str = DAG_ID
    ) -> None:
        self.emulator = emulator
        self.airflow = airflow
        self.asset = asset
        self.dag_id = dag_id
        # Touches before this one are not owed (made before the watcher began to read).
        self.owed_from = 0
        self.device = emulator.create_device("touch", {"button": "coffee"})
        self.tea = emulator.create_device("touch", {"button": "tea"})
        self.position = emulator.ledger_position()
        self.touches: list[str] = []
        self.awaited = 0  # touches before this one were waited for already
        self.notes: list[str] = []
        # When triggerers were stopped: from the signal (less ACK_WINDOW) to the exit.
        self.stops: list[tuple[datetime, datetime]] = []

    def stop(self, triggerer: str, signum: int) -> int:
        """Stop a triggerer, noting when (see `in_flight`)."""
        signalled = datetime.now(UTC)
        code = self.airflow.stop_triggerer(triggerer, signum)
        self.stops.append((signalled - timedelta(seconds=ACK_WINDOW), datetime.now(UTC)))
        return code

    def in_flight(self) -> set[str]:
        """Touches whose first asset event was stored while a triggerer was stopping: these alone may
        have been stored without the trigger hearing of it."""
        first: dict[str, datetime] = {}
        for event in self.airflow.asset_events(self.asset):
            first.setdefault(_event_id(event.payload), event.timestamp)
        return {touch for touch, at in first.items() if any(start <= at <= end for start, end in self.stops)}

    def touch(self) -> str:
        """Touch the coffee button (and the tea one); the coffee touch's eventId."""
        self.emulator.publish(self.device, "touch")
        self.emulator.publish(self.tea, "touch")
        events, self.position = self.emulator.ledger(after=self.position, device_ids=self.device)
        (event,) = events
        self.touches.append(str(event["eventId"]))
        return self.touches[-1]

    def fired(self) -> list[str]:
        """The eventIds the asset's events carry (whatever the device), in time order."""
        return [_event_id(event.payload) for event in self.airflow.asset_events(self.asset)]

    def wait_fired(self, phase: str, timeout: float = FIRE_TIMEOUT) -> bool:
        """Wait until the touches since the last wait fired. A watcher fires in time order, so once the
        phase's last touch fired, an earlier one that did not is lost: no use waiting on. Noted rather
        than failed at once, so that a test goes on through every phase and reports them all."""
        started = time.monotonic()
        touches, self.awaited = self.touches[self.awaited :], len(self.touches)

        def settled() -> bool:
            fired = set(self.fired())
            return set(touches) <= fired or touches[-1] in fired

        settled_in_time = wait_until(settled, timeout=timeout, interval=0.25)
        elapsed = time.monotonic() - started
        missing = [touch for touch in touches if touch not in set(self.fired())]
        if not missing:
            self.notes.append(f"{phase}: {len(touches)} fired after {elapsed:.1f} s")
        elif settled_in_time:
            self.notes.append(f"{phase}: {missing} not fired, a later touch fired after {elapsed:.1f} s")
        else:
            self.notes.append(f"{phase}: {missing} not fired within {timeout:.0f} s")
        return not missing

    def has_fired(self, touch: str) -> bool:
        return touch in self.fired()

    def fired_in_log(self, triggerer: str, event_id: str) -> bool:
        """Whether the triggerer logged firing `event_id` (it logs each event it hands to Airflow)."""
        log = self.airflow.log_path(triggerer).read_text(errors="replace")
        return any("Trigger fired event" in line and event_id in line for line in log.splitlines())

    def check_exactly_once(self) -> None:
        """Every touch fired exactly once, in time order, and each one is in exactly one DAG run; but for
        the touches in flight at a stop, which may fire a second time (see the module's doc)."""
        touches = [str(event["eventId"]) for event in self.emulator.ledger(device_ids=self.device)[0]]
        assert touches == self.touches
        touches = touches[self.owed_from :]
        fired = self.fired()

        def consumed() -> list[DagRun]:
            return [run for run in self.airflow.dag_runs(self.dag_id) if run.events]

        def all_taken() -> bool:
            return sum(len(run.events) for run in consumed()) >= len(self.airflow.asset_events(self.asset))

        taken_in_time = wait_until(all_taken, timeout=RUNS_TIMEOUT, interval=0.5)
        runs = consumed()
        in_runs = [_event_id(event.payload) for run in runs for event in run.events]
        report = "\n".join(
            [
                *self.notes,
                f"touches ({len(touches)}): {touches}",
                f"fired ({len(fired)}): {fired}",
                f"never fired: {[t for t in touches if t not in fired]}",
                f"fired more than once: {[t for t, n in Counter(fired).items() if n > 1]}",
                f"fired but no coffee touch: {[f for f in fired if f not in touches]}",
                f"in DAG runs ({len(in_runs)} events, {len(runs)} runs): {in_runs}",
                f"every asset event taken by a run within {RUNS_TIMEOUT:.0f} s: {taken_in_time}",
                f"process logs: {self.airflow.logs} (kept with {KEEP_HOME_VARIABLE}=1)",
            ]
        )
        print(report)
        in_flight = self.in_flight()
        print(f"in flight at a stop: {sorted(in_flight)}")
        for seen, what in ((fired, "asset events"), (in_runs, "DAG runs' triggering events")):
            assert list(dict.fromkeys(seen)) == touches, f"the {what} are not the touches in order\n{report}"
            twice = {touch for touch, count in Counter(seen).items() if count > 1}
            assert twice <= in_flight and all(Counter(seen)[t] <= 2 for t in twice), (
                f"the {what} repeat a touch not in flight at a stop\n{report}"
            )


def _event_id(payload: object) -> str:
    """The eventId a watcher fired on, or the payload itself when it is no such event (an error)."""
    if isinstance(payload, dict) and payload.get("status") == "success":
        event = payload.get("event")
        if isinstance(event, dict) and "eventId" in event:
            return str(event["eventId"])
    return f"<payload {payload}>"


def touch_while_down_then_restart(button: CoffeeButton, triggerer: str, phase: str) -> None:
    """Two touches while no triggerer runs, a restart, and one touch once the watcher runs again."""
    button.touch()
    button.touch()
    restarting = time.monotonic()
    button.airflow.start_triggerer(triggerer)
    button.airflow.wait_for_watchers(1)
    button.notes.append(f"{phase}: watcher running after {time.monotonic() - restarting:.1f} s")
    button.touch()
    button.wait_fired(phase)


def crash_right_after_firing(button: CoffeeButton, triggerer: str) -> None:
    """Kill the triggerer as soon as it fired a touch (its event maybe not yet in the database)."""
    crashing = button.touch()
    logged = wait_until(lambda: button.fired_in_log(triggerer, crashing), timeout=30, interval=0.05)
    persisted = crashing in button.fired()
    button.stop(triggerer, signal.SIGKILL)
    button.notes.append(f"SIGKILL {triggerer}: right after firing: {logged}, already stored: {persisted}")


def wait_for_stream(emulator: EmulatorProcess, timeout: float = FIRE_TIMEOUT) -> float:
    """Seconds until the emulator serves a stream (the watcher's trigger is connected)."""
    started = time.monotonic()
    assert wait_until(lambda: emulator.status()["open_streams"] >= 1, timeout=timeout, interval=0.2)
    return time.monotonic() - started


def test_each_touch_fires_once_in_order_through_bursts_restarts_crashes_and_a_takeover(
    start_emulator: StartEmulator, touch_dags: Path
) -> None:
    """One deployment through every phase (a deployment and its watcher take half a minute to start)."""
    emulator = start_emulator(*QUIET)
    connections = {"disruptive_default": airflow_connection(emulator)}
    began = time.monotonic()
    with AirflowDeployment(touch_dags, connections=connections, triggerers=("a",)) as airflow:
        button = CoffeeButton(emulator, airflow)
        airflow.wait_for_watchers(1)
        streaming = wait_for_stream(emulator)
        button.notes.append(f"start-up: {airflow.timings}, stream open {streaming:.1f} s later")

        # One by one, a few seconds apart.
        for _ in range(3):
            button.touch()
            if not button.wait_fired("one by one") and len(button.touches) == 1:
                pytest.fail("the first touch never fired:\n" + "\n".join(button.notes))
            time.sleep(2)  # pacing, not correctness: touches a few seconds apart

        # A burst: quicker than Airflow re-creates a watcher's trigger.
        for _ in range(4):
            button.touch()
            time.sleep(0.3)
        button.wait_fired("burst of 4, 0.3 s apart")

        # A graceful restart: one touch just before SIGTERM, two while no triggerer runs, one after.
        button.touch()
        stopping = time.monotonic()
        code = button.stop("a", signal.SIGTERM)
        button.notes.append(f"SIGTERM: exited with {code} after {time.monotonic() - stopping:.1f} s")
        touch_while_down_then_restart(button, "a", "SIGTERM, restart")

        # A crash right after the trigger fired, two touches while the dead triggerer still holds the
        # watcher, one once the restarted one took it over.
        crash_right_after_firing(button, "triggerer-a")
        touch_while_down_then_restart(button, "a", "SIGKILL, restart")

        # A standby, and the holder crashing: touches go on while the standby waits for the holder's
        # heartbeat to go stale, and once the standby runs the watcher.
        airflow.start_triggerer("b")
        button.touch()
        button.wait_fired("with a standby")
        (watcher,) = airflow.wait_for_watchers(1)
        holder = watcher.triggerer
        assert holder is not None
        standby = "triggerer-b" if holder == "triggerer-a" else "triggerer-a"
        crash_right_after_firing(button, holder)
        killed = time.monotonic()
        button.touch()
        button.touch()
        (watcher,) = airflow.wait_for_watchers(1, timeout=120)
        button.notes.append(f"takeover by {watcher.triggerer} after {time.monotonic() - killed:.1f} s")
        assert watcher.triggerer == standby
        button.touch()
        button.wait_fired("takeover")

        # The last touch: what would fire twice fires before it, as a watcher fires in time order.
        button.touch()
        button.wait_fired("last")
        button.notes.append(f"test time so far: {time.monotonic() - began:.0f} s")
        button.check_exactly_once()


def test_a_spool_watcher_fires_each_pushed_touch_once_through_re_sends_and_a_crash(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    """The spool example DAG, with no DT connection: the emulator's Data Connector pushes every touch to
    a real receiver, DT re-sends some (a duplicate fault), and the triggerer is killed right after a
    firing and restarted: each touch is one asset event, in order, and in one DAG run."""
    emulator = start_emulator(*QUIET, "--connector-timeout", "1", "--connector-backoff", "0.2")
    spool = tmp_path / "spool.sqlite"
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(SPOOL_DAG, dags)
    receiver_env = {"DT_CONNECTOR_SECRET": CONNECTOR_SECRET}
    with ReceiverProcess("--port", "0", "--spool", str(spool), env=receiver_env) as receiver:
        connectors = f"{emulator.api_url}/projects/{emulator.project_id}/dataconnectors"
        connector = {"url": receiver.url, "signatureSecret": CONNECTOR_SECRET}
        created = emulator.http.post(
            connectors, json={"type": "HTTP_PUSH", "httpConfig": connector, "labels": ["button"]}, timeout=10
        )
        assert created.status_code == 200, created.text
        spool_connection = json.dumps({"conn_type": "generic", "extra": {"spool": str(spool)}})
        with AirflowDeployment(
            dags,
            connections={"dt_spool": spool_connection},
            environment={"DT_PROJECT_ID": emulator.project_id},
            triggerers=("a",),
        ) as airflow:
            button = CoffeeButton(emulator, airflow, SPOOL_ASSET, SPOOL_DAG_ID)
            airflow.wait_for_watchers(1)
            # A watcher's first run reads from the spool's end as it finds it: touches until one fires
            # show it reading; those before it are not owed.
            for _ in range(6):
                if wait_until(partial(button.has_fired, button.touch()), timeout=15, interval=0.25):
                    break
            else:
                pytest.fail("no touch fired:\n" + "\n".join(button.notes))
            button.owed_from = button.awaited = len(button.touches) - 1
            button.notes.append(f"first firing after {len(button.touches)} touches")

            for _ in range(2):
                button.touch()
                button.wait_fired("one by one")
            # DT re-sends: the receiver answers 200 and stores each touch once.
            fault = {"kind": "duplicate", "count": 2}
            assert emulator.http.post(f"{emulator.base_url}/_emulator/push-faults", json=fault, timeout=10).ok
            button.touch()
            button.touch()
            button.wait_fired("pushed twice by DT")

            crash_right_after_firing(button, "triggerer-a")
            touch_while_down_then_restart(button, "a", "SIGKILL, restart")
            button.touch()
            button.wait_fired("last")
            button.check_exactly_once()
            assert receiver.metrics()["duplicates"] >= 2
