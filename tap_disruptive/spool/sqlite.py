"""The default spool: one SQLite file in WAL mode with synchronous=FULL, so a commit is fsync'd.

Several receiver processes may share the file: SQLite lets one write at a time (others wait up to
`busy_timeout`), so seq order is commit order. AUTOINCREMENT keeps a seq from being reused once its row is
pruned, which a consumer's cursor relies on.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tap_disruptive.model.pushes import Push
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.spool.base import (
    READ_LIMIT,
    Appended,
    SpooledEvent,
    SpoolError,
    SpoolMissing,
    SpoolStats,
)

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    target_name TEXT NOT NULL,
    event_time TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_events_received_at ON spool_events (received_at);
CREATE TABLE IF NOT EXISTS spool_facts (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteSpool:
    kind = "sqlite"

    def __init__(self, path: str | Path, busy_timeout: float = 5.0, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not create and not self.path.is_file():
            raise SpoolMissing(f"no spool at {self.path}: is it the receiver's --spool?")
        try:
            # Autocommit (isolation_level=None): each statement is its own transaction, committed on return.
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise SpoolError(f"cannot open the SQLite spool {self.path}: {error}") from None
        try:
            self._prepare()
        except sqlite3.Error as error:
            self._db.close()
            raise SpoolError(f"cannot use the SQLite spool {self.path}: {error}") from None

    def __repr__(self) -> str:
        return f"SqliteSpool({str(self.path)!r})"

    def _prepare(self) -> None:
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"WAL mode refused (journal mode {mode})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise sqlite3.OperationalError(f"schema version {version} is newer than this receiver's")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def append(self, push: Push, received_at: float) -> Appended:
        row = (
            push.event_id,
            push.event_type,
            push.target_name,
            push.timestamp,
            format_timestamp(received_at),
            push.body,
        )
        with self._lock, _errors("append to"):
            cursor = self._db.execute(
                "INSERT INTO spool_events (event_id, event_type, target_name, event_time, received_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                row,
            )
        return Appended.STORED if cursor.rowcount == 1 else Appended.DUPLICATE

    def read(self, after_seq: int = 0, limit: int = READ_LIMIT) -> list[SpooledEvent]:
        with self._lock, _errors("read"):
            rows = self._db.execute(
                "SELECT seq, event_id, event_type, target_name, event_time, received_at, body"
                " FROM spool_events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [SpooledEvent(*row) for row in rows]

    def prune(self, older_than: float) -> int:
        cutoff = (format_timestamp(older_than),)
        with self._lock, _errors("prune"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO spool_facts (name, value)"
                    " SELECT 'pruned_through', max(seq) FROM spool_events WHERE received_at < ?"
                    " GROUP BY 1"
                    " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                    cutoff,
                )
                deleted = self._db.execute("DELETE FROM spool_events WHERE received_at < ?", cutoff).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return deleted

    def pruned_through(self) -> int:
        with self._lock, _errors("read"):
            return self._pruned_through()

    def _pruned_through(self) -> int:
        row = self._db.execute("SELECT value FROM spool_facts WHERE name = 'pruned_through'").fetchone()
        return int(row[0]) if row else 0

    def last_seq(self) -> int:
        with self._lock, _errors("read"):
            row = self._db.execute("SELECT coalesce(max(seq), 0) FROM spool_events").fetchone()
            return max(int(row[0]), self._pruned_through())

    def stats(self) -> SpoolStats:
        with self._lock, _errors("count"):
            count, oldest, newest = self._db.execute(
                "SELECT count(*), min(received_at), max(received_at) FROM spool_events"
            ).fetchone()
        return SpoolStats(count, oldest, newest)

    def ping(self) -> None:
        with self._lock, _errors("reach"):
            self._db.execute("SELECT 1 FROM spool_events LIMIT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()


@contextmanager
def _errors(doing: str) -> Iterator[None]:
    """Turns sqlite3's errors into SpoolError, naming what was being done."""
    try:
        yield
    except sqlite3.Error as error:
        raise SpoolError(f"cannot {doing} the SQLite spool: {error}") from None
