"""The receiver's parts on their own: the signature check with a controlled clock, the body check, the
spool contract (SQLite here; PostgreSQL too, marked e2e), secrets kept out of reprs and logs, and the HTTP
app in-process against a spool that fails or stalls."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tap_disruptive.model.pushes import BadPush, Push, parse_push
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.receiver.app import Receiver
from tap_disruptive.receiver.config import ConnectorSecrets, ReceiverConfig
from tap_disruptive.receiver.logs import ScrubbingFormatter
from tap_disruptive.receiver.signature import SignatureRefused, SignatureVerifier
from tap_disruptive.spool import (
    Appended,
    Spool,
    SpoolError,
    SpoolMissing,
    SpoolStats,
    SqliteSpool,
    open_spool,
    shown_target,
    spool_password,
)
from tap_disruptive.spool.offload import OffloadedSpool
from tests.support.services import Postgres
from tests.test_receiver import ROTATED_SECRET, SECRET, STRANGER_SECRET, dt_push, dt_signature

ISSUED = 1_700_000_000


def verifier(now: float, *secrets: str) -> SignatureVerifier:
    return SignatureVerifier(ConnectorSecrets(secrets or (SECRET,)), clock=lambda: now)


def refusal(check: SignatureVerifier, token: str, body: bytes) -> str:
    with pytest.raises(SignatureRefused) as refused:
        check.verify(token, body)
    return refused.value.reason


# --- the signature ----------------------------------------------------------------------------------------


def test_a_dt_signature_verifies_and_gives_its_claims() -> None:
    body = dt_push()
    claims = verifier(ISSUED + 10).verify(dt_signature(body, issued_at=ISSUED), body)
    assert sorted(claims) == ["checksum", "checksum_sha256", "exp", "iat", "jti"]
    assert claims["exp"] == ISSUED + 3600


def test_expiry_is_checked_against_the_clock_with_a_minute_of_leeway() -> None:
    body = dt_push()
    token = dt_signature(body, issued_at=ISSUED)
    expires = ISSUED + 3600
    assert verifier(expires + 60).verify(token, body)["iat"] == ISSUED
    assert refusal(verifier(expires + 61), token, body) == "expired_signature"


def test_a_token_without_exp_is_not_refused_for_it() -> None:
    body = dt_push()
    claims = {"checksum_sha256": hashlib.sha256(body).hexdigest()}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert verifier(time.time()).verify(token, body) == claims


def test_a_non_numeric_exp_is_malformed() -> None:
    body = dt_push()
    claims = jwt.decode(dt_signature(body), SECRET, algorithms=["HS256"])
    token = jwt.encode({**claims, "exp": "tomorrow"}, SECRET, algorithm="HS256")
    assert refusal(verifier(time.time()), token, body) == "malformed_signature"


def test_any_configured_secret_verifies_and_no_other() -> None:
    body = dt_push()
    check = verifier(ISSUED, SECRET, ROTATED_SECRET)
    for secret in (SECRET, ROTATED_SECRET):
        assert check.verify(dt_signature(body, secret, issued_at=ISSUED), body)
    assert refusal(check, dt_signature(body, STRANGER_SECRET, issued_at=ISSUED), body) == "wrong_secret"


def test_each_checksum_present_must_match() -> None:
    body, other = dt_push(), dt_push()
    check = verifier(ISSUED)
    assert check.verify(dt_signature(body, issued_at=ISSUED, sha256=False), body)
    assert check.verify(dt_signature(body, issued_at=ISSUED, sha1=False), body)
    assert refusal(check, dt_signature(other, issued_at=ISSUED, sha256=False), body) == "checksum_mismatch"
    assert refusal(check, dt_signature(other, issued_at=ISSUED, sha1=False), body) == "checksum_mismatch"


# --- the body ---------------------------------------------------------------------------------------------


def test_a_push_is_parsed_and_kept_as_received() -> None:
    body = dt_push(labels={"name": "door"})
    push = parse_push(body)
    assert push.body == body.decode()
    assert push.labels == {"name": "door"}
    assert push.metadata["deviceType"] == "touch"
    assert push.event["eventId"] == push.event_id


def test_dt_nine_digit_stamps_are_canonicalised_and_labels_may_be_absent() -> None:
    event: dict[str, Any] = {
        "eventId": "bboqciu55u1g00c0g9n0",
        "targetName": "projects/bbbk89v86c6000c19pbg/devices/bapo55k1hbj000f5l0ig",
        "eventType": "touch",
        "data": {"touch": {"updateTime": "2018-05-08T13:29:47.543486780Z"}},
        "timestamp": "2018-05-08T13:29:47.543483560Z",
    }
    push = parse_push(json.dumps({"event": event}).encode())
    assert push.timestamp == "2018-05-08T13:29:47.543483Z"
    assert (push.labels, push.metadata) == ({}, {})


def test_a_bad_body_says_what_is_wrong_without_echoing_it() -> None:
    with pytest.raises(BadPush, match=r"event\.timestamp") as bad:
        parse_push(dt_push().replace(b'"timestamp":"', b'"timestamp":"SECRET-LOOKING-'))
    assert "SECRET-LOOKING" not in str(bad.value)


# --- secrets stay hidden ----------------------------------------------------------------------------------


def test_secrets_are_never_in_reprs() -> None:
    secrets = ConnectorSecrets([SECRET, ROTATED_SECRET])
    url = "postgresql://spool:pa55word@db.example:5432/receiver?sslpassword=also-secret"
    config = ReceiverConfig(secrets=secrets, spool=url)
    shown = [repr(secrets), str(secrets), repr(config), repr(SignatureVerifier(secrets))]
    for text in shown:
        for hidden in (SECRET, ROTATED_SECRET, "pa55word", "also-secret"):
            assert hidden not in text
    assert "2 hidden" in repr(secrets)
    with pytest.raises(ValueError, match="at least one"):
        ConnectorSecrets(["", SECRET])


def test_a_spool_url_is_shown_without_its_password() -> None:
    url = "postgresql://spool:pa55word@db.example:5432/receiver?sslpassword=also-secret"
    assert shown_target(url) == "postgresql://spool:***@db.example:5432/receiver?***"
    assert spool_password(url) == "pa55word"
    assert shown_target("postgres://db/receiver") == "postgres://db/receiver"
    assert (shown_target("spool.sqlite"), spool_password("spool.sqlite")) == ("spool.sqlite", None)


def test_the_log_hides_secrets_in_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ScrubbingFormatter([SECRET, "pa55word", ""]))
    log = logging.getLogger(f"receiver-test-{uuid.uuid4().hex}")
    log.addHandler(handler)
    log.propagate = False
    log.warning("connecting with %s", SECRET)
    try:
        raise RuntimeError("password pa55word refused")
    except RuntimeError:
        log.exception("spool trouble")
    text = stream.getvalue()
    assert "connecting with ***" in text and "password *** refused" in text
    assert SECRET not in text and "pa55word" not in text


# --- the spool contract, on SQLite and on PostgreSQL ------------------------------------------------------


def postgres_url(postgres: Postgres, database: str) -> str:
    # The test cluster trusts loopback: the password is there to be hidden, not checked.
    return f"postgresql://{postgres.user}:{postgres.password}@{postgres.host}:{postgres.port}/{database}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)])
def spool_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "spool.sqlite")
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres_url(postgres, postgres.new_database(f"receiver_{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def spool(spool_target: str) -> Any:
    opened = open_spool(spool_target)
    yield opened
    opened.close()


def pushes(count: int) -> list[Push]:
    return [parse_push(dt_push()) for _ in range(count)]


def test_append_stores_a_push_once(spool: Spool) -> None:
    (push,) = pushes(1)
    assert spool.append(push, ISSUED) is Appended.STORED
    assert spool.append(push, ISSUED + 5) is Appended.DUPLICATE
    (stored,) = spool.read()
    assert (stored.event_id, stored.body, stored.timestamp) == (push.event_id, push.body, push.timestamp)
    assert stored.received_at == format_timestamp(ISSUED)  # the first receipt's time
    assert (stored.event, stored.labels, stored.metadata) == (push.event, push.labels, push.metadata)


def test_read_pages_in_seq_order(spool: Spool) -> None:
    batch = pushes(25)
    for push in batch:
        spool.append(push, ISSUED)
    seen, after = [], 0
    while page := spool.read(after_seq=after, limit=7):
        assert len(page) <= 7
        seen += page
        after = page[-1].seq
    seqs = [event.seq for event in seen]
    assert seqs == sorted(set(seqs))
    assert [event.event_id for event in seen] == [push.event_id for push in batch]
    assert spool.read(after_seq=seqs[11], limit=3) == seen[12:15]


def test_prune_removes_what_was_received_before_the_cut(spool: Spool) -> None:
    old, new = pushes(2)
    spool.append(old, ISSUED)
    spool.append(new, ISSUED + 100)
    assert spool.stats() == SpoolStats(2, format_timestamp(ISSUED), format_timestamp(ISSUED + 100))
    assert spool.prune(older_than=ISSUED + 50) == 1
    assert [event.event_id for event in spool.read()] == [new.event_id]
    assert spool.prune(older_than=ISSUED + 50) == 0


def test_the_highest_seq_pruned_is_remembered_for_readers_left_behind(spool: Spool) -> None:
    assert (spool.pruned_through(), spool.last_seq()) == (0, 0)
    for push in pushes(3):
        spool.append(push, ISSUED)
    (newer,) = pushes(1)
    spool.append(newer, ISSUED + 100)
    seqs = [event.seq for event in spool.read()]
    assert spool.prune(older_than=ISSUED + 50) == 3
    assert (spool.pruned_through(), spool.last_seq()) == (seqs[2], seqs[3])
    assert spool.prune(older_than=ISSUED + 50) == 0
    assert spool.pruned_through() == seqs[2]  # a prune that deletes nothing moves nothing
    assert spool.prune(older_than=ISSUED + 200) == 1
    # Everything pruned: the newest seq is still known, so a reader from now misses nothing to come.
    assert (spool.pruned_through(), spool.last_seq()) == (seqs[3], seqs[3])


def test_a_reader_never_makes_a_spool(spool_target: str) -> None:
    with pytest.raises(SpoolMissing, match="no spool"):
        open_spool(spool_target, create=False)
    with pytest.raises(SpoolMissing, match="no spool"):  # nor any part of one: still missing
        open_spool(spool_target, create=False)
    open_spool(spool_target).close()  # the receiver makes it
    open_spool(spool_target, create=False).close()


def test_a_seq_is_never_handed_out_twice_even_after_pruning_everything(spool: Spool) -> None:
    for push in pushes(3):
        spool.append(push, ISSUED)
    last = spool.read()[-1].seq
    assert spool.prune(older_than=ISSUED + 1) == 3
    (later,) = pushes(1)
    spool.append(later, ISSUED + 2)
    (event,) = spool.read(after_seq=last)
    assert event.event_id == later.event_id and event.seq > last


def test_a_reopened_spool_keeps_everything(spool_target: str) -> None:
    batch = pushes(5)
    first = open_spool(spool_target)
    for push in batch:
        first.append(push, ISSUED)
    first.close()
    second = open_spool(spool_target)
    try:
        assert [event.event_id for event in second.read()] == [push.event_id for push in batch]
        assert second.append(batch[0], ISSUED) is Appended.DUPLICATE
        second.ping()
    finally:
        second.close()


def test_the_sqlite_spool_is_one_wal_file_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = SqliteSpool(path)
    try:
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        with sqlite3.connect(path) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        spool.close()


def test_a_spool_from_a_newer_receiver_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    SqliteSpool(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(SpoolError, match="newer"):
        SqliteSpool(path)


# --- the app against a spool in trouble -------------------------------------------------------------------


class TroubledSpool:
    """Fails every call, or with `stall`, blocks until released (a hung disk or database)."""

    kind = "troubled"

    def __init__(self, stall: bool = False) -> None:
        self.stall = stall
        self.release = threading.Event()

    def _trouble(self) -> Any:
        if self.stall:
            self.release.wait(60)
        raise SpoolError("the disk is on fire")

    def append(self, push: Push, received_at: float) -> Appended:
        return self._trouble()  # type: ignore[no-any-return]

    def read(self, after_seq: int = 0, limit: int = 1000) -> list[Any]:
        return self._trouble()  # type: ignore[no-any-return]

    def prune(self, older_than: float) -> int:
        return self._trouble()  # type: ignore[no-any-return]

    def pruned_through(self) -> int:
        return self._trouble()  # type: ignore[no-any-return]

    def last_seq(self) -> int:
        return self._trouble()  # type: ignore[no-any-return]

    def stats(self) -> SpoolStats:
        return self._trouble()  # type: ignore[no-any-return]

    def ping(self) -> None:
        self._trouble()

    def close(self) -> None:
        self.release.set()


async def _exchange(spool: TroubledSpool, deadline: float) -> list[tuple[int, dict[str, Any], float]]:
    """POST a signed push, GET /healthz and /metrics: each status, JSON answer and seconds taken."""
    offloaded = OffloadedSpool(spool, deadline)
    secrets = ConnectorSecrets([SECRET])
    receiver = Receiver(ReceiverConfig(secrets), offloaded, SignatureVerifier(secrets))
    body = dt_push()
    answers = []
    try:
        async with TestClient(TestServer(receiver.make_app())) as client:
            headers = {"X-Dt-Signature": dt_signature(body)}
            for method, path, data in (
                ("POST", "/", body),
                ("GET", "/healthz", None),
                ("GET", "/metrics", None),
            ):
                started = time.monotonic()
                response = await client.request(method, path, data=data, headers=headers)
                answers.append((response.status, await response.json(), time.monotonic() - started))
    finally:
        spool.release.set()
        offloaded.close()
    return answers


@pytest.mark.parametrize("stall", [False, True], ids=["failing", "stalled"])
def test_a_push_the_spool_cannot_take_is_answered_503_in_time(stall: bool) -> None:
    (push, pushed, took), (health, _, _), (metrics, counts, _) = asyncio.run(
        _exchange(TroubledSpool(stall=stall), deadline=0.5)
    )
    assert (push, pushed["reason"]) == (503, "spool_unavailable")
    assert took < 5  # the deadline, not the stalled call, decides: well inside DT's 10 s
    assert health == 503
    assert metrics == 200
    assert (counts["failed"], counts["stored"], counts["spool"]["available"]) == (1, 0, False)
