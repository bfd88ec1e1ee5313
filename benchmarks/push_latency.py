"""End-to-end latency of DT's push path: from a publish on the emulator to the tap's RECORD line, through
the emulator's Data Connector, `disruptive-receiver` and its spool, and the tap reading it
(`source: connector`, live). The baseline, in the same run and for the same events: the tap on DT's
stream (`source: stream`), the path the push competes with. Median and 99th percentile."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.receiver.process import ReceiverProcess
from tap_disruptive.testing import tap_config

ROUNDS = int(os.environ.get("PUSH_LATENCY_ROUNDS", "60"))
# Apart enough that each event is measured on its own, not queued behind the last.
PACE = 0.25
TAP = Path(sys.executable).parent / "tap-disruptive"


class RecordClock:
    """Reads a tap's stdout in a thread, noting when each event's RECORD line arrived."""

    def __init__(self, stdout: IO[str]) -> None:
        self.arrived: dict[str, float] = {}
        self._thread = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._thread.start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            if '"type":"RECORD"' in line and '"stream":"events"' in line:
                self.arrived[json.loads(line)["record"]["event_id"]] = time.perf_counter()


def start_tap(
    config: dict[str, Any], directory: Path, name: str
) -> tuple[subprocess.Popen[str], RecordClock]:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config))
    tap = subprocess.Popen(
        [str(TAP), "--config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert tap.stdout is not None
    return tap, RecordClock(tap.stdout)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    secret = secrets.token_hex(32)
    with (
        tempfile.TemporaryDirectory() as temporary,
        EmulatorProcess("--rate", "0", "--history-span", "0", "--indexing-delay", "0.2") as emulator,
        ReceiverProcess(
            "--port", "0", "--spool", f"{temporary}/spool.sqlite", env={"DT_CONNECTOR_SECRET": secret}
        ) as receiver,
    ):
        directory = Path(temporary)
        device = emulator.create_device("touch")
        created = emulator.http.post(
            f"{emulator.api_url}/projects/{emulator.project_id}/dataconnectors",
            json={"type": "HTTP_PUSH", "httpConfig": {"url": receiver.url, "signatureSecret": secret}},
            timeout=10,
        )
        created.raise_for_status()
        # One push makes the spool's file, which the tap needs to exist; it is not measured.
        emulator.publish(device, "touch")
        while receiver.metrics()["stored"] < 1:
            time.sleep(0.05)
        common = {"device_ids": [device], "event_types": ["touch"]}
        pushed_tap, pushed = start_tap(
            {
                "project_ids": [emulator.project_id],
                "source": "connector",
                "spool": f"{temporary}/spool.sqlite",
            }
            | common,
            directory,
            "connector",
        )
        streamed_tap, streamed = start_tap(tap_config(emulator, **common), directory, "stream")
        try:
            # Both taps are reading once the warm-up event reached the spool's reader and the stream
            # serves a connection.
            while not pushed.arrived or emulator.status()["open_streams"] < 1:
                time.sleep(0.1)
            time.sleep(1.0)
            published: dict[str, float] = {}
            position = emulator.ledger_position()
            for _ in range(ROUNDS):
                started = time.perf_counter()
                emulator.publish(device, "touch")
                events, position = emulator.ledger(after=position, device_ids=device)
                published[events[-1]["eventId"]] = started
                time.sleep(PACE)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                set(published) <= set(pushed.arrived) and set(published) <= set(streamed.arrived)
            ):
                time.sleep(0.1)
        finally:
            for tap in (pushed_tap, streamed_tap):
                tap.terminate()
                tap.wait(timeout=30)
    report("stream (baseline)", published, streamed.arrived, None)
    report("push: connector -> receiver -> spool -> tap", published, pushed.arrived, streamed.arrived)


def report(
    path: str, published: dict[str, float], arrived: dict[str, float], baseline: dict[str, float] | None
) -> None:
    latencies = [arrived[event] - at for event, at in published.items() if event in arrived]
    missing = len(published) - len(latencies)
    median, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    line = f"{path:<45} median {median * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  ({len(latencies)} events"
    line += f", {missing} not written)" if missing else ")"
    if baseline is not None:
        base = [baseline[event] - at for event, at in published.items() if event in baseline]
        line += f"; median {median / statistics.median(base):.1f}x the stream's"
    print(line, flush=True)


if __name__ == "__main__":
    main()
