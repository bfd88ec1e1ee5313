"""The receiver's HTTP face: DT's pushes on the configured path, GET /healthz and GET /metrics.

A push is answered 200 only once it is in the spool (or was already: a re-send); a bad signature gets
401 and a bad body 400, and neither is stored; a spool that cannot take it in time gets 503, which DT
re-sends. Error bodies are ``{"error": <message>, "code": <status>, "reason": <reason>}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from tap_disruptive.model.pushes import BadPush, parse_push
from tap_disruptive.receiver.config import ReceiverConfig
from tap_disruptive.receiver.logs import LOG, access_log
from tap_disruptive.receiver.metrics import BAD_BODY, TOO_LARGE, Counters
from tap_disruptive.receiver.signature import HEADER, SignatureRefused, SignatureVerifier
from tap_disruptive.spool import Appended, SpoolError
from tap_disruptive.spool.offload import OffloadedSpool

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
RESERVED_PATHS = (HEALTH_PATH, METRICS_PATH)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, reason: str, message: str) -> web.Response:
    return _json({"error": message, "code": status, "reason": reason}, status)


class Receiver:
    def __init__(
        self,
        config: ReceiverConfig,
        spool: OffloadedSpool,
        verifier: SignatureVerifier,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.spool = spool
        self.verifier = verifier
        self.clock = clock
        self.counters = Counters()

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[access_log], client_max_size=self.config.max_body_bytes)
        app.router.add_post(self.config.path, self.push)
        app.router.add_get(HEALTH_PATH, self.healthz)
        app.router.add_get(METRICS_PATH, self.metrics)
        return app

    def _refuse(self, status: int, reason: str, message: str) -> web.Response:
        self.counters.refused[reason] += 1
        LOG.info("refused a push (%s): %s", reason, message)
        return _error(status, reason, message)

    async def push(self, request: web.Request) -> web.Response:
        self.counters.received += 1
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            limit = self.config.max_body_bytes
            return self._refuse(413, TOO_LARGE, f"the body is larger than {limit} bytes")
        try:
            self.verifier.verify(request.headers.get(HEADER), body)
        except SignatureRefused as refusal:
            return self._refuse(401, refusal.reason, refusal.message)
        try:
            push = parse_push(body)
        except BadPush as problem:
            return self._refuse(400, BAD_BODY, str(problem))
        try:
            appended = await self.spool.append(push, self.clock())
        except SpoolError as error:
            self.counters.failed += 1
            LOG.error("could not store event %s: %s", push.event_id, error)
            return _error(503, "spool_unavailable", "the event could not be stored; send it again")
        if appended is Appended.STORED:
            self.counters.stored += 1
        else:
            self.counters.duplicates += 1
            LOG.debug("event %s was already stored", push.event_id)
        return _json({"eventId": push.event_id, "status": appended.value})

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            await self.spool.ping()
        except SpoolError as error:
            LOG.warning("health check: %s", error)
            return _json({"status": "unavailable", "spool": self.spool.kind}, 503)
        return _json({"status": "ok", "spool": self.spool.kind})

    async def metrics(self, request: web.Request) -> web.Response:
        spool: dict[str, Any] = {"kind": self.spool.kind, "available": True}
        try:
            stats = await self.spool.stats()
        except SpoolError as error:
            LOG.warning("metrics: %s", error)
            spool["available"] = False
        else:
            spool |= {
                "events": stats.events,
                "oldest_received_at": stats.oldest_received_at,
                "newest_received_at": stats.newest_received_at,
            }
        return _json({**self.counters.snapshot(), "spool": spool})
