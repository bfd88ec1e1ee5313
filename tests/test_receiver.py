"""The Data Connector receiver over real HTTP on loopback, as a child process with a real SQLite spool:
pushes stored once, retries and concurrent re-sends deduplicated, bad signatures and bodies refused and
never stored, a SIGKILL losing nothing that was answered 200, retention, and the command line.

Pushes are signed as DT signs them (see `dt_signature`); the spool file is read back with plain sqlite3.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from jwt.warnings import InsecureKeyLengthWarning

from tap_disruptive.model.ids import IdFactory
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.receiver.process import ReceiverProcess
from tap_disruptive.testing import wait_until

# Long enough (32+ bytes) that PyJWT does not warn; the receiver accepts both, as during a rotation.
SECRET = "connector-secret-for-tests-0123456789abcdef"
ROTATED_SECRET = "the-next-connector-secret-0123456789abcdef"
STRANGER_SECRET = "not-this-connectors-secret-0123456789abcd"
SECRETS_ENV = {"DT_CONNECTOR_SECRET": f"{SECRET},{ROTATED_SECRET}"}
PROJECT = "c14u9p094l47cdv1o3pg"
DEVICE = "emuc17m6d7lq0bgk44smcqg"
IDS = IdFactory()


# --- pushes as DT sends them ------------------------------------------------------------------------------


def dt_push(*, labels: dict[str, str] | None = None, event: dict[str, Any] | None = None) -> bytes:
    """A touch event as a Data Connector POSTs it: compact JSON of event, labels and metadata."""
    stamp = format_timestamp(time.time())
    document = {
        "event": event
        or {
            "eventId": IDS.new_id(time.time()),
            "targetName": f"projects/{PROJECT}/devices/{DEVICE}",
            "eventType": "touch",
            "data": {"touch": {"updateTime": stamp}},
            "timestamp": stamp,
        },
        "labels": {"name": "door"} if labels is None else labels,
        "metadata": {"deviceId": DEVICE, "projectId": PROJECT, "deviceType": "touch", "productNumber": ""},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def dt_signature(
    body: bytes,
    secret: str = SECRET,
    *,
    issued_at: float | None = None,
    lifetime: int = 3600,
    sha1: bool = True,
    sha256: bool = True,
) -> str:
    """X-Dt-Signature as DT makes it: an HS256 JWT over the raw body's SHA-1 (`checksum`) and SHA-256
    (`checksum_sha256`) hex digests, with iat, exp = iat + 3600 and jti, as in the JWTs DT signed in
    disruptive-technologies/python-integrations, tests/events.py."""
    issued = int(time.time() if issued_at is None else issued_at)
    claims: dict[str, Any] = {}
    if sha1:
        claims["checksum"] = hashlib.sha1(body).hexdigest()
    if sha256:
        claims["checksum_sha256"] = hashlib.sha256(body).hexdigest()
    claims |= {"exp": issued + lifetime, "iat": issued, "jti": IDS.new_id(issued)}
    return jwt.encode(claims, secret, algorithm="HS256")


def event_id_of(body: bytes) -> str:
    return str(json.loads(body)["event"]["eventId"])


def post(url: str, body: bytes, token: str | None, session: Any = requests) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Dt-Signature"] = token
    response: requests.Response = session.post(url, data=body, headers=headers, timeout=30)
    return response


# --- reading the spool file back, independently of the receiver's code ----------------------------------


def spool_rows(spool: Path, event_id: str | None = None) -> list[dict[str, Any]]:
    with sqlite3.connect(spool) as db:
        db.row_factory = sqlite3.Row
        query = "SELECT * FROM spool_events"
        rows = db.execute(f"{query} WHERE event_id = ?", (event_id,)) if event_id else db.execute(query)
        return [dict(row) for row in rows]


def stored_ids(spool: Path) -> list[str]:
    return [row["event_id"] for row in spool_rows(spool)]


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spool_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("receiver") / "spool.sqlite"


@pytest.fixture(scope="module")
def receiver(spool_file: Path) -> Iterator[ReceiverProcess]:
    """One receiver for the module's tests; each test uses events of its own."""
    with ReceiverProcess("--port", "0", "--spool", str(spool_file), env=SECRETS_ENV) as process:
        yield process


class Delta:
    """How a receiver's counters moved between two moments."""

    def __init__(self, receiver: ReceiverProcess) -> None:
        self.receiver = receiver
        self.before = receiver.metrics()

    def __call__(self) -> dict[str, int]:
        after = self.receiver.metrics()
        moved = {key: after[key] - self.before[key] for key in ("received", "stored", "duplicates", "failed")}
        for reason, count in after["refused"].items():
            moved[reason] = count - self.before["refused"][reason]
        return moved


