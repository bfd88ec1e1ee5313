"""The spool in PostgreSQL (psycopg 3), for several receiver processes behind one endpoint.

A unique eventId makes each event land once whichever process gets it, and seq comes from an identity
column. Identity values are taken at insert, not at commit, so two writers could commit seq 8 before 7 and a
reader paging by seq would step over 7 for good; every insert therefore holds one transaction-scoped
advisory lock from before its seq is taken until its commit, which makes seq order commit order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from tap_disruptive.model.pushes import Push
from tap_disruptive.spool.base import (
    READ_LIMIT,
    Appended,
    SpooledEvent,
    SpoolError,
    SpoolMissing,
    SpoolStats,
)

# "DT_SPOOL" in ASCII: the advisory lock that orders inserts, and schema creation, across processes.
_LOCK_KEY = 0x44545F53504F4F4C
_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS spool_events (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        event_type text NOT NULL,
        target_name text NOT NULL,
        event_time text NOT NULL,
        received_at timestamptz NOT NULL,
        body text NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS spool_events_received_at ON spool_events (received_at)",
    "CREATE TABLE IF NOT EXISTS spool_facts (name text PRIMARY KEY, value bigint NOT NULL)",
)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)


class PostgresSpool:
    kind = "postgresql"

    def __init__(self, url: str, timeout: float = 5.0, create: bool = True) -> None:
        self._url = url
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None
        with self._lock, self._errors("create" if create else "open"):
            db = self._db()
            if not create:
                found = db.execute(
                    "SELECT to_regclass('spool_events'), to_regclass('spool_facts')"
                ).fetchone()
                if found is None or None in found:
                    raise SpoolMissing("no spool in that PostgreSQL database: is it the receiver's --spool?")
                return
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                for statement in _SCHEMA:
                    db.execute(statement)

    def __repr__(self) -> str:
        return "PostgresSpool(<url hidden>)"

    def _db(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
            # A statement that waits (a lock, a stalled server) gives up before DT's 10 s run out.
            connection.execute(f"SET statement_timeout = {round(self._timeout * 1000)}")
            self._connection = connection
        return self._connection

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as error:
            if self._connection is not None and (
                self._connection.broken or isinstance(error, psycopg.OperationalError)
            ):
                self._connection.close()  # the next call connects afresh
                self._connection = None
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise SpoolError(f"cannot {doing} the PostgreSQL spool: {detail}") from None

    def append(self, push: Push, received_at: float) -> Appended:
        row = (
            push.event_id,
            push.event_type,
            push.target_name,
            push.timestamp,
            _moment(received_at),
            push.body,
        )
        with self._lock, self._errors("append to"):
            db = self._db()
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                stored = db.execute(
                    "INSERT INTO spool_events"
                    " (event_id, event_type, target_name, event_time, received_at, body)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING seq",
                    row,
                ).fetchone()
        return Appended.DUPLICATE if stored is None else Appended.STORED

    def read(self, after_seq: int = 0, limit: int = READ_LIMIT) -> list[SpooledEvent]:
        with self._lock, self._errors("read"):
            rows = (
                self._db()
                .execute(
                    "SELECT seq, event_id, event_type, target_name, event_time, received_at, body"
                    " FROM spool_events WHERE seq > %s ORDER BY seq LIMIT %s",
                    (after_seq, limit),
                )
                .fetchall()
            )
        return [
            SpooledEvent(seq, event_id, event_type, target, event_time, _stamp(received) or "", body)
            for seq, event_id, event_type, target, event_time, received, body in rows
        ]

    def prune(self, older_than: float) -> int:
        cutoff = (_moment(older_than),)
        with self._lock, self._errors("prune"):
            db = self._db()
            with db.transaction():
                db.execute(
                    "INSERT INTO spool_facts (name, value)"
                    " SELECT 'pruned_through', max(seq) FROM spool_events WHERE received_at < %s"
                    " HAVING max(seq) IS NOT NULL"
                    " ON CONFLICT (name) DO UPDATE SET value = greatest(spool_facts.value, excluded.value)",
                    cutoff,
                )
                cursor = db.execute("DELETE FROM spool_events WHERE received_at < %s", cutoff)
        return cursor.rowcount

    def pruned_through(self) -> int:
        with self._lock, self._errors("read"):
            return self._pruned_through()

    def _pruned_through(self) -> int:
        row = self._db().execute("SELECT value FROM spool_facts WHERE name = 'pruned_through'").fetchone()
        return int(row[0]) if row else 0

    def last_seq(self) -> int:
        with self._lock, self._errors("read"):
            row = self._db().execute("SELECT coalesce(max(seq), 0) FROM spool_events").fetchone()
            return max(int(row[0]) if row else 0, self._pruned_through())

    def stats(self) -> SpoolStats:
        with self._lock, self._errors("count"):
            row = (
                self._db()
                .execute("SELECT count(*), min(received_at), max(received_at) FROM spool_events")
                .fetchone()
            )
        count, oldest, newest = row or (0, None, None)
        return SpoolStats(int(count), _stamp(oldest), _stamp(newest))

    def ping(self) -> None:
        with self._lock, self._errors("reach"):
            self._db().execute("SELECT 1 FROM spool_events LIMIT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
