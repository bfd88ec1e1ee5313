"""Real services for end-to-end tests: a throwaway PostgreSQL cluster, and Meltano in its own venv."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PG_SCRIPT = ROOT / "scripts" / "pg_cluster.sh"
MELTANO = ROOT / ".meltano-venv" / "bin" / "meltano"
TARGET_POSTGRES = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "target-postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str = "postgres"
    # The cluster trusts loopback and ignores passwords; target-postgres insists on one all the same.
    password: str = "unused"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=database, autocommit=True
        )

    def new_database(self, name: str) -> str:
        with self.connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return name

    def environment(self, database: str) -> dict[str, str]:
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": database,
        }


@contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """The cluster CI started (TAP_DISRUPTIVE_TEST_PGPORT), or one of our own for this test run."""
    port = os.environ.get("TAP_DISRUPTIVE_TEST_PGPORT")
    if port:
        yield Postgres("127.0.0.1", int(port))
        return
    directory = tempfile.mkdtemp(prefix="tap-disruptive-pg-")
    port_number = free_port()
    subprocess.run([str(PG_SCRIPT), "start", directory, str(port_number)], check=True)
    try:
        yield Postgres("127.0.0.1", port_number)
    finally:
        subprocess.run([str(PG_SCRIPT), "stop", directory], check=False)


def meltano_process_environment(state_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        # Each test keeps its own state, away from the project's.
        "MELTANO_STATE_BACKEND_URI": f"file://{state_dir}",
        **extra,
    }


def run_meltano(state_dir: Path, extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`meltano <args>` in this project, with its own state in `state_dir`: one pipeline run at a time
    (Meltano refuses a second run of a running job), whichever test process asks."""
    with meltano_lock():
        return subprocess.run(
            [str(MELTANO), *args],
            cwd=ROOT,
            env=meltano_process_environment(state_dir, extra),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@contextmanager
def meltano_lock() -> Iterator[None]:
    """Held while a test runs a Meltano pipeline in this project, across test processes."""
    path = ROOT / ".meltano" / "tests.lock"
    path.parent.mkdir(exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
