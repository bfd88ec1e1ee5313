"""The emulator as DT's push side: Data Connectors over DT's API, and their signed, retried HTTP pushes.

Each test runs a small receiver on loopback that checks every push's `X-Dt-Signature` with PyJWT and
records what arrived; the emulator runs as a real process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import disruptive
import jwt
import pytest
import requests
from aiohttp import web

from benchmarks.official import use_official_client
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.emulator.push_message import signature
from tap_disruptive.emulator.push_metrics import proto_duration
from tap_disruptive.testing import wait_until
from tests.support.emulators import QUIET, StartEmulator

SECRET = "a-signature-secret-of-at-least-32-bytes"
# Short waits, so a retry comes within a test's time; the production defaults are DT's 10 s and 1 s.
FAST = (*QUIET, "--connector-timeout", "1", "--connector-backoff", "0.2")


@dataclass
class Push:
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any] | None  # None: the signature did not verify
    arrived: float

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def event_id(self) -> str:
        return str(self.json["event"]["eventId"])


# How the receiver answers a push: (status, seconds to wait before answering).
Responder = Callable[[Push], tuple[int, float]]


def _acknowledge(_push: Push) -> tuple[int, float]:
    return 200, 0.0


class Receiver:
    """A Data Connector's endpoint on 127.0.0.1, in its own thread and event loop."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.respond: Responder = _acknowledge
        self.pushes: list[Push] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    def start(self) -> Receiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/push", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        push = Push(dict(request.headers), body, self._verify(request, body), time.monotonic())
        self.pushes.append(push)
        status, delay = self.respond(push)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status)

    def _verify(self, request: web.Request, body: bytes) -> dict[str, Any] | None:
        """The signature's claims, as DT's receiver library checks them; None if they do not hold."""
        token = request.headers.get("X-Dt-Signature")
        if token is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return None
        if claims.get("checksum") != hashlib.sha1(body).hexdigest():
            return None
        if claims.get("checksum_sha256") != hashlib.sha256(body).hexdigest():
            return None
        return claims

    def received(self, count: int, timeout: float = 8.0) -> list[Push]:
        assert wait_until(lambda: len(self.pushes) >= count, timeout=timeout), (
            f"{len(self.pushes)} of {count} pushes arrived"
        )
        return list(self.pushes)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def fast_emulator(start_emulator: StartEmulator) -> EmulatorProcess:
    return start_emulator(*FAST)


@pytest.fixture
def official_client() -> Iterator[None]:
    saved = (disruptive.base_url, disruptive.emulator_base_url, disruptive.default_auth)
    yield
    disruptive.base_url, disruptive.emulator_base_url, disruptive.default_auth = saved


def connectors_url(emulator: EmulatorProcess) -> str:
    return f"{emulator.api_url}/projects/{emulator.project_id}/dataconnectors"


def create_connector(emulator: EmulatorProcess, url: str, **fields: Any) -> str:
    body = {"type": "HTTP_PUSH", "httpConfig": {"url": url, "signatureSecret": SECRET}, **fields}
    response = emulator.http.post(connectors_url(emulator), json=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["name"]).rsplit("/", 1)[-1]


def patch_connector(emulator: EmulatorProcess, connector_id: str, **fields: Any) -> dict[str, Any]:
    url = f"{connectors_url(emulator)}/{connector_id}"
    response = emulator.http.patch(url, json=fields, timeout=10)
    assert response.status_code == 200, response.text
    resource: dict[str, Any] = response.json()
    return resource


def push_status(emulator: EmulatorProcess, connector_id: str) -> dict[str, int]:
    counts: dict[str, int] = emulator.status()["pushes"]["by_connector"][connector_id]
    return counts


def publish_touches(emulator: EmulatorProcess, device_id: str, count: int) -> list[str]:
    """Publish `count` touches; their event ids, in order, read from the ledger."""
    start = emulator.ledger_position()
    for _ in range(count):
        emulator.publish(device_id, "touch")
    events, _next = emulator.ledger(after=start, device_ids=device_id)
    return [event["eventId"] for event in events]


# --- what is pushed -----------------------------------------------------------------------------------


