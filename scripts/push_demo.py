"""The push path on the emulator: its Data Connector pushes every event, signed, to `disruptive-receiver`,
which spools it; the receiver is killed (SIGKILL) and restarted part way, and the emulator re-sends what
it could not deliver; then `meltano run tap-disruptive target-duckdb` reads the spool into the warehouse,
and the counts are compared: pushed by DT, stored by the receiver, landed in the warehouse."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

from demo import ROOT, WAREHOUSE, run_pipeline, show_warehouse

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.receiver.process import ReceiverProcess
from tap_disruptive.spool import open_spool
from tap_disruptive.testing import meltano_environment

SPOOL = ROOT / "output" / "spool.sqlite"
PUSH_SECONDS = 8.0


def receiver(port: int, secret: str) -> ReceiverProcess:
    return ReceiverProcess("--port", str(port), "--spool", str(SPOOL), env={"DT_CONNECTOR_SECRET": secret})


def spool_size() -> int:
    spool = open_spool(str(SPOOL), create=False)
    try:
        return spool.stats().events
    finally:
        spool.close()


def main() -> int:
    WAREHOUSE.parent.mkdir(exist_ok=True)
    for path in (WAREHOUSE, SPOOL, Path(f"{SPOOL}-wal"), Path(f"{SPOOL}-shm")):
        path.unlink(missing_ok=True)
    secret = secrets.token_hex(32)
    # Ten sensor events a second; re-sends come quickly, so the demo shows them within its time.
    with EmulatorProcess("--rate", "10", "--history-span", "0", "--connector-backoff", "0.5") as emulator:
        first = receiver(0, secret).start()
        port = int(first.url.rsplit(":", 1)[1].split("/", 1)[0])
        listing = emulator.http.get(f"{emulator.api_url}/projects/{emulator.project_id}/devices", timeout=10)
        labels = sorted({key for device in listing.json()["devices"] for key in device.get("labels", {})})
        created = emulator.http.post(
            f"{emulator.api_url}/projects/{emulator.project_id}/dataconnectors",
            json={
                "displayName": "push demo",
                "type": "HTTP_PUSH",
                "httpConfig": {"url": first.url, "signatureSecret": secret},
                "labels": labels,
            },
            timeout=10,
        )
        created.raise_for_status()
        connector = created.json()["name"]
        print(f"emulator: {emulator.api_url}; Data Connector {connector} -> {first.url}", flush=True)
        time.sleep(PUSH_SECONDS / 2)
        print(f"receiver: {first.metrics()['stored']} events spooled; killing it (SIGKILL)", flush=True)
        first.kill()
        time.sleep(2)
        with receiver(port, secret) as second:
            print("receiver restarted on the same port; DT re-sends what it could not deliver", flush=True)
            time.sleep(PUSH_SECONDS / 2)
            connector_id = connector.rsplit("/", 1)[-1]
            pushes = emulator.status()["pushes"]["by_connector"][connector_id]
            duplicates = second.metrics()["duplicates"]
        spooled = spool_size()
        print(
            f"DT's side: {pushes['succeeded']} pushes acknowledged, {pushes['failed']} failed and re-sent "
            f"({pushes['queued']} still queued); the spool holds {spooled} events "
            f"({duplicates} re-sent duplicates dropped since the restart)",
            flush=True,
        )
        variables = {"DT_SPOOL": str(SPOOL), **meltano_environment(emulator)}
        code = run_pipeline("connector", variables, "reads the spool as it stands")
        if code != 0:
            return code
    return show_warehouse()


if __name__ == "__main__":
    sys.exit(main())
