"""The Data Connector receiver: events per second it accepts (answers 2xx) and its answer times (median and
99th percentile), with its SQLite spool (WAL, synchronous=FULL: each push fsync'd before its 200) and with
its PostgreSQL spool, at 1, 16 and 64 concurrent pushers. Each is read against the same pushers posting to
a bare aiohttp server that answers 200 and stores nothing, measured in the same run: the transport's
ceiling on this machine. DT counts a push as delivered on a 2xx within 10 s, so each p99 is also given as
a fraction of that limit. A last run pushes every event twice, in shuffled order, as DT re-sends: each
push must be answered 2xx and each event stored once, by the answers and by the receiver's /metrics.

Every push is a distinct event with a body and an X-Dt-Signature as a Data Connector sends them. The
receivers and the baseline are child processes of their own; the pushers share one event loop here.
The PostgreSQL rows need a throwaway cluster (tests.support.services); without one they are skipped,
saying why. RECEIVER_THROUGHPUT_SECONDS (default 3) is the time per row, RECEIVER_THROUGHPUT_PUSHERS
(default 1,16,64) the concurrencies.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import string
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

from benchmarks.measure import cpu_seconds
from tap_disruptive.emulator.push_message import SIGNATURE_HEADER, signature
from tap_disruptive.receiver.process import ReceiverProcess
from tap_disruptive.serving.process import ServerProcess

SECONDS = float(os.environ.get("RECEIVER_THROUGHPUT_SECONDS", "3"))
PUSHERS = tuple(int(n) for n in os.environ.get("RECEIVER_THROUGHPUT_PUSHERS", "1,16,64").split(",") if n)
DUPLICATE_PUSHERS = 16
DT_LIMIT = 10.0
# 32 bytes or more, so the receiver has no weak-secret warning to log.
SECRET = "receiver-throughput-benchmark-signature-secret"
PROJECT = "c14u9p094l47cdv1o3pg"
DEVICES = 100
_ID_ALPHABET = string.ascii_lowercase + string.digits


class BaselineProcess(ServerProcess):
    """The ceiling: this module's `--baseline` server, an aiohttp app that reads each push and answers 200."""

    module = "benchmarks.receiver_throughput"
    what = "the no-storage baseline"


def serve_baseline() -> None:
    """Answer every POST 200 with a small JSON body, as the receiver does, but verify and store nothing."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/", answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        # The same one-line handshake as the receiver's, so ServerProcess can start and stop it.
        sys.stdout.write(json.dumps({"url": f"http://127.0.0.1:{port}/"}) + "\n")
        sys.stdout.flush()
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())


class Events:
    """Distinct temperature events: eventIds of 20 lowercase alphanumerics, a run tag then a counter."""

    def __init__(self) -> None:
        self._tag = "".join(random.choices(_ID_ALPHABET, k=8))
        self._count = 0

    def new_id(self) -> str:
        self._count += 1
        return f"{self._tag}{self._count:012d}"

    def body(self) -> bytes:
        """A push body as a Data Connector POSTs it: compact JSON of event, labels and metadata."""
        event_id = self.new_id()
        device_id = f"bench{self._count % DEVICES:015d}"
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        document = {
            "event": {
                "eventId": event_id,
                "targetName": f"projects/{PROJECT}/devices/{device_id}",
                "eventType": "temperature",
                "data": {
                    "temperature": {
                        "value": 21.5,
                        "updateTime": stamp,
                        "samples": [{"value": 21.5, "sampleTime": stamp}],
                    }
                },
                "timestamp": stamp,
            },
            "labels": {"name": f"room {self._count % DEVICES}"},
            "metadata": {
                "deviceId": device_id,
                "projectId": PROJECT,
                "deviceType": "temperature",
                "productNumber": "102081",
            },
        }
        return json.dumps(document, separators=(",", ":")).encode()


@dataclass
class Answers:
    """What the pushers got back: answer times, HTTP statuses, the receiver's stored/duplicate verdicts."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    # CPU seconds over the timed part: the server's, and this process's (the pushers'), to tell which of
    # the two (on a small machine) or neither (a wait on fsync) holds the rate down.
    server_cpu: float = 0.0
    pushers_cpu: float = 0.0

    @property
    def accepted(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.startswith("2"))

    @property
    def not_accepted(self) -> dict[str, int]:
        return {status: count for status, count in self.statuses.items() if not status.startswith("2")}


async def post(session: aiohttp.ClientSession, url: str, body: bytes, ids: Events, answers: Answers) -> None:
    # Signed per push, as DT signs each delivery (a re-send included) with a fresh iat and jti.
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(body, SECRET, time.time(), ids.new_id()),
    }
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        answers.statuses[type(error).__name__] += 1
        return
    answers.latencies.append(time.perf_counter() - started)
    answers.statuses[str(status)] += 1
    if 200 <= status < 300:
        answers.verdicts[str(json.loads(payload).get("status"))] += 1


def _session(pushers: int) -> aiohttp.ClientSession:
    # One connection per pusher, kept alive, as DT's delivery workers would; 30 s is well past DT's limit.
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pushers), timeout=aiohttp.ClientTimeout(total=30)
    )


