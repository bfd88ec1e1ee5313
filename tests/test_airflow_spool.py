"""The provider's spool face: DisruptiveSpoolTrigger (alone, and on Airflow's shared streams in ack mode
through an in-process triggerer), DisruptiveSpoolSensor under `dag.test()`, the `disruptive+spool`
message queue scheme and `dt_push_event`, on real spool files filled as the receiver fills them (or by a
real receiver), with no DT connection anywhere."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Connection

from airflow_provider.conditions import all_of, field
from airflow_provider.hooks.spool import spool_of_connection
from airflow_provider.queues import dt_push_event
from airflow_provider.triggers import shared as shared_streams
from airflow_provider.triggers.spool import SPOOL_POSITION_KEY, DisruptiveSpoolTrigger
from tap_disruptive.client.protocol.errors import FatalError
from tap_disruptive.receiver.process import ReceiverProcess
from tests.support.dag_parsing import migrated_airflow_home, parse_dags
from tests.support.services import ROOT
from tests.support.spool_pushes import OTHER_PROJECT, PROJECT, SpoolFile, event_id, push_body
from tests.support.triggerer import MemoryStateStore, Triggerer, fired_ids, until
from tests.test_receiver import SECRETS_ENV, dt_signature

COFFEE: dict[str, str | None] = {"button": "coffee"}
TEA: dict[str, str | None] = {"button": "tea"}


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[SpoolFile]:
    spool = SpoolFile(tmp_path / "spool.sqlite")
    yield spool
    spool.close()


@pytest.fixture
def quick_cohorts(monkeypatch: pytest.MonkeyPatch) -> None:
    # A shared reader waits this long for its cohort of triggers before it reads; 2 s in a triggerer.
    monkeypatch.setattr(shared_streams, "COHORT_WAIT", 0.3)


def watcher(store: MemoryStateStore, **kwargs: Any) -> DisruptiveSpoolTrigger:
    trigger = DisruptiveSpoolTrigger(**kwargs)
    trigger.asset_state_store = store  # type: ignore[assignment]
    return trigger


async def take(events: AsyncIterator[Any], count: int, seconds: float = 30) -> list[dict[str, Any]]:
    """The next `count` payloads a running trigger fires."""
    return [(await asyncio.wait_for(events.__anext__(), seconds)).payload for _ in range(count)]


# --- one trigger on its own: filters, condition, order, position ----------------------------------------


def test_a_watcher_fires_every_matching_event_once_in_seq_order(spool: SpoolFile) -> None:
    coffee = [spool.push("d-coffee", labels=COFFEE)]
    spool.push("d-tea", labels=TEA)  # another label
    spool.push("d-coffee", "temperature", {"value": 4.0}, labels=COFFEE)  # another event type
    spool.push("d-coffee", labels=COFFEE, project_id=OTHER_PROJECT)  # another project
    spool.push("d-prox", labels=COFFEE, device_type="proximity")  # another device type
    coffee += [spool.push("d-coffee", labels=COFFEE), spool.push("d-coffee2", labels=COFFEE)]
    store = MemoryStateStore()

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        trigger = watcher(
            store,
            spool=str(spool.path),
            project_ids=PROJECT,
            event_types=["touch"],
            label_filters=COFFEE,
            device_types=["touch"],
            start_seq=0,
        )
        events = trigger.run()
        try:
            first = await take(events, 3)
            # One more match, pushed now: the next firing is this one, so nothing fired in between.
            coffee.append(spool.push("d-coffee", labels=COFFEE))
            return first, await take(events, 1)
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    first, last = asyncio.run(scenario())
    payloads = first + last
    assert {payload["status"] for payload in payloads} == {"success"}
    assert [payload["event"]["eventId"] for payload in payloads] == coffee
    documents = [payload["event"] for payload in payloads]
    assert [document["spool_seq"] for document in documents] == sorted(d["spool_seq"] for d in documents)
    assert documents[0]["labels"] == COFFEE and documents[0]["device_type"] == "touch"
    assert documents[0]["project_id"] == PROJECT and documents[0]["device_id"] == "d-coffee"
    assert json.loads(json.dumps(documents)) == documents
    # Written after each delivery handed on (no shared stream here): at least past the first three.
    assert store.values[SPOOL_POSITION_KEY] >= documents[2]["spool_seq"]


def test_a_sensor_trigger_fires_once_on_the_first_match_of_its_condition(spool: SpoolFile) -> None:
    spool.push("d-freezer", "temperature", {"value": -20.0}, labels={"kind": "freezer"})
    start = spool.last_seq()
    spool.push("d-freezer", "temperature", {"value": -18.0}, labels={"kind": "freezer"})
    spool.push("d-fridge", "temperature", {"value": 8.0}, labels={"kind": "fridge"})
    spool.push(
        "d-freezer", "temperature", {"value": -9.0}, labels={"kind": "freezer"}, project_id=OTHER_PROJECT
    )
    match = spool.push("d-freezer", "temperature", {"value": -7.5}, labels={"kind": "freezer"})
    spool.push("d-freezer", "temperature", {"value": -6.0}, labels={"kind": "freezer"})
    trigger = DisruptiveSpoolTrigger(
        spool=str(spool.path),
        project_ids=[PROJECT],
        event_types=["temperature"],
        # The push's labels are in the document the condition sees.
        condition=all_of(field("labels.kind", "==", "freezer"), field("data.temperature.value", ">", -15)),
        start_seq=start,
    )

    async def run_to_its_end() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    (payload,) = asyncio.run(asyncio.wait_for(run_to_its_end(), 30))
    assert payload["status"] == "success"
    assert payload["event"]["eventId"] == match
    assert payload["event"]["data"]["temperature"]["value"] == -7.5


def test_a_recreated_trigger_resumes_from_its_serialized_seq(spool: SpoolFile) -> None:
    spool.push("d-button", labels=COFFEE)  # before the sensor started: never counts
    trigger = DisruptiveSpoolTrigger(
        spool=str(spool.path),
        project_ids=[PROJECT],
        device_ids=["d-button"],
        event_types=["touch"],
        start_seq=spool.last_seq(),  # as DisruptiveSpoolSensor sets it when it defers
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider.triggers.spool.DisruptiveSpoolTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    # The triggerer restarts while nothing matched yet; what comes meanwhile must still count.
    spool.push("d-other", labels=COFFEE)
    touched = spool.push("d-button", labels=COFFEE)
    recreated = DisruptiveSpoolTrigger(**kwargs)
    assert recreated.serialize() == (classpath, kwargs)
    assert DisruptiveSpoolTrigger.hash(classpath, kwargs) == DisruptiveSpoolTrigger.hash(
        *recreated.serialize()
    )

    async def first() -> Any:
        return await asyncio.wait_for(recreated.run().__anext__(), 30)

    assert asyncio.run(first()).payload["event"]["eventId"] == touched


def test_a_missing_spool_or_connection_fires_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def everything(trigger: DisruptiveSpoolTrigger) -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    missing = tmp_path / "nowhere.sqlite"
    (error,) = asyncio.run(everything(DisruptiveSpoolTrigger(spool=str(missing), project_ids=PROJECT)))
    assert error == {"status": "error", "message": f"no spool at {missing}: is it the receiver's --spool?"}
    assert not missing.exists()  # a reader never makes a spool

    (error,) = asyncio.run(
        everything(DisruptiveSpoolTrigger(spool_conn_id="no_such_spool", project_ids=PROJECT))
    )
    assert error["status"] == "error" and "no Airflow connection 'no_such_spool'" in error["message"]

    monkeypatch.setenv("AIRFLOW_CONN_NAMELESS", json.dumps({"conn_type": "generic", "host": "h"}))
    (error,) = asyncio.run(everything(DisruptiveSpoolTrigger(spool_conn_id="nameless", project_ids=PROJECT)))
    assert error["status"] == "error" and "connection nameless names no spool" in error["message"]

    with pytest.raises(ValueError, match=r"either spool .* or spool_conn_id"):
        DisruptiveSpoolTrigger(project_ids=PROJECT)
    with pytest.raises(ValueError, match="project_ids"):
        DisruptiveSpoolTrigger(spool="s.sqlite", project_ids=[])
    with pytest.raises(FatalError, match="event_types: unknown value 'smell'"):
        DisruptiveSpoolTrigger(spool="s.sqlite", project_ids=PROJECT, event_types=["smell"])


def test_the_spool_may_come_from_a_connection_and_its_password_never_shows(
    spool: SpoolFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DT_SPOOL", json.dumps({"conn_type": "generic", "extra": {"spool": str(spool.path)}})
    )
    touched = spool.push("d-button")
    by_connection = DisruptiveSpoolTrigger(spool_conn_id="dt_spool", project_ids=PROJECT, start_seq=0)

    async def first() -> Any:
        return await asyncio.wait_for(by_connection.run().__anext__(), 30)

    assert asyncio.run(first()).payload["event"]["eventId"] == touched
    assert "dt_spool" in repr(by_connection)

    postgres = Connection(
        conn_id="pg_spool",
        conn_type="postgres",
        host="db.internal",
        port=5432,
        login="reader",
        password="s3cr/et@",
        schema="dtspool",
        extra=json.dumps({"sslmode": "require"}),
    )
    url = spool_of_connection(postgres)
    assert url == "postgresql://reader:s3cr%2Fet%40@db.internal:5432/dtspool?sslmode=require"
    given = DisruptiveSpoolTrigger(spool=url, project_ids=PROJECT)
    assert "s3cr" not in repr(given)
    assert "s3cr" not in repr(given.shared_stream_key())
    assert "db.internal:5432/dtspool" in repr(given)


# --- watchers on a shared reader in an in-process triggerer (ack mode) ----------------------------------


@pytest.mark.usefixtures("quick_cohorts")
def test_watcher_positions_survive_triggerer_stops_and_crashes(spool: SpoolFile) -> None:
    store = MemoryStateStore()
    start = spool.last_seq()
    coffee: list[str] = []

    def push(count: int) -> None:
        for _ in range(count):
            coffee.append(spool.push("d-coffee", labels=COFFEE))
            spool.push("d-tea", labels=TEA)

    def acknowledged() -> int:
        return int(store.values.get(SPOOL_POSITION_KEY, 0))

    def seq_of(event: str) -> int:
        (seq,) = [index + 1 for index, body in enumerate(spool.appended) if event_id(body) == event]
        return seq

    # Each life re-creates the watcher from its serialized form, as a triggerer does.
    _classpath, kwargs = DisruptiveSpoolTrigger(
        spool=str(spool.path), project_ids=PROJECT, label_filters=COFFEE, start_seq=start
    ).serialize()

    async def scenario() -> list[str]:
        stored: list[str] = []
        # Life 1: fires, is stored, and is acknowledged before a graceful stop.
        first = Triggerer()
        first.start(1, watcher(store, **kwargs))
        push(3)
        await until(lambda: len(first.pending) >= 3, 30, "three firings")
        stored += fired_ids(first.store())
        await until(lambda: acknowledged() >= seq_of(coffee[2]), 30, "the position written")
        await first.stop()
        push(2)  # while no triggerer runs
        # Life 2: fires on those two, but crashes before Airflow stored them.
        second = Triggerer()
        second.start(2, watcher(store, **kwargs))
        await until(lambda: len(second.pending) >= 2, 30, "two firings")
        assert fired_ids(second.pending) == coffee[3:5]
        await second.crash([store])
        assert acknowledged() < seq_of(coffee[3])  # not stored, so not acknowledged
        # Life 3: the two fire again, then one more that comes while it runs.
        third = Triggerer()
        third.start(3, watcher(store, **kwargs))
        await until(lambda: len(third.pending) >= 2, 30, "the two again")
        push(1)
        await until(lambda: len(third.pending) >= 3, 30, "the last one")
        stored += fired_ids(third.store())
        await until(lambda: acknowledged() >= seq_of(coffee[5]), 30, "the last position")
        await third.stop()
        return stored

    stored = asyncio.run(scenario())
    assert stored == coffee  # each once, in seq order, none lost


@pytest.mark.usefixtures("quick_cohorts")
def test_watchers_share_one_reader_and_a_late_one_catches_up(spool: SpoolFile) -> None:
    stores = [MemoryStateStore(), MemoryStateStore()]
    options: dict[str, Any] = {"spool": str(spool.path), "project_ids": [PROJECT], "label_filters": COFFEE}
    early = watcher(stores[0], start_seq=0, **options)
    # Same spool, projects and filters: the same reader; its own condition and its own start.
    late = watcher(stores[1], start_seq=0, condition=field("device_id", "==", "d-one"), **options)
    assert early.shared_stream_key() == late.shared_stream_key()
    one = [spool.push("d-one", labels=COFFEE)]
    two = [spool.push("d-two", labels=COFFEE)]

    async def scenario() -> Triggerer:
        triggerer = Triggerer()
        triggerer.start(1, early)
        await until(lambda: len(triggerer.pending) >= 2, 30, "the early watcher's firings")
        # The reader is past the first rows: the late watcher reads them itself, then shares on.
        triggerer.start(2, late)
        one.append(spool.push("d-one", labels=COFFEE))
        two.append(spool.push("d-two", labels=COFFEE))
        await until(lambda: len(triggerer.pending) >= 6, 30, "every firing")
        triggerer.store()
        await triggerer.stop()
        return triggerer

    triggerer = asyncio.run(scenario())
    assert fired_ids(triggerer.stored, 1) == [one[0], two[0], one[1], two[1]]
    assert fired_ids(triggerer.stored, 2) == one


# --- common.messaging, and messages from cloud queues -----------------------------------------------------


def test_the_message_queue_scheme_builds_the_spool_trigger(spool: SpoolFile) -> None:
    queue_trigger = MessageQueueTrigger(
        scheme="disruptive+spool", spool=str(spool.path), project_ids=[PROJECT], event_types=["touch"]
    )
    built = queue_trigger.trigger
    assert isinstance(built, DisruptiveSpoolTrigger)
    classpath, kwargs = queue_trigger.serialize()
    assert classpath == "airflow_provider.triggers.spool.DisruptiveSpoolTrigger"
    assert kwargs["event_types"] == ["touch"] and kwargs["spool"] == str(spool.path)


def test_dt_push_event_decodes_a_connector_message_as_the_spool_trigger_does(spool: SpoolFile) -> None:
    body = push_body("d-freezer", "temperature", {"value": -3.5}, labels={"kind": "freezer"})
    spool.append(body)
    fired = asyncio.run(
        asyncio.wait_for(
            DisruptiveSpoolTrigger(spool=str(spool.path), project_ids=PROJECT, start_seq=0).run().__anext__(),
            30,
        )
    ).payload["event"]
    expected = {key: value for key, value in fired.items() if key != "spool_seq"}
    assert expected["labels"] == {"kind": "freezer"} and expected["device_type"] == "temperature"
    envelope = json.loads(body)
    assert dt_push_event(body) == expected  # an SQS or Service Bus message body
    assert dt_push_event(body.decode()) == expected
    assert dt_push_event(base64.b64encode(body).decode()) == expected  # a Pub/Sub message's data
    assert dt_push_event(envelope) == expected
    bare = dt_push_event(envelope["event"])  # a bare DT event: no labels, no device type
    assert bare == {**expected, "labels": {}, "device_type": None}
    bad_messages: list[tuple[str | bytes, str]] = [
        (b"not json at all", "neither JSON nor base64"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"event": {"eventId": "e1"}}), "not a DT Data Connector push"),
        (json.dumps({"hello": "world"}), "not a DT Data Connector push"),
    ]
    for bad, reason in bad_messages:
        with pytest.raises(ValueError, match=reason):
            dt_push_event(bad)


# --- real processes: a receiver filling the spool, and Airflow's dag.test() ------------------------------


@pytest.mark.e2e
def test_the_trigger_fires_on_pushes_a_real_receiver_stored(tmp_path: Path) -> None:
    spool_path = tmp_path / "receiver.sqlite"
    with ReceiverProcess("--port", "0", "--spool", str(spool_path), env=SECRETS_ENV) as receiver:

        def post(body: bytes) -> str:
            answer = requests.post(
                receiver.url,
                data=body,
                headers={"Content-Type": "application/json", "X-Dt-Signature": dt_signature(body)},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            return event_id(body)

        # The spool exists once the receiver runs; a trigger started now waits for what comes next.
        assert spool_path.is_file()
        touched = [post(push_body("d-door", labels={"door": "front"}))]
        post(push_body("d-door", "contact", {"state": "OPEN"}, labels={"door": "front"}))
        post(push_body("d-back", labels={"door": "back"}))
        retried = push_body("d-door", labels={"door": "front"})
        touched.append(post(retried))
        post(retried)  # DT re-sends: the receiver stores it once, so it fires once
        store = MemoryStateStore()

        async def scenario() -> list[dict[str, Any]]:
            trigger = watcher(
                store,
                spool=str(spool_path),
                project_ids=PROJECT,
                event_types=["touch"],
                label_filters={"door": "front"},
                start_seq=0,
            )
            events = trigger.run()
            try:
                first = await take(events, 2)
                touched.append(post(push_body("d-door", labels={"door": "front"})))
                return first + await take(events, 1)
            finally:
                await events.aclose()  # type: ignore[attr-defined]

        payloads = asyncio.run(scenario())
    assert [payload["event"]["eventId"] for payload in payloads] == touched


SENSOR_DAG = ROOT / "tests" / "support" / "spool_sensor_dag.py"


@pytest.fixture(scope="module")
def airflow_home() -> dict[str, str]:
    environment = migrated_airflow_home()
    # dag.test() runs a DAG of the DAGs folder's bundle: one that holds the test's DAG alone.
    shutil.copy(SENSOR_DAG, Path(environment["AIRFLOW__CORE__DAGS_FOLDER"]) / SENSOR_DAG.name)
    return environment


@pytest.mark.e2e
def test_a_dag_waits_with_the_spool_sensor_under_dag_test(
    airflow_home: dict[str, str], spool: SpoolFile
) -> None:
    old = spool.push("d-freezer", "temperature", {"value": -1.0}, labels={"kind": "freezer"})  # before it
    environment = {
        **airflow_home,
        "AIRFLOW_CONN_DT_SPOOL": json.dumps({"conn_type": "generic", "extra": {"spool": str(spool.path)}}),
        "DT_SPOOL_PROJECT": PROJECT,
    }
    environment.pop("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", None)  # no DT connection at all
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "support" / "airflow_run.py"),
            str(Path(airflow_home["AIRFLOW__CORE__DAGS_FOLDER"]) / SENSOR_DAG.name),
            "disruptive_spool_sensor",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pushed: list[str] = []
    finished = threading.Event()

    def push_until_done() -> None:
        # The sensor takes rows after the spool's newest when it defers, which the test cannot see:
        # matches are pushed until the run ends, and it must return one of them (never the old one).
        value = -14.0
        while not finished.wait(0.3):
            spool.push("d-fridge", "temperature", {"value": 9.0}, labels={"kind": "fridge"})
            pushed.append(
                spool.push("d-freezer", "temperature", {"value": value}, labels={"kind": "freezer"})
            )
            value += 0.5

    helper = threading.Thread(target=push_until_done, daemon=True)
    helper.start()
    try:
        stdout, stderr = process.communicate(timeout=240)
    finally:
        finished.set()
        helper.join(30)
    lines = [line for line in stdout.splitlines() if line.startswith("OUTCOME ")]
    assert lines, f"no outcome; stderr: {stderr[-3000:]}"
    outcome = json.loads(lines[-1][len("OUTCOME ") :])
    assert outcome["state"].endswith("success"), (stdout + stderr)[-3000:]
    event = outcome["xcom"]["wait_for_a_warm_freezer.return_value"]
    assert event["eventId"] in pushed and event["eventId"] != old
    assert event["labels"] == {"kind": "freezer"} and event["project_id"] == PROJECT
    assert (
        outcome["xcom"]["alert.return_value"]
        == f"freezer d-freezer is at {event['data']['temperature']['value']}"
    )


@pytest.mark.e2e
def test_the_example_dag_parses_without_a_dt_connection_or_a_spool(airflow_home: dict[str, str]) -> None:
    example = ROOT / "airflow_provider" / "example_dags" / "spool_touches.py"
    watchers = (
        "dag = bag.get_dag('disruptive_spool_touches'); "
        "watchers = [w for a in dag.timetable.asset_condition.objects for w in a.watchers]; "
        "result['triggers'] = [w.trigger.serialize() for w in watchers]"
    )
    environment = {key: value for key, value in airflow_home.items() if not key.startswith("AIRFLOW_CONN_")}
    parsed = parse_dags(example, environment, also=watchers)
    assert parsed["errors"] == {} and parsed["dags"] == ["disruptive_spool_touches"]
    ((classpath, kwargs),) = parsed["triggers"]
    assert classpath == "airflow_provider.triggers.spool.DisruptiveSpoolTrigger"
    assert kwargs["spool_conn_id"] == "dt_spool" and kwargs["spool"] is None
