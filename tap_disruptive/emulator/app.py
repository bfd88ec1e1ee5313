"""The emulator's HTTP application: DT's REST routes, the emulator API and the `/_emulator` controls."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import replace
from itertools import islice
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tap_disruptive.emulator.auth import Authenticator, InvalidGrant
from tap_disruptive.emulator.bodies import json_body, json_response
from tap_disruptive.emulator.config import EmulatorConfig
from tap_disruptive.emulator.dataconnector_routes import DataConnectorRoutes
from tap_disruptive.emulator.dataconnectors import ConnectorRegistry
from tap_disruptive.emulator.errors import ApiError, error_body, error_response
from tap_disruptive.emulator.fanout import StreamHub, StreamWriter, Subscriber
from tap_disruptive.emulator.faults import FAULT_KINDS, HTTP_FAULT, Fault, HttpFaults
from tap_disruptive.emulator.logs import LOG, access_log
from tap_disruptive.emulator.payload_checks import check_complete, check_published
from tap_disruptive.emulator.payloads import complete_published
from tap_disruptive.emulator.pusher import Pusher
from tap_disruptive.emulator.queries import (
    DeviceFilter,
    PageToken,
    duration_param,
    page_size,
    single,
    time_param,
)
from tap_disruptive.emulator.simulator import Simulator
from tap_disruptive.emulator.store import Device, EventStore
from tap_disruptive.emulator.throttle import Throttle
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.event_types import EVENT_TYPES, LABELS_CHANGED
from tap_disruptive.model.ids import EMULATED_DEVICE_PREFIX, IdFactory, split_target_name
from tap_disruptive.model.times import stamp_and_seconds, timestamp_seconds

DEVICE_PAGE_SIZE = 100
EVENT_PAGE_SIZE = 100
DEFAULT_HISTORY_WINDOW = 24 * 3600.0
# DT's API and its token endpoint: what faults, the latency and the rate limit apply to.
_API_PREFIXES = ("/v2/", "/oauth2/")
_BAD_GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)


def _raw_json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def fault_response(fault: Fault) -> web.Response:
    if fault.status == 502:
        return web.Response(status=502, text=_BAD_GATEWAY_PAGE, content_type="text/html")
    headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else None
    message = {401: "unauthenticated", 403: "forbidden", 429: "too many requests"}.get(
        fault.status, "unavailable"
    )
    return error_response(fault.status, message, headers)


class Emulator:
    """One emulated DT deployment: projects, devices, events, auth and faults."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = EventStore(list(config.project_ids), IdFactory())
        self.hub = StreamHub()
        self.store.listeners.append(self.hub.on_events)
        self.connectors = ConnectorRegistry()
        self.pusher = Pusher(self.connectors, config)
        self.store.listeners.append(self.pusher.on_events)
        self.auth = Authenticator(
            key_id=config.key_id,
            secret=config.key_secret,
            email=config.email,
            token_lifetime=config.token_lifetime,
            allow_basic=config.basic_auth,
        )
        self.http_faults = HttpFaults()
        self.throttle = Throttle(config.latency, config.rate_limit, config.burst)
        self.simulator = Simulator(config, self.store)
        self._emulated_ids = IdFactory()
        self.token_url = ""
        self.user_agents: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        # Every kind is listed from the start, so a reader sees zeros rather than missing keys.
        self.faults_injected: Counter[str] = Counter(dict.fromkeys(sorted(FAULT_KINDS), 0))
        self._tasks: list[asyncio.Task[None]] = []

    # --- application -------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[access_log, self._middleware])
        projects = "/v2/projects/{project}"
        app.router.add_post("/oauth2/token", self.token)
        app.router.add_get("/v2/projects", self.list_projects)
        app.router.add_get(projects, self.get_project)
        app.router.add_get(projects + "/devices", self.list_devices)
        app.router.add_post(projects + "/devices", self.create_device)
        app.router.add_get(projects + "/devices:stream", self.stream)
        app.router.add_post(projects + "/devices:batchUpdate", self.batch_update)
        app.router.add_get(projects + "/devices/{device}", self.device_get)
        app.router.add_post(projects + "/devices/{device}", self.device_post)
        app.router.add_delete(projects + "/devices/{device}", self.delete_device)
        app.router.add_get(projects + "/devices/{device}/events", self.history)
        DataConnectorRoutes(self.store, self.connectors, self.pusher).add_to(app.router, projects)
        app.router.add_get("/_emulator/ledger", self.ledger)
        app.router.add_get("/_emulator/status", self.status)
        app.router.add_post("/_emulator/faults", self.add_faults)
        app.router.add_delete("/_emulator/faults", self.clear_faults)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        self._tasks.append(asyncio.create_task(self.simulator.run()))
        if self.config.chaos_interval > 0:
            self._tasks.append(asyncio.create_task(self._chaos()))

    async def _on_shutdown(self, _app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        self.hub.close_all()
        await self.pusher.stop()

    def populate(self) -> None:
        self.simulator.populate()
        self.simulator.pregenerate_history(time.time())

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path.startswith(_API_PREFIXES):
                kind = _request_kind(request.path)
                # Every request that arrives counts, whatever answers it: a 429, an injected fault, a 401.
                self.requests[kind] += 1
                refusal = await self.throttle.admit(kind)
                if refusal is not None:
                    LOG.debug("%s %s throttled", request.method, request.path)
                    return refusal
                fault = self.http_faults.take(is_stream=request.path.endswith(":stream"))
                if fault is not None:
                    LOG.debug("%s %s answered by an injected http fault", request.method, request.path)
                    return fault_response(fault)
            if request.path.startswith("/v2/"):
                self.user_agents[request.headers.get("User-Agent", "")] += 1
                self.auth.check(request.headers.get("Authorization"))
            return await handler(request)
        except ApiError as error:
            LOG.debug("%s %s refused: %s", request.method, request.path, error.message)
            return error_response(error.status, error.message, error.headers)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return error_response(error.status, error.reason.lower())

    # --- auth ----------------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        if "assertion" in request.query:
            raise ApiError(400, "the assertion must be sent as a form parameter")
        form = await request.post()
        audiences = [self.token_url, str(request.url.with_query(None))]
        try:
            grant, assertion = form.get("grant_type"), form.get("assertion")
            answer = self.auth.issue(
                grant if isinstance(grant, str) else None,
                assertion if isinstance(assertion, str) else None,
                audiences,
            )
        except InvalidGrant as error:
            LOG.debug("token refused: %s", error)
            # OAuth2 answers a refused grant with 400; DT's client reads that as "could not authenticate".
            body = {**error_body(400, "invalid_grant"), "error_description": str(error)}
            return json_response(body, status=400)
        return json_response(answer)

    # --- projects and devices ------------------------------------------------------------------------

    def _project(self, request: web.Request) -> dict[str, Device]:
        project_id = request.match_info["project"]
        devices = self.store.projects.get(project_id)
        if devices is None:
            raise ApiError(404, f"project {project_id} not found")
        return devices

    def _device(self, request: web.Request, device_id: str) -> Device:
        project_id = request.match_info["project"]
        if project_id == "-":  # DT's wildcard project searches every project
            for devices in self.store.projects.values():
                if device_id in devices:
                    return devices[device_id]
            raise ApiError(404, f"device {device_id} not found")
        device = self._project(request).get(device_id)
        if device is None:
            raise ApiError(404, f"device {device_id} not found")
        return device

    async def list_projects(self, _request: web.Request) -> web.Response:
        return json_response(
            {"projects": [self._project_resource(p) for p in self.store.projects], "nextPageToken": ""}
        )

    async def get_project(self, request: web.Request) -> web.Response:
        self._project(request)
        return json_response(self._project_resource(request.match_info["project"]))

    def _project_resource(self, project_id: str) -> dict[str, Any]:
        devices = self.store.projects[project_id].values()
        ccons = sum(1 for device in devices if device.device_type == "ccon")
        return {
            "name": f"projects/{project_id}",
            "displayName": "Emulated project",
            "organization": "organizations/emulator",
            "organizationDisplayName": "Emulator",
            "sensorCount": len(devices) - ccons,
            "cloudConnectorCount": ccons,
            "inventory": False,
        }

    async def list_devices(self, request: web.Request) -> web.Response:
        if request.match_info["project"] == "-":
            raise ApiError(400, "listing devices across projects needs an organization; not emulated")
        devices = self._project(request)
        query = request.query
        event_filter = DeviceFilter.from_query(query)
        search = (single(query, "query") or "").lower()
        matching = [
            device
            for device in devices.values()
            if event_filter.matches_device(device) and (not search or search in _search_text(device))
        ]
        order_by = single(query, "order_by")
        if order_by:
            matching = _ordered(matching, order_by)
        size = page_size(query, DEVICE_PAGE_SIZE, DEVICE_PAGE_SIZE)
        token = PageToken.decode(query)
        offset = token.offset if token else 0
        page = matching[offset : offset + size]
        more = offset + size < len(matching)
        return json_response(
            {
                "devices": [device.resource() for device in page],
                "nextPageToken": PageToken(offset + size).encode() if more else "",
            }
        )

    async def device_get(self, request: web.Request) -> web.StreamResponse:
        device_id, _, action = request.match_info["device"].partition(":")
        device = self._device(request, device_id)
        if action == "stream":
            narrowed = DeviceFilter.from_query(request.query)
            if narrowed.device_ids is not None and device_id not in narrowed.device_ids:
                narrowed = replace(narrowed, device_ids=frozenset())
            else:
                narrowed = replace(narrowed, device_ids=frozenset({device_id}))
            return await self._serve_stream(request, device.project_id, narrowed)
        if action:
            raise ApiError(404, f"unknown method :{action}")
        return json_response(device.resource())

    async def create_device(self, request: web.Request) -> web.Response:
        devices = self._project(request)
        body = await json_body(request)
        device_type = body.get("type")
        if device_type not in DEVICE_TYPES:
            raise ApiError(400, f"unknown device type: {device_type!r}")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ApiError(400, "labels must map strings to strings")
        device_id = EMULATED_DEVICE_PREFIX + self._emulated_ids.new_id(time.time())
        project_id = request.match_info["project"]
        device = Device(project_id, device_id, device_type, "", {"virtual-sensor": "", **labels})
        self.store.add_device(device)
        assert device_id in devices
        return json_response(device.resource())

    async def delete_device(self, request: web.Request) -> web.Response:
        device = self._device(request, request.match_info["device"])
        del self.store.projects[device.project_id][device.device_id]
        return json_response({})

    async def device_post(self, request: web.Request) -> web.Response:
        device_id, _, action = request.match_info["device"].partition(":")
        if action != "publish":
            raise ApiError(404, f"unknown method :{action}" if action else "method not allowed")
        device = self._device(request, device_id)
        body = await json_body(request)
        if len(body) != 1:
            raise ApiError(400, 'publish takes exactly one event: {"<eventType>": {...}}')
        ((event_type, given),) = body.items()
        if event_type == LABELS_CHANGED:
            raise ApiError(400, "labelsChanged events cannot be published; change the labels instead")
        if event_type not in EVENT_TYPES:
            raise ApiError(400, f"unknown event type: {event_type!r}")
        if not DEVICE_TYPES[device.device_type].sends(event_type):
            raise ApiError(400, f"a {device.device_type} device does not send {event_type} events")
        check_published(event_type, given)
        stamp = given.get("updateTime")
        if stamp is None:
            stamp, timestamp = stamp_and_seconds(time.time())
        else:
            timestamp = timestamp_seconds(stamp)
        payload = complete_published(event_type, given, stamp)
        check_complete(event_type, payload)
        self.store.record(device, event_type, json.dumps(payload, separators=(",", ":")), timestamp)
        return json_response({})

    async def batch_update(self, request: web.Request) -> web.Response:
        self._project(request)
        body = await json_body(request)
        add, remove = body.get("addLabels") or {}, body.get("removeLabels") or []
        if not add and not remove:
            raise ApiError(400, "give addLabels or removeLabels")
        if not isinstance(add, dict) or not isinstance(remove, list):
            raise ApiError(400, "addLabels is an object and removeLabels a list")
        errors = []
        for name in body.get("devices") or []:
            try:
                project_id, device_id = split_target_name(name)
            except (ValueError, AttributeError):
                errors.append(_batch_error(str(name), "INVALID_ARGUMENT", "not a device name"))
                continue
            device = self.store.device(project_id, device_id or "")
            if device is None:
                errors.append(_batch_error(name, "NOT_FOUND", "device not found"))
                continue
            self.store.change_labels(
                device, {str(k): str(v) for k, v in add.items()}, [str(k) for k in remove]
            )
        return json_response({"batchErrors": errors})

    # --- history and stream --------------------------------------------------------------------------

    async def history(self, request: web.Request) -> web.Response:
        device = self._device(request, request.match_info["device"])
        query = request.query
        now = time.time()
        start = time_param(query, "start_time", now - DEFAULT_HISTORY_WINDOW)
        end = time_param(query, "end_time", now)
        event_types = DeviceFilter.from_query(query).event_types
        size = page_size(
            query, min(EVENT_PAGE_SIZE, self.config.history_page_max), self.config.history_page_max
        )
        token = PageToken.decode(query) or PageToken(0, now - self.config.indexing_delay)
        found = list(
            islice(
                self.store.history(device, start, end, event_types, token.cutoff),
                token.offset,
                token.offset + size + 1,
            )
        )
        more = len(found) > size
        next_token = PageToken(token.offset + size, token.cutoff).encode() if more else ""
        body = b'{"events":[' + b",".join(found[:size]) + b'],"nextPageToken":"' + next_token.encode() + b'"}'
        return _raw_json(body)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self._project(request)
        return await self._serve_stream(
            request, request.match_info["project"], DeviceFilter.from_query(request.query)
        )

    async def _serve_stream(
        self, request: web.Request, project_id: str, event_filter: DeviceFilter
    ) -> web.StreamResponse:
        ping_interval = duration_param(request.query, "ping_interval", self.config.default_ping_interval)
        sse = "text/event-stream" in request.headers.get("Accept", "")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream" if sse else "application/json",
                "Cache-Control": "no-cache",
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        subscriber = Subscriber(project_id, event_filter, sse)
        self.hub.subscribe(subscriber)
        try:
            writer = StreamWriter(
                request=request,
                response=response,
                subscriber=subscriber,
                ping_interval=ping_interval,
                new_id=self.store.ids.new_id,
                clock=time.time,
            )
            await writer.run()
        except ConnectionError:
            pass  # the client went away
        finally:
            self.hub.unsubscribe(subscriber)
        return response

    # --- emulator controls ---------------------------------------------------------------------------

    async def ledger(self, request: web.Request) -> web.Response:
        """Every event produced, in production order; filters as on the stream, `after` to page on."""
        query = request.query
        after_text = query.get("after", "0")
        if not after_text.isdigit():
            raise ApiError(400, "after must be a non-negative integer")
        event_filter = DeviceFilter.from_query(query)
        project = query.get("project")
        end = len(self.store.ledger)
        selected = []
        for text in self.store.ledger[int(after_text) : end]:
            if _ledger_match(self.store, event_filter, project, text):
                selected.append(text)
        return _raw_json(b'{"events":[' + b",".join(selected) + b'],"next":' + str(end).encode() + b"}")

    async def status(self, _request: web.Request) -> web.Response:
        return json_response(
            {
                "open_streams": self.hub.open_count(),
                "connections_served": self.hub.connections_served,
                "events_recorded": len(self.store.ledger),
                "events_simulated": self.simulator.produced,
                "simulated_events_skipped": self.simulator.skipped,
                "tokens_issued": self.auth.tokens_issued,
                "user_agents": dict(self.user_agents),
                # Requests to DT's API by kind (token, projects, devices, history, stream, publish, ...),
                # every one that arrived: those answered 429 are in both "requests" and "throttled".
                "requests": dict(self.requests),
                "throttled": dict(self.throttle.throttled),
                "latency": self.config.latency,
                "rate_limit": self.config.rate_limit,
                "rate_limit_burst": self.config.burst if self.config.rate_limit > 0 else None,
                "faults_injected": dict(self.faults_injected),
                # Data Connector pushes: attempted, succeeded, failed, retried, ... and by connector id.
                "pushes": self.pusher.status(),
            }
        )

    async def add_faults(self, request: web.Request) -> web.Response:
        body = await json_body(request, allow_list=True)
        faults = [Fault.from_json(item) for item in (body if isinstance(body, list) else [body])]
        streams = [self._inject(fault, "api") for fault in faults]
        return json_response({"faults": len(faults), "open_streams_hit": max(streams, default=0)})

    async def clear_faults(self, _request: web.Request) -> web.Response:
        self.http_faults.clear()
        self.hub.clear_faults()
        return json_response({})

    async def _chaos(self) -> None:
        rng = random.Random(self.config.seed + 1)
        while True:
            await asyncio.sleep(rng.expovariate(1.0 / self.config.chaos_interval))
            if self.hub.open_count():
                self._inject(
                    Fault(rng.choice(self.config.chaos_kinds), after_events=rng.randint(0, 5)), "chaos"
                )

    def _inject(self, fault: Fault, source: str) -> int:
        """Schedule one fault, count it by kind and log it; returns the open streams it hits."""
        detail = fault.describe()
        if fault.kind == HTTP_FAULT:
            self.http_faults.add(fault)
            streams = 0
        else:
            streams = self.hub.inject(fault)
            detail += f" open_streams_hit={streams}"
        self.faults_injected[fault.kind] += 1
        LOG.warning("fault injected: kind=%s source=%s %s", fault.kind, source, detail)
        return streams


def _request_kind(path: str) -> str:
    """What a request to DT's API asks for, for the status's counts."""
    if path.startswith("/oauth2/"):
        return "token"
    if path.endswith(":stream"):
        return "stream"
    if path.endswith("/events"):
        return "history"
    if path.endswith(":publish"):
        return "publish"
    if "/dataconnectors" in path:
        return "dataconnectors"
    if "/devices" in path:
        return "devices"
    return "projects"


def _batch_error(device: str, code: str, message: str) -> dict[str, Any]:
    return {"device": device, "status": {"code": code, "message": message}}


def _search_text(device: Device) -> str:
    return " ".join([device.device_id, device.device_type, *device.labels.values()]).lower()


def _ordered(devices: list[Device], order_by: str) -> list[Device]:
    descending = order_by.startswith("-")
    path = order_by.lstrip("-").split(".")

    def key(device: Device) -> tuple[bool, str]:
        value: Any = device.resource()
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return (value is None, "" if value is None else str(value))

    return sorted(devices, key=key, reverse=descending)


def _ledger_match(store: EventStore, event_filter: DeviceFilter, project: str | None, text: bytes) -> bool:
    event = json.loads(text)
    if not event_filter.matches_event_type(event["eventType"]):
        return False
    project_id, device_id = split_target_name(event["targetName"])
    if project is not None and project_id != project:
        return False
    device = store.device(project_id, device_id or "")
    if device is None:
        unfiltered = DeviceFilter(event_types=event_filter.event_types)
        return event_filter == unfiltered
    return event_filter.matches_device(device)