def test_published_events_arrive_signed_in_order_with_dt_body(
    fast_emulator: EmulatorProcess, receiver: Receiver
) -> None:
    emulator = fast_emulator
    device_id = emulator.create_device("temperature", {"name": "Freezer", "room": "lab", "owner": "x"})
    create_connector(
        emulator,
        receiver.url,
        events=["temperature"],
        labels=["name", "room", "absent"],
        httpConfig={
            "url": receiver.url,
            "signatureSecret": SECRET,
            "headers": {"X-Tenant": "acme", "content-type": "text/plain"},
        },
    )
    start = emulator.ledger_position()
    for value in (1.5, 2.5, 3.5):
        emulator.publish(device_id, "temperature", {"value": value})
        emulator.publish(device_id, "touch")  # not a type the connector forwards
    pushes = receiver.received(3)
    ledger, _next = emulator.ledger(after=start, event_types="temperature")

    assert [p.json["event"] for p in pushes] == ledger
    assert [p.json["event"]["data"]["temperature"]["value"] for p in pushes] == [1.5, 2.5, 3.5]
    for push in pushes:
        assert push.claims is not None, "the signature did not verify"
        assert push.claims["exp"] == push.claims["iat"] + 3600
        assert abs(push.claims["iat"] - time.time()) < 60
        assert list(push.json) == ["event", "labels", "metadata"]
        assert push.json["labels"] == {"name": "Freezer", "room": "lab"}
        assert push.json["metadata"] == {
            "deviceId": device_id,
            "projectId": emulator.project_id,
            "deviceType": "temperature",
            "productNumber": "",
        }
        assert push.headers["Content-Type"] == "application/json"
        assert push.headers["X-Tenant"] == "acme"
    assert len({p.claims["jti"] for p in pushes if p.claims}) == 3
    assert not wait_until(lambda: len(receiver.pushes) > 3, timeout=0.5), "a touch was pushed"


def test_a_failed_push_is_retried_and_holds_back_the_next_event(
    fast_emulator: EmulatorProcess, receiver: Receiver
) -> None:
    emulator = fast_emulator
    device_id = emulator.create_device("touch")
    connector_id = create_connector(emulator, receiver.url)
    receiver.respond = lambda push: (500 if len(receiver.pushes) <= 2 else 200, 0.0)
    first, second = publish_touches(emulator, device_id, 2)

    pushes = receiver.received(4)
    assert [p.event_id for p in pushes] == [first, first, first, second]
    assert len({p.body for p in pushes[:3]}) == 1, "a retry sends the same body"
    assert wait_until(lambda: push_status(emulator, connector_id)["succeeded"] == 2)
    counts = push_status(emulator, connector_id)
    assert (counts["attempted"], counts["failed"], counts["retried"], counts["queued"]) == (4, 2, 2, 0)
    metrics = emulator.http.get(f"{connectors_url(emulator)}/{connector_id}:metrics", timeout=10).json()
    assert metrics["metrics"]["successCount"] == 2
    assert metrics["metrics"]["errorCount"] == 2
    assert metrics["metrics"]["latency99p"].endswith("s")


def test_an_answer_slower_than_the_timeout_gets_the_event_again(
    fast_emulator: EmulatorProcess, receiver: Receiver
) -> None:
    emulator = fast_emulator
    device_id = emulator.create_device("touch")
    connector_id = create_connector(emulator, receiver.url)
    receiver.respond = lambda push: (200, 2.0 if len(receiver.pushes) == 1 else 0.0)
    (event_id,) = publish_touches(emulator, device_id, 1)

    pushes = receiver.received(2)
    assert [p.event_id for p in pushes] == [event_id, event_id]
    assert pushes[1].arrived - pushes[0].arrived >= 1.0  # the 1 s timeout, then the backoff
    assert wait_until(lambda: push_status(emulator, connector_id)["succeeded"] == 1)
    assert push_status(emulator, connector_id)["failed"] == 1