# --- a good push, and the same push again ------------------------------------------------------------------


def test_a_signed_push_is_stored_once_as_received(receiver: ReceiverProcess, spool_file: Path) -> None:
    body = dt_push(labels={"name": "door", "room": "4.12"})
    event_id = event_id_of(body)
    delta = Delta(receiver)
    before = time.time()

    response = post(receiver.url, body, dt_signature(body))

    assert response.status_code == 200
    assert response.json() == {"eventId": event_id, "status": "stored"}
    (row,) = spool_rows(spool_file, event_id)
    assert row["body"] == body.decode()  # DT's event, labels and metadata byte for byte
    assert row["event_type"] == "touch"
    assert row["target_name"] == f"projects/{PROJECT}/devices/{DEVICE}"
    assert row["event_time"] == json.loads(body)["event"]["timestamp"]
    assert format_timestamp(before - 1) <= row["received_at"] <= format_timestamp(time.time() + 1)
    moved = delta()
    assert (moved["received"], moved["stored"], moved["duplicates"]) == (1, 1, 0)


def test_a_retried_push_is_answered_200_and_stored_once(receiver: ReceiverProcess, spool_file: Path) -> None:
    body = dt_push()
    delta = Delta(receiver)
    # DT signs each attempt afresh; a re-send may also come with the rotated secret.
    answers = [
        post(receiver.url, body, dt_signature(body, secret)) for secret in (SECRET, SECRET, ROTATED_SECRET)
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [answer.json()["status"] for answer in answers] == ["stored", "duplicate", "duplicate"]
    assert len(spool_rows(spool_file, event_id_of(body))) == 1
    moved = delta()
    assert (moved["stored"], moved["duplicates"]) == (1, 2)


def test_concurrent_copies_of_one_push_are_stored_once(receiver: ReceiverProcess, spool_file: Path) -> None:
    body = dt_push()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: post(receiver.url, body, dt_signature(body)), range(24)))

    assert {answer.status_code for answer in answers} == {200}
    assert sorted(answer.json()["status"] for answer in answers).count("stored") == 1
    assert len(spool_rows(spool_file, event_id_of(body))) == 1


@pytest.mark.parametrize(
    "signing",
    [
        pytest.param({"sha1": False}, id="sha256-only"),
        # What DT's receiver library checked before its 0.5.1.
        pytest.param({"sha256": False}, id="sha1-only"),
        pytest.param({"secret": ROTATED_SECRET}, id="rotated-secret"),
        # Past exp by less than the minute of clock skew the receiver forgives.
        pytest.param({"lifetime": -30}, id="expired-within-leeway"),
    ],
)
def test_every_way_dt_signs_is_accepted(
    receiver: ReceiverProcess, spool_file: Path, signing: dict[str, Any]
) -> None:
    body = dt_push()
    response = post(receiver.url, body, dt_signature(body, **signing))
    assert response.status_code == 200, response.text
    assert len(spool_rows(spool_file, event_id_of(body))) == 1


# --- refusals: nothing stored ------------------------------------------------------------------------------


def _token_for_another_body(body: bytes) -> str:
    return dt_signature(dt_push())


