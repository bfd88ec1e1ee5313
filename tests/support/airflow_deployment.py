"""A real Airflow deployment for end-to-end tests and the demo: `airflow api-server`, `scheduler`,
`dag-processor` and one or more `triggerer`s as separate processes (LocalExecutor), on a throwaway
AIRFLOW_HOME with SQLite, or on a new database of the test PostgreSQL cluster when
TAP_DISRUPTIVE_TEST_PGPORT names one.

    connections = {"disruptive_default": airflow_connection(emulator)}
    with AirflowDeployment(dags_folder, connections=connections) as airflow:
        airflow.wait_for_watchers(1)
        ...
        runs = airflow.dag_runs("disruptive_touch_scheduled")

Each process logs to a file of its own under `<home>/process-logs/`. `stop()` (also on leaving the
`with`, whatever happened) ends them all, SIGKILLing what is left of each process group after a timeout;
the home is removed unless TAP_DISRUPTIVE_KEEP_AIRFLOW_HOME is set (then its path is printed).

State is read straight from the metadata database with SQLAlchemy: a query takes milliseconds, where a
subprocess importing Airflow takes seconds and the REST API wants a token. The few tables and columns
read are Airflow 3.3's.

Measured on 2 shared cores (the touch example DAG alone): the SQLite home is a copy of a database
migrated once per process (`airflow db migrate`: 4-8 s; on PostgreSQL each deployment migrates its own,
~4 s). The triggerer runs the watcher 10-13 s after `start()` (the dag-processor has written the DAG ~4 s
after its own start), and the trigger's DT stream opens 5-16 s after that, mostly while the triggerer's
supervisor builds its in-process Execution API on the trigger's first connection lookup (no heartbeat
for 7-10 s). Starting the scheduler and api-server only once the watcher ran got it running ~5 s sooner
but its stream no sooner, so all four start at once. A restarted triggerer runs the watcher again 3-8 s
after it starts (after SIGKILL: once the dead job's heartbeat is older than the threshold). `stop()`
takes 1-10 s (a triggerer may wait 10 s for its trigger runner to exit).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import sqlalchemy
from sqlalchemy import text

from tap_disruptive.testing import wait_until
from tests.support.services import ROOT, Postgres, free_port

AIRFLOW = Path(sys.executable).parent / "airflow"
KEEP_HOME_VARIABLE = "TAP_DISRUPTIVE_KEEP_AIRFLOW_HOME"

# A SIGKILLed triggerer's watchers go to another once its heartbeat is older than the threshold: with
# the defaults (5 s beats, 30 s threshold) each crash test would wait half a minute. But a triggerer's
# supervisor stops beating for 7-10 s here when its first trigger asks for a connection (it builds its
# in-process Execution API then): with 6 s, and once with 10 s, a standby triggerer that was already up
# took the watcher over from a healthy one that had just started it. Start standbys after that.
TRIGGERER_HEALTH_CHECK_THRESHOLD = 10.0
TRIGGERER_HEARTBEAT = 1.0

# Settings that make a deployment quick on two cores: DAG files found and parsed at once, a scheduler
# loop well under a second, one parsing process, few executor workers, and no log servers (their fixed
# ports would clash between two triggerers, and with any other deployment on the machine).
SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    # Watchers only run for unpaused DAGs; unpausing from here would race the dag-processor.
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__AUTH_MANAGER": (
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    ),
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(TRIGGERER_HEARTBEAT),
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    "AIRFLOW__API__WORKERS": "1",
}

_RUNS = text(
    "SELECT id, run_id, state, run_type, queued_at, start_date, end_date FROM dag_run "
    "WHERE dag_id = :dag_id ORDER BY id"
)
_RUN_EVENTS = text(
    "SELECT link.dag_run_id, event.id, asset.name, event.timestamp, event.extra "
    "FROM dagrun_asset_event AS link "
    "JOIN dag_run AS run ON run.id = link.dag_run_id "
    "JOIN asset_event AS event ON event.id = link.event_id "
    "JOIN asset ON asset.id = event.asset_id "
    "WHERE run.dag_id = :dag_id ORDER BY event.timestamp, event.id"
)
_ASSET_EVENTS = text(
    "SELECT event.id, asset.name, event.timestamp, event.extra FROM asset_event AS event "
    "JOIN asset ON asset.id = event.asset_id WHERE asset.name = :asset ORDER BY event.timestamp, event.id"
)
_WATCHERS = text(
    "SELECT watcher.trigger_id, watcher.name, asset.name, trigger.triggerer_id, "
    "job.state, job.end_date, job.latest_heartbeat "
    "FROM asset_watcher AS watcher JOIN asset ON asset.id = watcher.asset_id "
    "JOIN trigger ON trigger.id = watcher.trigger_id "
    "LEFT JOIN job ON job.id = trigger.triggerer_id ORDER BY watcher.trigger_id"
)
_TRIGGERER_JOBS = text("SELECT id FROM job WHERE job_type = 'TriggererJob'")
_XCOM = text(
    "SELECT value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id AND task_id = :task_id "
    "AND key = :key AND map_index = -1"
)


@dataclass(frozen=True)
class AssetEvent:
    id: int
    asset: str
    timestamp: datetime
    extra: dict[str, Any]

    @property
    def payload(self) -> Any:
        """What the watcher's trigger fired with (`TriggerEvent.payload`); None for other events."""
        return self.extra.get("payload")