def test_an_event_never_acknowledged_is_dropped_after_the_retention(
    start_emulator: StartEmulator, receiver: Receiver
) -> None:
    emulator = start_emulator(*FAST, "--connector-retention", "1.5")
    device_id = emulator.create_device("touch")
    connector_id = create_connector(emulator, receiver.url)
    # The first event the receiver sees is refused every time; any other is acknowledged.
    receiver.respond = lambda push: (503 if push.event_id == receiver.pushes[0].event_id else 200, 0.0)
    (doomed,) = publish_touches(emulator, device_id, 1)
    receiver.received(3)  # tried, and retried twice (0.2 s, then 0.4 s later)
    # Queued behind the stuck event, young enough to outlive it: its age counts from its own queueing.
    (survivor,) = publish_touches(emulator, device_id, 1)

    assert wait_until(lambda: any(p.event_id == survivor for p in receiver.pushes), timeout=8)
    assert {p.event_id for p in receiver.pushes} == {doomed, survivor}
    assert receiver.pushes[-1].event_id == survivor
    counts = push_status(emulator, connector_id)
    assert counts["expired"] == 1
    assert counts["failed"] >= 2  # retried before it expired


def test_a_disabled_connector_forwards_nothing_and_drops_what_was_queued(
    fast_emulator: EmulatorProcess, receiver: Receiver
) -> None:
    emulator = fast_emulator
    device_id = emulator.create_device("touch")
    connector_id = create_connector(emulator, receiver.url, status="USER_DISABLED")
    publish_touches(emulator, device_id, 1)
    assert not wait_until(lambda: receiver.pushes != [], timeout=0.5)

    assert patch_connector(emulator, connector_id, status="ACTIVE")["status"] == "ACTIVE"
    receiver.respond = lambda push: (500, 0.0)
    (stuck,) = publish_touches(emulator, device_id, 1)
    receiver.received(1)
    assert patch_connector(emulator, connector_id, status="USER_DISABLED")["status"] == "USER_DISABLED"
    assert wait_until(lambda: push_status(emulator, connector_id)["discarded"] == 1)
    pushed_while_enabled = len(receiver.pushes)

    receiver.respond = _acknowledge
    patch_connector(emulator, connector_id, status="ACTIVE")
    (after,) = publish_touches(emulator, device_id, 1)
    pushes = receiver.received(pushed_while_enabled + 1)
    assert [p.event_id for p in pushes[pushed_while_enabled:]] == [after]
    assert {p.event_id for p in pushes[:pushed_while_enabled]} == {stuck}
    assert not wait_until(lambda: len(receiver.pushes) > pushed_while_enabled + 1, timeout=0.5)


def test_sync_pushes_the_latest_event_of_each_type_of_every_device(
    fast_emulator: EmulatorProcess, receiver: Receiver
) -> None:
    emulator = fast_emulator
    sensor = emulator.create_device("temperature", {"name": "Fridge"})
    button = emulator.create_device("touch")
    emulator.publish(sensor, "temperature", {"value": 4.0})
    emulator.publish(sensor, "temperature", {"value": 5.0})
    emulator.publish(sensor, "touch")
    emulator.publish(button, "touch")
    emulator.publish(button, "batteryStatus", {"percentage": 90})
    connector_id = create_connector(emulator, receiver.url, events=["temperature", "touch"])
    assert not wait_until(lambda: receiver.pushes != [], timeout=0.3), "events before the connector"

    sync = emulator.http.post(f"{connectors_url(emulator)}/{connector_id}:sync", timeout=10)
    assert sync.status_code == 200 and sync.json() == {}
    pushes = receiver.received(3)
    pushed = [(p.json["metadata"]["deviceId"], p.json["event"]["eventType"]) for p in pushes]
    assert pushed == [(sensor, "temperature"), (sensor, "touch"), (button, "touch")]
    assert pushes[0].json["event"]["data"]["temperature"]["value"] == 5.0
    assert not wait_until(lambda: len(receiver.pushes) > 3, timeout=0.5)


# --- push faults --------------------------------------------------------------------------------------


