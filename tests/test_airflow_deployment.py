"""The touch example DAG (DT's stream) and the spool example DAG (DT's pushes through a real receiver) on
one real Airflow deployment (api-server, scheduler, dag-processor and triggerers as processes; see
tests/support/airflow_deployment.py) against the emulator: every touch of a `button=coffee` device
becomes exactly one event of each asset, in time order, and is taken by exactly one run of each DAG,
through quick bursts, DT re-sending pushes, a graceful triggerer restart, a triggerer crash, and a
standby triggerer taking over from a crashed one.

One exception, which Airflow's API leaves no way around: a touch stored by Airflow in the last seconds
before its triggerer stops, not yet acknowledged to the trigger (Airflow acknowledges on the next round,
about a second later, and a stopping triggerer has none), fires again after the restart. The tests stop
triggerers right after a firing on purpose, and allow a touch one more asset event for each stop at which
one of its asset events was stored (from ACK_WINDOW seconds before the stop signal to the triggerer's
exit), and no other: a replay after one restart, stored just before the next stop, is in flight at that
one too.

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
from collections.abc import Callable
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


class CoffeeButton:
    """Touches of a device labelled button=coffee (and of one labelled button=tea, which must never
    fire), and what the deployment made of them: the events of each watched asset (asset -> DAG id)."""

    def __init__(
        self, emulator: EmulatorProcess, airflow: AirflowDeployment, watched: dict[str, str]
    ) -> None:
        self.emulator = emulator
        self.airflow = airflow
        self.watched = watched
        # Per asset, the first touch owed (those before it came before its watcher began to read).
        self.owed_from = dict.fromkeys(watched, 0)
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

    def in_flight(self, asset: str) -> Counter[str]:
        """For each touch, at how many stops one of its asset events was stored while the triggerer was
        stopping: each such stop may have left it stored without the trigger hearing of it, so it may
        fire once more after each (a replay stored just before the next stop is in flight at that one)."""
        stops: Counter[str] = Counter()
        events = [(_event_id(event.payload), event.timestamp) for event in self.airflow.asset_events(asset)]
        for start, end in self.stops:
            stops.update({touch for touch, at in events if start <= at <= end})
        return stops

    def touch(self) -> str:
        """Touch the coffee button (and the tea one); the coffee touch's eventId."""
        self.emulator.publish(self.device, "touch")
        self.emulator.publish(self.tea, "touch")
        events, self.position = self.emulator.ledger(after=self.position, device_ids=self.device)
        (event,) = events
        self.touches.append(str(event["eventId"]))
        return self.touches[-1]

    def fired(self, asset: str) -> list[str]:
        """The eventIds the asset's events carry (whatever the device), in time order."""
        return [_event_id(event.payload) for event in self.airflow.asset_events(asset)]

    def fired_everywhere(self, touch: str) -> bool:
        return all(touch in self.fired(asset) for asset in self.watched)

    def wait_fired(self, phase: str, timeout: float = FIRE_TIMEOUT) -> bool:
        """Wait until the touches since the last wait fired on every asset. A watcher fires in time
        order, so once the phase's last touch fired, an earlier one that did not is lost: no use waiting
        on. Noted rather than failed at once, so that a test goes on through every phase and reports
        them all."""
        started = time.monotonic()
        touches, self.awaited = self.touches[self.awaited :], len(self.touches)

        def settled() -> bool:
            for asset in self.watched:
                fired = set(self.fired(asset))
                if not (set(touches) <= fired or touches[-1] in fired):
                    return False
            return True

        settled_in_time = wait_until(settled, timeout=timeout, interval=0.25)
        elapsed = time.monotonic() - started
        missing = {
            asset: [touch for touch in touches if touch not in set(self.fired(asset))]
            for asset in self.watched
        }
        missing = {asset: lost for asset, lost in missing.items() if lost}
        if not missing:
            self.notes.append(f"{phase}: {len(touches)} fired after {elapsed:.1f} s")
        elif settled_in_time:
            self.notes.append(f"{phase}: {missing} not fired, a later touch fired after {elapsed:.1f} s")
        else:
            self.notes.append(f"{phase}: {missing} not fired within {timeout:.0f} s")
        return not missing

    def fired_in_log(self, triggerer: str, event_id: str) -> bool:
        """Whether the triggerer logged firing `event_id` (it logs each event it hands to Airflow)."""
        log = self.airflow.log_path(triggerer).read_text(errors="replace")
        return any("Trigger fired event" in line and event_id in line for line in log.splitlines())

    def check_exactly_once(self) -> None:
        """On every asset, every touch owed fired exactly once, in time order, and each one is in exactly
        one DAG run; but for the touches in flight at a stop, which may fire a second time (see the
        module's doc)."""
        ledger = [str(event["eventId"]) for event in self.emulator.ledger(device_ids=self.device)[0]]
        assert ledger == self.touches
        reports = [*self.notes, f"process logs: {self.airflow.logs} (kept with {KEEP_HOME_VARIABLE}=1)"]
        checks = []
        for asset, dag_id in self.watched.items():
            touches = ledger[self.owed_from[asset] :]
            fired = self.fired(asset)

            def consumed(dag_id: str = dag_id) -> list[DagRun]:
                return [run for run in self.airflow.dag_runs(dag_id) if run.events]

            def all_taken(asset: str = asset, consumed: Callable[[], list[DagRun]] = consumed) -> bool:
                return sum(len(run.events) for run in consumed()) >= len(self.airflow.asset_events(asset))

            taken_in_time = wait_until(all_taken, timeout=RUNS_TIMEOUT, interval=0.5)
            runs = consumed()
            in_runs = [_event_id(event.payload) for run in runs for event in run.events]
            in_flight = self.in_flight(asset)
            reports += [
                f"--- {asset} (DAG {dag_id})",
                f"touches owed ({len(touches)}): {touches}",
                f"fired ({len(fired)}): {fired}",
                f"never fired: {[t for t in touches if t not in fired]}",
                f"fired more than once: {[t for t, n in Counter(fired).items() if n > 1]}",
                f"fired but not owed: {[f for f in fired if f not in touches]}",
                f"in DAG runs ({len(in_runs)} events, {len(runs)} runs): {in_runs}",
                f"every asset event taken by a run within {RUNS_TIMEOUT:.0f} s: {taken_in_time}",
                f"in flight at stops (touch: stops): {dict(in_flight)}",
            ]
            checks += [(asset, touches, fired, "asset events", in_flight)]
            checks += [(asset, touches, in_runs, "DAG runs' triggering events", in_flight)]
        report = "\n".join(reports)
        print(report)
        for asset, touches, seen, what, in_flight in checks:
            assert list(dict.fromkeys(seen)) == touches, f"{asset}: the {what} are not the touches\n{report}"
            repeated = {touch: count - 1 for touch, count in Counter(seen).items() if count > 1}
            assert all(repeats <= in_flight[touch] for touch, repeats in repeated.items()), (
                f"{asset}: the {what} repeat a touch more often than it was in flight at a stop\n{report}"
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
    button.airflow.wait_for_watchers(len(button.watched))
    button.notes.append(f"{phase}: watchers running after {time.monotonic() - restarting:.1f} s")
    button.touch()
    button.wait_fired(phase)


def crash_right_after_firing(button: CoffeeButton, triggerer: str) -> None:
    """Kill the triggerer as soon as it fired a touch (its event maybe not yet in the database)."""
    crashing = button.touch()
    logged = wait_until(lambda: button.fired_in_log(triggerer, crashing), timeout=30, interval=0.05)
    persisted = {asset: crashing in button.fired(asset) for asset in button.watched}
    button.stop(triggerer, signal.SIGKILL)
    button.notes.append(f"SIGKILL {triggerer}: right after firing: {logged}, already stored: {persisted}")


def wait_for_stream(emulator: EmulatorProcess, timeout: float = FIRE_TIMEOUT) -> float:
    """Seconds until the emulator serves a stream (the watcher's trigger is connected)."""
    started = time.monotonic()
    assert wait_until(lambda: emulator.status()["open_streams"] >= 1, timeout=timeout, interval=0.2)
    return time.monotonic() - started


def test_each_touch_fires_once_in_order_from_the_stream_and_the_spool_through_restarts_and_a_takeover(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    """The touch DAG (DT's stream) and the spool DAG (DT's pushes, through a real receiver; no DT
    connection) on one deployment, through every phase: a deployment and its watchers take half a
    minute to start. DT also re-sends some pushes (a duplicate fault), which the receiver stores once."""
    emulator = start_emulator(*QUIET, "--connector-timeout", "1", "--connector-backoff", "0.2")
    spool = tmp_path / "spool.sqlite"
    dags = tmp_path / "dags"
    dags.mkdir()
    for dag in (TOUCH_DAG, SPOOL_DAG):
        shutil.copy(dag, dags)
    began = time.monotonic()
    receiver_env = {"DT_CONNECTOR_SECRET": CONNECTOR_SECRET}
    with ReceiverProcess("--port", "0", "--spool", str(spool), env=receiver_env) as receiver:
        connectors = f"{emulator.api_url}/projects/{emulator.project_id}/dataconnectors"
        connector = {"url": receiver.url, "signatureSecret": CONNECTOR_SECRET}
        created = emulator.http.post(
            connectors, json={"type": "HTTP_PUSH", "httpConfig": connector, "labels": ["button"]}, timeout=10
        )
        assert created.status_code == 200, created.text
        connections = {
            "disruptive_default": airflow_connection(emulator),
            "dt_spool": json.dumps({"conn_type": "generic", "extra": {"spool": str(spool)}}),
        }
        with AirflowDeployment(
            dags,
            connections=connections,
            environment={"DT_PROJECT_ID": emulator.project_id},
            triggerers=("a",),
        ) as airflow:
            button = CoffeeButton(emulator, airflow, {ASSET: DAG_ID, SPOOL_ASSET: SPOOL_DAG_ID})
            airflow.wait_for_watchers(2)
            streaming = wait_for_stream(emulator)
            button.notes.append(f"start-up: {airflow.timings}, stream open {streaming:.1f} s later")
            # A watcher's first run reads from now (the stream's start, the spool's end as it finds
            # it): touches until one fires on both; on each asset, those before its first are not owed.
            for _ in range(6):
                if wait_until(partial(button.fired_everywhere, button.touch()), timeout=20, interval=0.25):
                    break
            else:
                pytest.fail("no touch fired on both assets:\n" + "\n".join(button.notes))
            for asset in button.watched:
                button.owed_from[asset] = min(button.touches.index(t) for t in button.fired(asset))
            button.awaited = len(button.touches)
            button.notes.append(f"first firing on both after {len(button.touches)} touches")

            # One by one, a few seconds apart.
            for _ in range(2):
                button.touch()
                button.wait_fired("one by one")
                time.sleep(2)  # pacing, not correctness: touches a few seconds apart

            # A burst: quicker than Airflow re-creates a watcher's trigger; DT pushes two of it twice.
            fault = {"kind": "duplicate", "count": 2}
            assert emulator.http.post(f"{emulator.base_url}/_emulator/push-faults", json=fault, timeout=10).ok
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

            # A crash right after a trigger fired, two touches while the dead triggerer still holds the
            # watchers, one once the restarted one took them over.
            crash_right_after_firing(button, "triggerer-a")
            touch_while_down_then_restart(button, "a", "SIGKILL, restart")

            # A standby, and the holder crashing: touches go on while the standby waits for the
            # holder's heartbeat to go stale, and once the standby runs the watchers.
            airflow.start_triggerer("b")
            button.touch()
            button.wait_fired("with a standby")
            holders = {watcher.triggerer for watcher in airflow.wait_for_watchers(2)}
            assert len(holders) == 1 and None not in holders, holders
            (holder,) = holders
            assert holder is not None
            standby = "triggerer-b" if holder == "triggerer-a" else "triggerer-a"
            crash_right_after_firing(button, holder)
            killed = time.monotonic()
            button.touch()
            button.touch()
            taken_over = {watcher.triggerer for watcher in airflow.wait_for_watchers(2, timeout=120)}
            button.notes.append(f"takeover by {taken_over} after {time.monotonic() - killed:.1f} s")
            assert taken_over == {standby}
            button.touch()
            button.wait_fired("takeover")

            # The last touch: what would fire twice fires before it, as a watcher fires in time order.
            button.touch()
            button.wait_fired("last")
            button.notes.append(f"test time so far: {time.monotonic() - began:.0f} s")
            button.check_exactly_once()
            assert receiver.metrics()["duplicates"] >= 2