@dataclass(frozen=True)
class DagRun:
    id: int
    run_id: str
    state: str
    run_type: str
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    events: tuple[AssetEvent, ...] = ()  # the asset events it was triggered by, in time order

    @property
    def finished(self) -> bool:
        return self.state in {"success", "failed"}


@dataclass(frozen=True)
class Watcher:
    trigger_id: int
    name: str
    asset: str
    job_id: int | None  # the triggerer job its trigger is assigned to
    triggerer: str | None  # the name of the triggerer process that job is (or was) ours
    alive: bool  # that job is alive as Airflow counts it (running, heartbeat within the threshold)
    running: bool  # alive, and the current job of a running triggerer process of this deployment


@dataclass
class _Process:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        # Each component leads a process group of its own, holding what it forks (task runners, the
        # triggerer's trigger runner, the api-server's worker), none of which may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def signal(self, signum: int) -> None:
        if not self.running:
            return
        if signum == signal.SIGKILL:
            self.signal_group(signal.SIGKILL)
        else:
            # The component alone, as a service manager would: it stops its own children.
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def finish(self, deadline: float) -> int:
        """Wait for the exit until `deadline` (monotonic), then SIGKILL; clear the group either way."""
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait()
        self.signal_group(signal.SIGKILL)
        self.log.close()
        return self.process.returncode


@dataclass
class Timings:
    """Seconds since `start()` began: what a deployment costs."""

    database: float = 0.0  # the metadata database ready (copied from a migrated template, or migrated)
    started: float = 0.0  # every process spawned
    first_watcher: float | None = None  # `wait_for_watchers` first saw its watchers running
    marks: dict[str, float] = field(default_factory=dict)