def _hs512(body: bytes) -> str:
    claims = {"checksum_sha256": hashlib.sha256(body).hexdigest(), "iat": int(time.time())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # HS512 wants a 64-byte key
        return jwt.encode(claims, SECRET, algorithm="HS512")


def _unsigned(body: bytes) -> str:
    header, payload, _ = dt_signature(body).split(".")
    return f"{header}.{payload}."


def _no_checksum(body: bytes) -> str:
    return dt_signature(body, sha1=False, sha256=False)


def _wrong_sha256_right_sha1(body: bytes) -> str:
    claims = jwt.decode(dt_signature(body), SECRET, algorithms=["HS256"])
    claims["checksum_sha256"] = hashlib.sha256(body + b" ").hexdigest()
    return jwt.encode(claims, SECRET, algorithm="HS256")


SIGNATURE_CASES = [
    pytest.param(lambda body: None, "missing_signature", id="missing"),
    pytest.param(lambda body: "", "missing_signature", id="empty"),
    pytest.param(lambda body: "not-a-jwt", "malformed_signature", id="garbage"),
    pytest.param(lambda body: "a.b.c", "malformed_signature", id="three-garbage-parts"),
    pytest.param(_hs512, "malformed_signature", id="hs512"),
    pytest.param(_unsigned, "wrong_secret", id="signature-stripped"),
    pytest.param(lambda body: dt_signature(body, STRANGER_SECRET), "wrong_secret", id="wrong-secret"),
    pytest.param(_token_for_another_body, "checksum_mismatch", id="another-body"),
    pytest.param(_wrong_sha256_right_sha1, "checksum_mismatch", id="sha256-mismatch"),
    pytest.param(_no_checksum, "checksum_mismatch", id="no-checksum"),
    pytest.param(
        lambda body: dt_signature(body, issued_at=time.time() - 7200), "expired_signature", id="expired"
    ),
]


@pytest.mark.parametrize(("sign", "reason"), SIGNATURE_CASES)
def test_a_push_without_a_good_signature_is_refused_401_and_not_stored(
    receiver: ReceiverProcess, spool_file: Path, sign: Any, reason: str
) -> None:
    body = dt_push()
    delta = Delta(receiver)

    response = post(receiver.url, body, sign(body))

    assert response.status_code == 401
    answer = response.json()
    assert answer["reason"] == reason
    assert answer["code"] == 401
    assert SECRET not in response.text and ROTATED_SECRET not in response.text
    assert spool_rows(spool_file, event_id_of(body)) == []
    moved = delta()
    assert (moved[reason], moved["stored"], moved["duplicates"]) == (1, 0, 0)


def test_a_tampered_body_is_refused(receiver: ReceiverProcess, spool_file: Path) -> None:
    """A signed push whose body was changed in flight (the labels here) is not stored."""
    body = dt_push(labels={"name": "door"})
    tampered = body.replace(b'"door"', b'"vault"')
    response = post(receiver.url, tampered, dt_signature(body))
    assert response.status_code == 401
    assert spool_rows(spool_file, event_id_of(body)) == []


def _event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(dt_push())["event"]
    for key, value in changes.items():
        if value is None:
            del event[key]
        else:
            event[key] = value
    return event


BAD_BODIES = [
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'{"labels": {}}', id="no-event"),
    pytest.param(dt_push(event=_event(eventId=None)), id="no-eventId"),
    pytest.param(dt_push(event=_event(eventId=42)), id="numeric-eventId"),
    pytest.param(dt_push(event=_event(eventId="")), id="empty-eventId"),
    pytest.param(dt_push(event=_event(eventType=None)), id="no-eventType"),
    pytest.param(dt_push(event=_event(targetName="devices/d")), id="bad-targetName"),
    pytest.param(dt_push(event=_event(timestamp="2026-02-30T10:00:00Z")), id="impossible-timestamp"),
    pytest.param(dt_push(event=_event(timestamp="yesterday")), id="not-a-timestamp"),
    pytest.param(dt_push(event=_event(data=None)), id="no-data"),
    pytest.param(dt_push(event=_event(data=[1])), id="data-not-object"),
    pytest.param(dt_push().replace(b'"labels":{"name":"door"}', b'"labels":["door"]'), id="labels-list"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_signed_push_with_a_bad_body_is_refused_400_and_not_stored(
    receiver: ReceiverProcess, spool_file: Path, body: bytes
) -> None:
    before = len(spool_rows(spool_file))
    delta = Delta(receiver)

    response = post(receiver.url, body, dt_signature(body))

    assert response.status_code == 400
    assert response.json()["reason"] == "bad_body"
    assert len(spool_rows(spool_file)) == before
    assert delta()["bad_body"] == 1


def test_an_oversized_body_is_refused_413(receiver: ReceiverProcess, spool_file: Path) -> None:
    body = dt_push(labels={"padding": "x" * (1024 * 1024)})
    response = post(receiver.url, body, dt_signature(body))
    assert response.status_code == 413
    assert spool_rows(spool_file, event_id_of(body)) == []


# --- health and metrics ------------------------------------------------------------------------------------


def test_health_and_metrics_describe_the_spool(receiver: ReceiverProcess, spool_file: Path) -> None:
    body = dt_push()
    assert post(receiver.url, body, dt_signature(body)).status_code == 200

    health = requests.get(receiver.health_url, timeout=30)
    metrics = receiver.metrics()

    assert (health.status_code, health.json()["status"]) == (200, "ok")
    rows = spool_rows(spool_file)
    assert metrics["spool"]["events"] == len(rows)
    assert metrics["spool"]["oldest_received_at"] == min(row["received_at"] for row in rows)
    assert metrics["spool"]["newest_received_at"] == max(row["received_at"] for row in rows)
    refused = sum(metrics["refused"].values())
    assert metrics["received"] == metrics["stored"] + metrics["duplicates"] + refused + metrics["failed"]


# --- durability: a crash loses nothing that was acknowledged -----------------------------------------------


def test_a_receiver_killed_mid_load_keeps_every_push_it_answered_200(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    bodies = [dt_push() for _ in range(500)]
    acknowledged: set[str] = set()
    lock = threading.Lock()
    first = ReceiverProcess("--port", "0", "--spool", str(spool), env=SECRETS_ENV).start()

    def send(chunk: list[bytes]) -> None:
        with requests.Session() as session:
            for body in chunk:
                try:
                    response = post(first.url, body, dt_signature(body), session)
                except requests.RequestException:
                    return  # the receiver is gone: DT would re-send this push later
                if response.status_code == 200:
                    with lock:
                        acknowledged.add(event_id_of(body))

    senders = [threading.Thread(target=send, args=(bodies[n::4],)) for n in range(4)]
    for sender in senders:
        sender.start()
    assert wait_until(lambda: len(acknowledged) >= 50, timeout=60)
    first.kill()
    for sender in senders:
        sender.join(timeout=60)
    with lock:
        answered = set(acknowledged)

    assert answered <= set(stored_ids(spool))  # nothing acknowledged was lost
    assert len(answered) < len(bodies)  # the kill did land mid-load

    # DT re-sends what was not acknowledged (and may re-send the rest): each event ends up stored once.
    with ReceiverProcess("--port", "0", "--spool", str(spool), env=SECRETS_ENV) as second:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda body: post(second.url, body, dt_signature(body)), bodies))
        assert {answer.status_code for answer in answers} == {200}
        assert second.metrics()["duplicates"] >= len(answered)
    ids = stored_ids(spool)
    assert sorted(ids) == sorted(event_id_of(body) for body in bodies)


# --- retention ---------------------------------------------------------------------------------------------


def test_events_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    # 0.0005 h = 1.8 s of retention, checked every 0.1 s.
    args = ("--port", "0", "--spool", str(spool), "--retention-hours", "0.0005", "--prune-every", "0.1")
    with ReceiverProcess(*args, env=SECRETS_ENV) as receiver:
        body = dt_push()
        assert post(receiver.url, body, dt_signature(body)).status_code == 200
        assert stored_ids(spool) == [event_id_of(body)]

        assert wait_until(lambda: receiver.metrics()["spool"]["events"] == 0, timeout=20)
        assert stored_ids(spool) == []


# --- the command line --------------------------------------------------------------------------------------


def run_cli(*args: str, secrets: bool = True) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DT_CONNECTOR_SECRET"}
    return subprocess.run(
        [sys.executable, "-m", "tap_disruptive.receiver", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, **SECRETS_ENV} if secrets else env,
    )


def test_the_receiver_refuses_to_start_without_a_secret() -> None:
    result = run_cli("--port", "0", secrets=False)
    assert result.returncode == 2
    assert "DT_CONNECTOR_SECRET" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--port", "70000"), "--port"),
        (("--retention-hours", "0"), "--retention-hours"),
        (("--prune-every", "-1"), "--prune-every"),
        (("--path", "healthz"), "--path"),
        (("--path", "/metrics"), "--path"),
        (("--secret", ""), "--secret"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(args: tuple[str, ...], named: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_version_is_printed() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("disruptive-receiver ")


def test_a_spool_that_cannot_be_opened_stops_the_start(tmp_path: Path) -> None:
    result = run_cli("--port", "0", "--spool", str(tmp_path / "missing" / "spool.sqlite"))
    assert result.returncode == 1
    assert "cannot open the SQLite spool" in result.stderr


def test_a_custom_path_takes_pushes_and_only_it(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    with ReceiverProcess(
        "--port", "0", "--spool", str(spool), "--path", "/dt/push", env=SECRETS_ENV
    ) as receiver:
        assert receiver.url.endswith("/dt/push")
        body = dt_push()
        root = receiver.url.removesuffix("dt/push")
        assert post(root, body, dt_signature(body)).status_code in (404, 405)
        assert stored_ids(spool) == []
        assert post(receiver.url, body, dt_signature(body)).status_code == 200
        assert stored_ids(spool) == [event_id_of(body)]


def test_secrets_never_reach_stdout_or_the_log(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    log_path = tmp_path / "receiver.log"
    with log_path.open("w") as log:
        receiver = ReceiverProcess(
            "--port", "0", "--spool", str(spool), "--log-level", "debug", env=SECRETS_ENV, stderr=log
        ).start()
        try:
            for secret in (SECRET, STRANGER_SECRET):
                body = dt_push()
                post(receiver.url, body, dt_signature(body, secret))
            post(receiver.url, b"{}", dt_signature(b"{}"))
        finally:
            assert receiver.stop() == 0  # SIGTERM stops it cleanly
    text = log_path.read_text()
    handshake = json.dumps(receiver.info)
    assert "POST / 200" in text and "POST / 401" in text and "POST / 400" in text
    assert "2 signature secret(s) accepted" in text
    for secret in (SECRET, ROTATED_SECRET):
        assert secret not in text
        assert secret not in handshake