async def push_for(url: str, server_pid: int, events: Events, pushers: int, seconds: float) -> Answers:
    """`pushers` concurrent pushers, each posting new events one after another for `seconds`."""
    async with _session(pushers) as session:
        # Open every connection before the clock starts, so the row measures pushes, not handshakes.
        warm_up = Answers()
        await asyncio.gather(*(post(session, url, events.body(), events, warm_up) for _ in range(pushers)))
        answers = Answers()
        cpu_before = cpu_seconds(server_pid), cpu_seconds(os.getpid())
        started = time.perf_counter()
        deadline = started + seconds

        async def pusher() -> None:
            while time.perf_counter() < deadline:
                await post(session, url, events.body(), events, answers)

        await asyncio.gather(*(pusher() for _ in range(pushers)))
        answers.seconds = time.perf_counter() - started
        answers.server_cpu = cpu_seconds(server_pid) - cpu_before[0]
        answers.pushers_cpu = cpu_seconds(os.getpid()) - cpu_before[1]
    return answers


async def push_all(url: str, bodies: Iterable[bytes], events: Events, pushers: int) -> Answers:
    """Every body in `bodies` posted once, by `pushers` concurrent pushers taking the next one free."""
    queue = iter(bodies)
    answers = Answers()
    async with _session(pushers) as session:
        started = time.perf_counter()

        async def pusher() -> None:
            for body in queue:  # shared by all pushers: each body is taken by one
                await post(session, url, body, events, answers)

        await asyncio.gather(*(pusher() for _ in range(pushers)))
        answers.seconds = time.perf_counter() - started
    return answers


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")  # nothing answered: the row's "not 2xx" says why
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def of_dt_limit(p99: float) -> str:
    """The p99 as a share of DT's 10 s: "1/400" reads at a glance, a percentage of 0.25% less so."""
    if p99 >= DT_LIMIT:
        return f"{p99 / DT_LIMIT:.1f}x OVER"
    return f"1/{DT_LIMIT / p99:,.0f}"


@dataclass
class Target:
    name: str
    url: str
    pid: int
    receiver: ReceiverProcess | None = None  # None for the baseline


def postgres_receiver(stack: ExitStack, log: IO[str]) -> tuple[ReceiverProcess | None, str]:
    """A receiver on a new database of a throwaway PostgreSQL cluster, and how that cluster commits; or
    no receiver and why not."""
    try:
        from tests.support.services import postgres_cluster  # noqa: PLC0415 - only the PG rows need it

        postgres = stack.enter_context(postgres_cluster())
        database = postgres.new_database(f"receiver_throughput_{uuid.uuid4().hex[:12]}")
        with postgres.connect(database) as connection:
            settings = []
            for name in ("fsync", "synchronous_commit"):
                row = connection.execute(f"SHOW {name}").fetchone()
                settings.append(f"{name}={row[0] if row else '?'}")
        # As tests/test_receiver_postgres.py builds it: the cluster trusts loopback and ignores the password.
        url = f"postgresql://{postgres.user}:{postgres.password}@{postgres.host}:{postgres.port}/{database}"
        receiver = stack.enter_context(
            ReceiverProcess("--port", "0", "--spool", url, env={"DT_CONNECTOR_SECRET": SECRET}, stderr=log)
        )
    except Exception as error:  # any reason at all means no PG rows, said plainly
        return None, f"{type(error).__name__}: {error}".strip()
    return receiver, ", ".join(settings)


def receiver_metrics(target: Target) -> dict[str, Any]:
    assert target.receiver is not None
    return target.receiver.metrics()


