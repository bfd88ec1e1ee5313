"""Two receiver processes on one PostgreSQL spool, as behind a load balancer: every event is pushed to
both at once, each is stored once, and a reader paging by seq while they write misses nothing, because
an insert waits for an earlier uncommitted one."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tap_disruptive.model.pushes import parse_push
from tap_disruptive.receiver.process import ReceiverProcess
from tap_disruptive.spool import SpooledEvent, open_spool
from tap_disruptive.spool.postgres import _LOCK_KEY
from tap_disruptive.testing import wait_until
from tests.support.services import Postgres
from tests.test_receiver import SECRETS_ENV, dt_push, dt_signature, event_id_of, post
from tests.test_receiver_units import postgres_url

pytestmark = pytest.mark.e2e

EVENTS = 120


def follow(url: str, want: int, stop: threading.Event, seen: list[SpooledEvent]) -> None:
    """Page through the spool by seq, as a consumer would, until `want` events are read or `stop`."""
    spool = open_spool(url)
    after = 0
    try:
        while len(seen) < want and not stop.is_set():
            page = spool.read(after_seq=after, limit=10)
            seen += page
            if page:
                after = page[-1].seq
            else:
                stop.wait(0.01)  # nothing new yet: poll again shortly
    finally:
        spool.close()


def test_two_receivers_on_one_database_store_each_event_once(postgres: Postgres, tmp_path: Path) -> None:
    url = postgres_url(postgres, postgres.new_database(f"receivers_{uuid.uuid4().hex[:12]}"))
    args = ("--port", "0", "--spool", url, "--log-level", "info")
    log_path = tmp_path / "receivers.log"
    with (
        log_path.open("w") as log,
        ReceiverProcess(*args, env=SECRETS_ENV, stderr=log) as first,
        ReceiverProcess(*args, env=SECRETS_ENV, stderr=log) as second,
    ):
        assert postgres.password not in first.info["spool"]  # the handshake hides the URL's password
        bodies = [dt_push() for _ in range(EVENTS)]
        seen: list[SpooledEvent] = []
        stop = threading.Event()
        reader = threading.Thread(target=follow, args=(url, EVENTS, stop, seen))
        reader.start()

        def send(job: tuple[str, bytes]) -> tuple[int, float]:
            target, body = job
            started = time.monotonic()
            response = post(target, body, dt_signature(body))
            return response.status_code, time.monotonic() - started

        # Each event goes to both receivers at about the same moment.
        jobs = [(receiver.url, body) for body in bodies for receiver in (first, second)]
        try:
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(send, jobs))
            reader.join(timeout=60)
        finally:
            stop.set()
            reader.join()

        assert {status for status, _ in answers} == {200}
        assert max(took for _, took in answers) < 10  # DT's limit
        counts = [requests.get(receiver.metrics_url, timeout=30).json() for receiver in (first, second)]
        assert sum(count["stored"] for count in counts) == EVENTS
        assert sum(count["duplicates"] for count in counts) == EVENTS

    with postgres.connect(url.rsplit("/", 1)[1]) as db:
        rows = db.execute("SELECT event_id, count(*) FROM spool_events GROUP BY event_id").fetchall()
    assert sorted(str(event_id) for event_id, _ in rows) == sorted(event_id_of(body) for body in bodies)
    assert {count for _, count in rows} == {1}

    # The reader that paged while both wrote got every event once, in strictly rising seq.
    assert sorted(event.event_id for event in seen) == sorted(event_id_of(body) for body in bodies)
    seqs = [event.seq for event in seen]
    assert seqs == sorted(set(seqs))
    log_text = log_path.read_text()
    assert f"spool postgresql://{postgres.user}:***@" in log_text
    assert f":{postgres.password}@" not in log_text


def test_a_write_waits_for_an_earlier_uncommitted_one_so_seq_order_is_commit_order(
    postgres: Postgres,
) -> None:
    """A slow writer holds seq n uncommitted; a later append must not commit n+1 past it, or a reader
    paging by seq would read n+1, move its cursor beyond n and never see n."""
    database = postgres.new_database(f"receiver_{uuid.uuid4().hex[:12]}")
    # One connection each: a spool makes its calls one at a time, and the reader must not queue behind.
    spool, reader = open_spool(postgres_url(postgres, database)), open_spool(postgres_url(postgres, database))
    slow, fast = parse_push(dt_push()), parse_push(dt_push())
    try:
        with postgres.connect(database) as writer, writer.transaction():
            writer.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            writer.execute(
                "INSERT INTO spool_events (event_id, event_type, target_name, event_time, received_at, body)"
                " VALUES (%s, 'touch', %s, %s, now(), %s)",
                (slow.event_id, slow.target_name, slow.timestamp, slow.body),
            )
            appending = threading.Thread(target=spool.append, args=(fast, time.time()))
            appending.start()
            with postgres.connect(database) as watcher:
                waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                assert wait_until(lambda: watcher.execute(waiting).fetchone() == (1,))
            assert reader.read() == []  # neither is visible while the first is uncommitted
        appending.join(timeout=30)
        assert [event.event_id for event in reader.read()] == [slow.event_id, fast.event_id]
    finally:
        spool.close()
        reader.close()
