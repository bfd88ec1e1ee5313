"""A stand-in of DT for throughput measurements: one stream of events made up front, served as fast as
the client reads it, so that a benchmark measures the client and not the server.

The emulator makes every event as it goes (payload, id, ledger, history index) and tops out near
50,000 events/s on one core; this stand-in only writes bytes it already holds. It answers the few
calls a client makes before it streams (token, project, devices, empty history) and keeps the stream
open with pings once the events are sent.

    python -m benchmarks.replay_feed --events 1000000   # prints one JSON line, as the emulator does
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import orjson
from aiohttp import web

from tap_disruptive.model.ids import IdFactory
from tap_disruptive.model.times import format_timestamp

PROJECT = "c0replayproject00000"
KEY_ID, KEY_SECRET = "c0replaykey000000000", "replay-secret-not-for-production-use"
EMAIL = f"c0replayaccount00000@{PROJECT}.serviceaccount.d21s.com"
_WRITE = 256 * 1024


def _payload(event_type: str, index: int, stamp: str) -> dict[str, Any]:
    """A reading of each kind, as long as DT's are."""
    if event_type == "temperature":
        value = round(18 + (index % 70) / 10, 2)
        return {
            "value": value,
            "updateTime": stamp,
            "samples": [{"value": value, "sampleTime": stamp}],
            "isBackfilled": False,
        }
    if event_type == "networkStatus":
        return {
            "signalStrength": 40 + index % 50,
            "rssi": -80 + index % 30,
            "updateTime": stamp,
            "cloudConnectors": [{"id": "bdkjbo2v0000uk377c4g", "signalStrength": 45, "rssi": -83}],
            "transmissionMode": "LOW_POWER_STANDARD_MODE",
        }
    if event_type == "contact":
        return {"state": "OPEN" if index % 2 else "CLOSED", "updateTime": stamp}
    return {"updateTime": stamp}


def make_events(count: int, devices: list[str]) -> bytes:
    """`count` stream lines over the devices, stamped over the last minute, each with its own id."""
    ids = IdFactory()
    start = time.time() - 60
    kinds = ("temperature", "touch", "networkStatus", "contact")
    lines = []
    for index in range(count):
        moment = start + 60 * index / count
        stamp = format_timestamp(moment)
        event_type = kinds[index % len(kinds)]
        event = {
            "eventId": ids.new_id(moment),
            "targetName": f"projects/{PROJECT}/devices/{devices[index % len(devices)]}",
            "eventType": event_type,
            "data": {event_type: _payload(event_type, index, stamp)},
            "timestamp": stamp,
        }
        lines.append(orjson.dumps({"result": {"event": event}}))
    return b"\n".join(lines) + b"\n"


class ReplayFeed:
    def __init__(self, events: int, device_count: int) -> None:
        ids = IdFactory()
        self.devices = ["emu" + ids.new_id(time.time()) for _ in range(device_count)]
        self.blob = make_events(events, self.devices)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth2/token", self.token)
        app.router.add_get("/v2/projects/{project}", self.project)
        app.router.add_get("/v2/projects/{project}/devices", self.list_devices)
        app.router.add_get("/v2/projects/{project}/devices:stream", self.stream)
        app.router.add_get("/v2/projects/{project}/devices/{device}/events", self.history)
        return app

    async def token(self, _request: web.Request) -> web.Response:
        return web.json_response({"access_token": "replay-token", "expires_in": 3600})

    async def project(self, _request: web.Request) -> web.Response:
        return web.json_response({"name": f"projects/{PROJECT}", "displayName": "Replay"})

    async def list_devices(self, request: web.Request) -> web.Response:
        size = int(request.query.get("page_size") or request.query.get("pageSize") or 100)
        offset = int(request.query.get("page_token") or request.query.get("pageToken") or 0)
        page = self.devices[offset : offset + size]
        more = offset + size < len(self.devices)
        devices = [
            {"name": f"projects/{PROJECT}/devices/{device}", "type": "temperature", "labels": {}}
            for device in page
        ]
        return web.json_response({"devices": devices, "nextPageToken": str(offset + size) if more else ""})

    async def history(self, _request: web.Request) -> web.Response:
        return web.json_response({"events": [], "nextPageToken": ""})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        blob = memoryview(self.blob)
        try:
            for offset in range(0, len(blob), _WRITE):
                await response.write(bytes(blob[offset : offset + _WRITE]))
            await self._pings(response)
        except ConnectionError:  # the client has read what it wanted and gone
            pass
        return response

    @staticmethod
    async def _pings(response: web.StreamResponse) -> None:
        while True:  # all sent: a quiet stream with pings, until the client leaves
            ping = {"eventId": "ping", "targetName": f"projects/{PROJECT}", "eventType": "ping", "data": None}
            await response.write(
                orjson.dumps({"result": {"event": {**ping, "timestamp": format_timestamp(time.time())}}})
                + b"\n"
            )
            await asyncio.sleep(1.0)


async def serve(events: int, devices: int) -> None:
    feed = ReplayFeed(events, devices)
    runner = web.AppRunner(feed.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    info = {
        "api_url": f"{base}/v2",
        "token_url": f"{base}/oauth2/token",
        "project_id": PROJECT,
        "key_id": KEY_ID,
        "key_secret": KEY_SECRET,
        "email": EMAIL,
        "events": events,
    }
    print(json.dumps(info), flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(serve(args.events, args.devices))


if __name__ == "__main__":
    main()