def check_counts(target: Target, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What the receiver counted that it should not have: failures, refusals, stores the spool lacks."""
    problems = []
    moved = {key: after[key] - before[key] for key in ("stored", "duplicates", "failed")}
    rows = after["spool"].get("events", 0) - before["spool"].get("events", 0)
    refused = sum(after["refused"].values()) - sum(before["refused"].values())
    if moved["failed"] or refused:
        problems.append(f"{target.name}: /metrics counted {moved['failed']} failed, {refused} refused")
    if moved["stored"] != rows:
        problems.append(f"{target.name}: /metrics counted {moved['stored']} stored but the spool grew {rows}")
    return problems


def duplicate_run(target: Target, events: Events, count: int) -> tuple[str, list[str]]:
    """`count` new events, each pushed twice in shuffled order (some copies overlap in flight)."""
    bodies = [events.body() for _ in range(count)]
    pushes = bodies * 2
    random.Random(0).shuffle(pushes)
    before = receiver_metrics(target)
    answers = asyncio.run(push_all(target.url, pushes, events, DUPLICATE_PUSHERS))
    after = receiver_metrics(target)
    stored = after["stored"] - before["stored"]
    duplicates = after["duplicates"] - before["duplicates"]
    rows = after["spool"].get("events", 0) - before["spool"].get("events", 0)
    once = (
        answers.accepted == 2 * count
        and answers.verdicts == Counter({"stored": count, "duplicate": count})
        and stored == duplicates == rows == count
    )
    p99 = percentile(answers.latencies, 0.99)
    line = (
        f"{target.name}, {count:,} events each pushed twice by {DUPLICATE_PUSHERS} pushers: "
        f"{answers.accepted:,} of {2 * count:,} answered 2xx ({answers.verdicts['stored']:,} stored, "
        f"{answers.verdicts['duplicate']:,} duplicate); /metrics stored +{stored:,}, duplicates "
        f"+{duplicates:,}, spool rows +{rows:,}: {'each stored once' if once else 'NOT each stored once'}; "
        f"{2 * count / answers.seconds:,.0f} pushes/s, p99 {p99 * 1000:.1f} ms"
    )
    return line, check_counts(target, before, after) + (
        [f"{target.name}: not accepted {answers.not_accepted}"] if answers.not_accepted else []
    )


def log_lines(paths: Iterable[Path]) -> list[str]:
    """What the receivers logged (at warning and up): any line is worth a look."""
    lines = []
    for path in paths:
        lines += [f"{path.stem} receiver log: {line}" for line in path.read_text().splitlines() if line]
    return lines


def main() -> None:
    events = Events()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="receiver-throughput-") as directory, ExitStack() as stack:
        logs = {kind: Path(directory) / f"{kind}.log" for kind in ("sqlite", "postgresql")}
        baseline = stack.enter_context(BaselineProcess("--baseline"))
        targets = [Target("no storage", str(baseline.info["url"]), baseline.pid)]
        sqlite_log = stack.enter_context(logs["sqlite"].open("w"))
        spool = Path(directory) / "spool.sqlite"
        sqlite = stack.enter_context(
            ReceiverProcess(
                "--port", "0", "--spool", str(spool), env={"DT_CONNECTOR_SECRET": SECRET}, stderr=sqlite_log
            )
        )
        targets.append(Target("SQLite spool", sqlite.url, sqlite.pid, sqlite))
        postgres, postgres_facts = postgres_receiver(stack, stack.enter_context(logs["postgresql"].open("w")))
        if postgres is None:
            print(f"PostgreSQL rows skipped: the cluster or its receiver did not start ({postgres_facts})")
        else:
            targets.append(Target("PostgreSQL spool", postgres.url, postgres.pid, postgres))

        header = (
            f"{'server':<17}{'pushers':>8}{'events/s':>10}{'of ceiling':>12}{'p50 ms':>8}{'p99 ms':>8}"
            f"{'p99 of 10 s':>13}{'server CPU':>12}{'µs/event':>10}{'pushers CPU':>13}{'not 2xx':>9}"
        )
        print(
            f"{SECONDS:g} s per row, each push a new signed event; CPU in % of one core "
            f"({os.cpu_count()} cores here), µs/event is the server's CPU per accepted push"
        )
        print(header)
        print("-" * len(header))
        rates: dict[tuple[str, int], float] = {}
        # Concurrency outermost, so each spool's row is measured right after its ceiling, under like load.
        for pushers in PUSHERS:
            for target in targets:
                before = receiver_metrics(target) if target.receiver else None
                answers = asyncio.run(push_for(target.url, target.pid, events, pushers, SECONDS))
                if before is not None:
                    notes += check_counts(target, before, receiver_metrics(target))
                if answers.not_accepted:
                    notes.append(f"{target.name}, {pushers} pushers: not accepted {answers.not_accepted}")
                rate = rates[target.name, pushers] = answers.accepted / answers.seconds
                ceiling = rates["no storage", pushers]
                p50, p99 = (percentile(answers.latencies, share) for share in (0.5, 0.99))
                print(
                    f"{target.name:<17}{pushers:>8}{rate:>10,.0f}{rate / ceiling:>12.0%}{p50 * 1000:>8.1f}"
                    f"{p99 * 1000:>8.1f}{of_dt_limit(p99):>13}{answers.server_cpu / answers.seconds:>12.0%}"
                    f"{answers.server_cpu / max(1, answers.accepted) * 1e6:>10,.0f}"
                    f"{answers.pushers_cpu / answers.seconds:>13.0%}"
                    f"{sum(answers.not_accepted.values()):>9}"
                )
        print()
        for target in targets[1:]:
            rate, best = max((rates[target.name, pushers], pushers) for pushers in PUSHERS)
            print(
                f"{target.name}: best {rate:,.0f} events/s at {best} pushers = "
                f"{rate / rates['no storage', best]:.0%} of the no-storage ceiling"
            )
        if postgres is not None:
            print(
                f"  (the PostgreSQL cluster runs with {postgres_facts}; the SQLite spool fsyncs every commit)"
            )
        print()
        for target in targets[1:]:
            # Enough events for about 1.5 s of pushing at the best rate measured, within bounds.
            rate = max(rates[target.name, pushers] for pushers in PUSHERS)
            count = max(200, min(5000, int(rate * 0.75)))
            line, problems = duplicate_run(target, events, count)
            print(line)
            notes += problems
        stack.close()  # the receivers stop: their logs are complete, and still in the directory
        notes += log_lines(path for path in logs.values() if path.exists())
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    if "--baseline" in sys.argv[1:]:
        serve_baseline()
    else:
        main()
