"""The main job on the emulator: start it, follow the live stream, show what arrives, stop it."""

from __future__ import annotations

import json
import sys

import requests

from tap_disruptive.emulator.process import EmulatorProcess

EVENTS_TO_SHOW = 25


def describe(event: dict[str, object]) -> str:
    event_type = str(event["eventType"])
    data = event["data"]
    payload = data.get(event_type, data) if isinstance(data, dict) else data
    if isinstance(payload, dict):
        payload = {key: value for key, value in payload.items() if key not in ("updateTime", "samples")}
    device = str(event["targetName"]).rsplit("/", 1)[-1]
    return f"{event['timestamp']}  {device}  {event_type:<18} {json.dumps(payload)}"


def main() -> None:
    with EmulatorProcess("--rate", "10") as emulator:
        print(f"emulator: {emulator.api_url}  project {emulator.project_id}", flush=True)
        devices = emulator.devices()
        print(f"{len(devices)} simulated devices: {sorted({d['type'] for d in devices})}", flush=True)
        url = f"{emulator.api_url}/projects/{emulator.project_id}/devices:stream"
        shown = 0
        with emulator.http.get(url, params={"ping_interval": "10s"}, stream=True, timeout=(10, 15)) as stream:
            stream.raise_for_status()
            for line in stream.iter_lines():
                event = json.loads(line)["result"]["event"]
                if event["eventType"] == "ping":
                    continue
                print(describe(event), flush=True)
                shown += 1
                if shown == EVENTS_TO_SHOW:
                    break
    print(f"showed {shown} live events; emulator stopped")


if __name__ == "__main__":
    try:
        main()
    except (requests.RequestException, RuntimeError) as error:
        sys.exit(f"demo failed: {error}")