class AirflowDeployment:
    """Airflow's four components as processes on one metadata database; a context manager."""

    def __init__(
        self,
        dags_folder: Path,
        *,
        connections: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        triggerers: tuple[str, ...] = ("triggerer",),
        database_url: str | None = None,
        home: Path | None = None,
        health_check_threshold: float = TRIGGERER_HEALTH_CHECK_THRESHOLD,
    ) -> None:
        """`connections` maps connection ids to `AIRFLOW_CONN_<ID>` values (JSON or URI); `environment`
        adds or overrides variables of every process; `triggerers` names the triggerers started with
        the rest (names start with "triggerer"); `health_check_threshold` is how long (s) a triggerer
        may go without a heartbeat before another takes its triggers. Without `database_url`: a new
        database of the PostgreSQL cluster TAP_DISRUPTIVE_TEST_PGPORT names, else SQLite in the home."""
        self.dags_folder = Path(dags_folder).resolve()
        self.connections = dict(connections or {})
        self.extra_environment = dict(environment or {})
        self.initial_triggerers = tuple(_triggerer_name(name) for name in triggerers)
        self.database_url = database_url
        self.health_check_threshold = health_check_threshold
        self._own_home = home is None
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="airflow-deployment-"))
        self.logs = self.home / "process-logs"
        self.api_port = free_port()
        self.environment: dict[str, str] = {}
        self.timings = Timings()
        self._postgres_database: tuple[Postgres, str] | None = None
        self._processes: dict[str, _Process] = {}
        self._job_names: dict[int, str] = {}  # triggerer job id -> the name of its process
        self._current_jobs: dict[str, int] = {}  # triggerer name -> the job of its latest start
        self._pending: tuple[str, set[int]] | None = None  # a triggerer whose job is not known yet
        self._engine: sqlalchemy.Engine | None = None
        self._started_at = time.monotonic()

    # --- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> AirflowDeployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._started_at = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        url = self.database_url or self._default_database_url()
        self.environment = self._environment(url)
        self._prepare_database(url)
        self.timings.database = self._elapsed()
        # The dag-processor first: the watchers exist once it has written the DAGs.
        self._spawn("dag-processor", ["dag-processor"])
        for name in self.initial_triggerers:
            self._start_triggerer_process(name)
        self._spawn("scheduler", ["scheduler", "--skip-serve-logs"])
        self._spawn("api-server", ["api-server", "--port", str(self.api_port), "--workers", "1"])
        self.timings.started = self._elapsed()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every process: SIGTERM to all at once, SIGKILL to what is left after `timeout` (or at
        once if the wait is interrupted, by a second Ctrl-C say)."""
        processes = list(self._processes.values())
        try:
            for process in processes:
                process.signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for process in processes:
                with contextlib.suppress(Exception):
                    process.finish(deadline)
        finally:
            for process in processes:
                process.signal_group(signal.SIGKILL)
            self._clean_up()

    def _clean_up(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._postgres_database is not None:
            cluster, database = self._postgres_database
            with contextlib.suppress(Exception), cluster.connect() as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            self._postgres_database = None
        if self._own_home:
            if os.environ.get(KEEP_HOME_VARIABLE):
                print(f"Airflow home kept: {self.home}", file=sys.stderr)
            else:
                shutil.rmtree(self.home, ignore_errors=True)

    # --- triggerers ----------------------------------------------------------------------------------

    def start_triggerer(self, name: str = "triggerer", timeout: float = 120.0) -> None:
        """Start (or start again) the triggerer `name`; returns once its job is in the database, so that
        the watchers it claims are told apart from another triggerer's."""
        name = _triggerer_name(name)
        current = self._processes.get(name)
        if current is not None and current.running:
            raise RuntimeError(f"{name} is running already")
        if current is not None:
            current.finish(time.monotonic())
        self._start_triggerer_process(name)
        self._resolve_pending(timeout)

    def stop_triggerer(
        self, name: str = "triggerer", signum: int = signal.SIGTERM, timeout: float = 30.0
    ) -> int:
        """Stop the triggerer `name`; its exit code. SIGTERM stops it gracefully (Airflow ends its job
        at once, so another triggerer may claim its watchers right away); SIGKILL kills its whole
        process group, as a lost machine would (its job lives on until its heartbeat is older than the
        health check threshold). SIGKILL after `timeout` if it has not exited by then."""
        process = self._processes[_triggerer_name(name)]
        process.signal(signum)
        return process.finish(time.monotonic() + timeout)

    def triggerer_running(self, name: str = "triggerer") -> bool:
        process = self._processes.get(_triggerer_name(name))
        return process is not None and process.running

    def _start_triggerer_process(self, name: str) -> None:
        # Jobs are told apart by when they appear: one triggerer at a time may be without its job.
        self._resolve_pending(timeout=120)
        self._pending = (name, self._triggerer_job_ids())
        self._spawn(name, ["triggerer", "--skip-serve-logs"])

    def _resolve_pending(self, timeout: float) -> None:
        """Name the job of the triggerer started last: the triggerer job that appeared since."""
        if self._pending is None:
            return
        name, known = self._pending
        process = self._processes[name]
        new: set[int] = set()

        def appeared() -> bool:
            nonlocal new
            new = self._triggerer_job_ids() - known
            return bool(new) or not process.running

        if not wait_until(appeared, timeout=timeout, interval=0.2) or not new:
            if timeout > 0 or not process.running:
                raise RuntimeError(f"{name} registered no job:\n{self.log_tail(name)}")
            return
        job = min(new)
        self._job_names[job] = name
        self._current_jobs[name] = job
        self._pending = None

    def _triggerer_job_ids(self) -> set[int]:
        try:
            with self.engine.connect() as connection:
                return {int(row[0]) for row in connection.execute(_TRIGGERER_JOBS)}
        except sqlalchemy.exc.OperationalError:
            return set()  # SQLite busy with a writer: asked again on the next poll

    # --- what Airflow did ----------------------------------------------------------------------------

    def watchers(self) -> list[Watcher]:
        """Every asset watcher, with the triggerer its trigger is assigned to."""
        self._resolve_pending(timeout=0)
        now = datetime.now(UTC)
        found = []
        with self.engine.connect() as connection:
            for trigger_id, name, asset, job_id, state, end_date, heartbeat in connection.execute(_WATCHERS):
                beat = _timestamp(heartbeat)
                alive = (
                    job_id is not None
                    and state == "running"
                    and end_date is None
                    and beat is not None
                    and now - beat < timedelta(seconds=self.health_check_threshold)
                )
                owner = self._job_names.get(int(job_id)) if job_id is not None else None
                running = (
                    alive
                    and owner is not None
                    and self._current_jobs.get(owner) == job_id
                    and self.triggerer_running(owner)
                )
                found.append(Watcher(int(trigger_id), name, asset, job_id, owner, alive, running))
        return found

    def wait_for_watchers(self, count: int = 1, timeout: float = 180.0) -> list[Watcher]:
        """Wait until `count` watcher triggers run on a live triggerer of this deployment (a triggerer
        starts a trigger within about a second of claiming it); those watchers."""
        running: list[Watcher] = []

        def enough() -> bool:
            nonlocal running
            self.check_components()
            try:
                running = [watcher for watcher in self.watchers() if watcher.running]
            except sqlalchemy.exc.OperationalError:
                return False  # the dag-processor has not written yet, or SQLite is busy
            return len({watcher.trigger_id for watcher in running}) >= count

        if not wait_until(enough, timeout=timeout, interval=0.2):
            raise TimeoutError(f"fewer than {count} watchers running after {timeout} s: {self.watchers()}")
        if self.timings.first_watcher is None:
            self.timings.first_watcher = self._elapsed()
        return running

    def dag_runs(self, dag_id: str) -> list[DagRun]:
        """The DAG's runs in creation order, each with the asset events that triggered it."""
        with self.engine.connect() as connection:
            events: dict[int, list[AssetEvent]] = {}
            for run_id, *event in connection.execute(_RUN_EVENTS, {"dag_id": dag_id}):
                events.setdefault(int(run_id), []).append(_asset_event(*event))
            return [
                DagRun(
                    id=int(row[0]),
                    run_id=str(row[1]),
                    state=str(row[2]),
                    run_type=str(row[3]),
                    queued_at=_timestamp(row[4]),
                    start_date=_timestamp(row[5]),
                    end_date=_timestamp(row[6]),
                    events=tuple(events.get(int(row[0]), ())),
                )
                for row in connection.execute(_RUNS, {"dag_id": dag_id})
            ]

    def asset_events(self, asset: str) -> list[AssetEvent]:
        """The events of the asset named `asset` in time order: what its watchers fired, whether or not a
        DAG run has taken them yet."""
        with self.engine.connect() as connection:
            return [_asset_event(*row) for row in connection.execute(_ASSET_EVENTS, {"asset": asset})]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value (JSON-decoded), or None."""
        parameters = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "key": key}
        with self.engine.connect() as connection:
            value = connection.execute(_XCOM, parameters).scalar()
        # SQLite hands back the JSON text; PostgreSQL (JSONB) the value, which may be a str itself.
        if self.engine.dialect.name == "sqlite" and isinstance(value, str | bytes):
            return json.loads(value)
        return value

    def trigger_dag(self, dag_id: str, timeout: float = 120.0) -> None:
        """Trigger a run of the DAG, as `airflow dags trigger` does (once the dag-processor has it)."""

        def triggered() -> bool:
            result = subprocess.run(
                [str(AIRFLOW), "dags", "trigger", dag_id],
                env=self.environment,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            return result.returncode == 0

        if not wait_until(triggered, timeout=timeout, interval=1):
            raise RuntimeError(f"could not trigger {dag_id}")

    def check_components(self) -> None:
        """Fail, with its log, when a component other than a triggerer has exited."""
        for name, process in self._processes.items():
            if not name.startswith("triggerer") and not process.running:
                raise RuntimeError(
                    f"airflow {name} exited with {process.process.returncode}:\n{self.log_tail(name)}"
                )

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log_tail(self, name: str, characters: int = 4000) -> str:
        try:
            return self.log_path(name).read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    @property
    def api_url(self) -> str:
        return f"http://localhost:{self.api_port}"

    @property
    def engine(self) -> sqlalchemy.Engine:
        if self._engine is None:
            url = self.environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            # SQLite: wait a little for a writer rather than fail at once.
            options: dict[str, Any] = {"connect_args": {"timeout": 5}} if url.startswith("sqlite") else {}
            self._engine = sqlalchemy.create_engine(url, **options)
        return self._engine

    # --- setting up ----------------------------------------------------------------------------------

    def _default_database_url(self) -> str:
        port = os.environ.get("TAP_DISRUPTIVE_TEST_PGPORT")
        if not port:
            return f"sqlite:///{self.home / 'airflow.db'}"
        cluster = Postgres("127.0.0.1", int(port))
        database = cluster.new_database(f"airflow_{uuid.uuid4().hex[:12]}")
        self._postgres_database = (cluster, database)
        return f"postgresql+psycopg://{cluster.user}@{cluster.host}:{cluster.port}/{database}"

    def _environment(self, database_url: str) -> dict[str, str]:
        # Nothing of an Airflow the caller may have configured: the deployment is whole on its own.
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        python_path = os.pathsep.join(path for path in (str(ROOT), os.environ.get("PYTHONPATH")) if path)
        environment = {
            **inherited,
            **SETTINGS,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(self.health_check_threshold),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            # Each component decrypts what another encrypted and accepts the tokens another issued.
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": self.api_url,
            # Tasks run by the LocalExecutor reach Airflow through the api-server.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "PYTHONPATH": python_path,
        }
        if database_url.startswith("postgresql"):
            # Otherwise Airflow derives an asyncpg URL, and asyncpg is not installed.
            environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = database_url
        for conn_id, value in self.connections.items():
            environment[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        environment.update(self.extra_environment)
        return environment

    def _prepare_database(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            # Every fresh migration is the same: copied, it takes milliseconds instead of 3-5 s.
            shutil.copyfile(_sqlite_template(), url.removeprefix("sqlite:///"))
            return
        with self.log_path("db-migrate").open("wb") as log:
            subprocess.run(
                [str(AIRFLOW), "db", "migrate"],
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=300,
            )

    def _spawn(self, name: str, arguments: list[str]) -> None:
        log = self.log_path(name).open("ab")
        try:
            process = subprocess.Popen(
                [str(AIRFLOW), *arguments],
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A group of its own (see _Process), out of reach of the terminal's Ctrl-C: the caller
                # stops it, in order.
                start_new_session=True,
                cwd=self.home,
            )
        except BaseException:
            log.close()
            raise
        self._processes[name] = _Process(name, process, log)
        self.timings.marks[f"{name} spawned"] = self._elapsed()

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started_at, 2)


def _triggerer_name(name: str) -> str:
    return name if name.startswith("triggerer") else f"triggerer-{name}"


_templates: dict[str, Path] = {}


def _sqlite_template() -> Path:
    """A freshly migrated SQLite database, made once per process and Airflow version."""
    key = version("apache-airflow-core")
    if key in _templates and _templates[key].exists():
        return _templates[key]
    directory = Path(tempfile.mkdtemp(prefix="airflow-template-"))
    atexit.register(shutil.rmtree, directory, True)
    database = directory / "airflow.db"
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(directory),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
    }
    subprocess.run(
        [str(AIRFLOW), "db", "migrate"], env=environment, capture_output=True, check=True, timeout=300
    )
    _templates[key] = database
    return database


def _timestamp(value: Any) -> datetime | None:
    """A timestamp column as an aware UTC datetime (SQLite hands back text, PostgreSQL datetimes)."""
    if value is None:
        return None
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _asset_event(event_id: Any, asset: Any, timestamp: Any, extra: Any) -> AssetEvent:
    decoded = json.loads(extra) if isinstance(extra, str | bytes) else extra
    stamp = _timestamp(timestamp)
    assert stamp is not None
    return AssetEvent(int(event_id), str(asset), stamp, dict(decoded or {}))