def inject_push_fault(emulator: EmulatorProcess, **fault: Any) -> dict[str, Any]:
    response = emulator.http.post(f"{emulator.base_url}/_emulator/push-faults", json=fault, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_duplicate_fault_pushes_an_event_twice(
    fast_emulator: EmulatorProcess, receiver: Receiver
) -> None:
    emulator = fast_emulator
    device_id = emulator.create_device("touch")
    create_connector(emulator, receiver.url)
    assert inject_push_fault(emulator, kind="duplicate") == {"faults": 1, "connectors_hit": 1}
    first, second = publish_touches(emulator, device_id, 2)

    pushes = receiver.received(3)
    assert [p.event_id for p in pushes] == [first, first, second]
    assert all(p.claims is not None for p in pushes)
    assert not wait_until(lambda: len(receiver.pushes) > 3, timeout=0.5)
    assert emulator.status()["pushes"]["faults_injected"]["duplicate"] == 1


def test_the_reorder_fault_swaps_neighbours(fast_emulator: EmulatorProcess, receiver: Receiver) -> None:
    emulator = fast_emulator
    device_id = emulator.create_device("touch")
    create_connector(emulator, receiver.url)
    inject_push_fault(emulator, kind="reorder", seconds=5)
    first, second, third = publish_touches(emulator, device_id, 3)

    assert [p.event_id for p in receiver.received(3)] == [second, first, third]


def test_the_slow_and_burst_faults_delay_pushes(fast_emulator: EmulatorProcess, receiver: Receiver) -> None:
    emulator = fast_emulator
    device_id = emulator.create_device("touch")
    create_connector(emulator, receiver.url)
    inject_push_fault(emulator, kind="slow", seconds=1)
    published = time.monotonic()
    publish_touches(emulator, device_id, 1)
    assert receiver.received(1)[0].arrived - published >= 1.0

    inject_push_fault(emulator, kind="burst", count=3, seconds=5)
    publish_touches(emulator, device_id, 2)
    assert not wait_until(lambda: len(receiver.pushes) > 1, timeout=0.5), "the burst was not held"
    last_published = time.monotonic()
    publish_touches(emulator, device_id, 1)
    pushes = receiver.received(4)
    assert min(p.arrived for p in pushes[1:]) >= last_published


def test_push_faults_need_a_connector_and_a_known_kind(fast_emulator: EmulatorProcess) -> None:
    url = f"{fast_emulator.base_url}/_emulator/push-faults"
    assert fast_emulator.http.post(url, json={"kind": "duplicate"}, timeout=10).status_code == 404
    assert fast_emulator.http.post(url, json={"kind": "lose"}, timeout=10).status_code == 400
    assert fast_emulator.http.post(url, json={"kind": "slow", "count": 0}, timeout=10).status_code == 400


# --- the API, with DT's official client as the oracle ---------------------------------------------------


@pytest.mark.usefixtures("official_client")
def test_official_client_manages_a_connector_and_reads_its_metrics(
    fast_emulator: EmulatorProcess, receiver: Receiver
) -> None:
    emulator = fast_emulator
    use_official_client(emulator)
    project = emulator.project_id
    device_id = emulator.create_device("touch", {"name": "Door"})
    created = disruptive.DataConnector.create_data_connector(
        project_id=project,
        config=disruptive.DataConnector.HttpPushConfig(
            url=receiver.url, signature_secret=SECRET, headers={"X-Key": "1"}
        ),
        display_name="receiver",
        event_types=["touch"],
        labels=["name"],
    )
    assert created.project_id == project and len(created.data_connector_id) == 20
    assert (created.display_name, created.status, created.data_connector_type) == (
        "receiver",
        "ACTIVE",
        "HTTP_PUSH",
    )
    assert (created.event_types, created.labels) == (["touch"], ["name"])
    assert created.config is not None and created.config.url == receiver.url
    assert created.config.headers == {"X-Key": "1"}

    listed = disruptive.DataConnector.list_data_connectors(project)
    assert [c.data_connector_id for c in listed] == [created.data_connector_id]
    disabled = disruptive.DataConnector.update_data_connector(
        created.data_connector_id, project, status="USER_DISABLED", display_name="paused"
    )
    assert (disabled.status, disabled.display_name, disabled.event_types) == (
        "USER_DISABLED",
        "paused",
        ["touch"],
    )
    publish_touches(emulator, device_id, 1)
    disruptive.DataConnector.update_data_connector(created.data_connector_id, project, status="ACTIVE")
    (event_id,) = publish_touches(emulator, device_id, 1)
    (push,) = receiver.received(1)
    assert push.event_id == event_id and push.json["labels"] == {"name": "Door"}

    disruptive.DataConnector.sync_data_connector(created.data_connector_id, project)
    assert receiver.received(2)[1].event_id == event_id

    def metrics() -> Any:
        return disruptive.DataConnector.get_metrics(created.data_connector_id, project)

    assert wait_until(lambda: metrics().success_count == 2)
    assert metrics().error_count == 0
    latency = metrics().latency
    assert latency.endswith("s") and float(latency[:-1]) < 1.0

    fetched = disruptive.DataConnector.get_data_connector(created.data_connector_id, project)
    assert fetched.raw == disruptive.DataConnector.list_data_connectors(project)[0].raw
    disruptive.DataConnector.delete_data_connector(created.data_connector_id, project)
    assert disruptive.DataConnector.list_data_connectors(project) == []
    with pytest.raises(disruptive.errors.NotFound):
        disruptive.DataConnector.get_data_connector(created.data_connector_id, project)


def test_the_api_refuses_what_dt_would(fast_emulator: EmulatorProcess) -> None:
    emulator = fast_emulator
    url = connectors_url(emulator)
    good = {"type": "HTTP_PUSH", "httpConfig": {"url": "https://example.com/push"}}
    refused = [
        {"type": "HTTP_PUSH", "httpConfig": {}},
        {**good, "type": "AWS_SQS"},
        {**good, "status": "SYSTEM_DISABLED"},
        {**good, "events": ["touch", "sneeze"]},
        {**good, "httpConfig": {"url": "ftp://example.com"}},
        {**good, "httpConfig": {"url": "https://example.com", "headers": {"Bad Name": "x"}}},
        {**good, "colour": "red"},
    ]
    for body in refused:
        response = emulator.http.post(url, json=body, timeout=10)
        assert response.status_code == 400, body
        assert response.json()["code"] == 400
    assert requests.post(url, json=good, timeout=10).status_code == 401
    assert emulator.http.get(f"{url}/c0nosuchconnector000", timeout=10).status_code == 404

    connector_id = create_connector(emulator, "https://example.com/push", displayName="kept")
    bad_patch = emulator.http.patch(f"{url}/{connector_id}", json={"status": "PAUSED"}, timeout=10)
    assert bad_patch.status_code == 400
    masked = emulator.http.patch(
        f"{url}/{connector_id}",
        params={"update_mask": "httpConfig.url"},
        json={"displayName": "ignored", "httpConfig": {"url": "https://example.org/new"}},
        timeout=10,
    ).json()
    assert (masked["displayName"], masked["httpConfig"]["url"]) == ("kept", "https://example.org/new")
    assert masked["httpConfig"]["signatureSecret"] == SECRET


# --- units ----------------------------------------------------------------------------------------------

# A push DT made, from disruptive-technologies/python-integrations' test events (secret "test-secret").
_DT_BODY = (
    b'{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/'
    b'emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},'
    b'"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":'
    b'"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}'
)
_DT_SIGNATURE = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGVja3N1bSI6ImYyYjVkYzA0OTY0MzcyMDFkM2NlZTE1NmMyMzNhMTMzNTYwM2Q0"
    "NjUiLCJjaGVja3N1bV9zaGEyNTYiOiJhZmQ4MWExNmJiOWMwNzZlNTdmOTI3MjhmMjg0ZmY1NTgzMWJmZGYxZDNjMmMxMGI4MzM1Njdm"
    "NTIxZDc4MmRlIiwiZXhwIjoxNjQ0NTAwNTMzLCJpYXQiOjE2NDQ0OTY5MzMsImp0aSI6ImM4MmdnOTloZ2EzNWpjMmFma2VnIn0."
    "gm8m_HrhlOnAyS08CfR_RNYdZQIpGV6E8bk3UiAR3uo"
)


def test_the_signature_is_dt_s_byte_for_byte() -> None:
    assert signature(_DT_BODY, "test-secret", 1644496933.4, "c82gg99hga35jc2afkeg") == _DT_SIGNATURE


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0s"), (0.411, "0.411s"), (2.0, "2s"), (1.5, "1.500s"), (0.0000125, "0.000012500s")],
)
def test_latency_is_written_as_a_protobuf_duration(seconds: float, text: str) -> None:
    assert proto_duration(seconds) == text
