"""The HTTP face of Data Connectors: DT's `/v2/projects/{project}/dataconnectors` routes (create, list,
get, patch, delete, `:sync`, `:metrics`) and the emulator's `/_emulator/push-faults` control.

The `/v2/` routes sit behind the application's middleware, so they are authenticated and answer errors
with DT's body like every other API route.
"""

from __future__ import annotations

import time

from aiohttp import web

from tap_disruptive.emulator.bodies import json_body, json_response
from tap_disruptive.emulator.dataconnectors import (
    ConnectorRegistry,
    DataConnector,
    apply_patch,
    new_connector,
)
from tap_disruptive.emulator.errors import ApiError
from tap_disruptive.emulator.logs import LOG
from tap_disruptive.emulator.push_faults import PushFault
from tap_disruptive.emulator.pusher import Pusher
from tap_disruptive.emulator.queries import PageToken, page_size, single
from tap_disruptive.emulator.store import EventStore
from tap_disruptive.model.ids import IdFactory

CONNECTOR_PAGE_SIZE = 100


class DataConnectorRoutes:
    def __init__(self, store: EventStore, registry: ConnectorRegistry, pusher: Pusher) -> None:
        self.store = store
        self.registry = registry
        self.pusher = pusher
        self._ids = IdFactory()

    def add_to(self, router: web.UrlDispatcher, project_path: str) -> None:
        collection = project_path + "/dataconnectors"
        one = collection + "/{connector}"
        router.add_get(collection, self.list_connectors)
        router.add_post(collection, self.create)
        router.add_get(one, self.get)
        router.add_post(one, self.post_method)
        router.add_patch(one, self.patch)
        router.add_delete(one, self.delete)
        router.add_post("/_emulator/push-faults", self.add_faults)
        router.add_delete("/_emulator/push-faults", self.clear_faults)

    def _project(self, request: web.Request) -> str:
        project_id = request.match_info["project"]
        if project_id not in self.store.projects:
            raise ApiError(404, f"project {project_id} not found")
        return project_id

    def _connector(self, request: web.Request, connector_id: str) -> DataConnector:
        return self.registry.get(self._project(request), connector_id)

    async def list_connectors(self, request: web.Request) -> web.Response:
        connectors = self.registry.in_project(self._project(request))
        size = page_size(request.query, CONNECTOR_PAGE_SIZE, CONNECTOR_PAGE_SIZE)
        token = PageToken.decode(request.query)
        offset = token.offset if token else 0
        more = offset + size < len(connectors)
        return json_response(
            {
                "dataConnectors": [c.resource() for c in connectors[offset : offset + size]],
                "nextPageToken": PageToken(offset + size).encode() if more else "",
            }
        )

    async def create(self, request: web.Request) -> web.Response:
        project_id = self._project(request)
        connector = new_connector(project_id, self._ids.new_id(time.time()), await json_body(request))
        self.registry.add(connector)
        LOG.info(
            "data connector %s created in project %s, %s",
            connector.connector_id,
            project_id,
            connector.status,
        )
        return json_response(connector.resource())

    async def get(self, request: web.Request) -> web.Response:
        connector_id, _, method = request.match_info["connector"].partition(":")
        connector = self._connector(request, connector_id)
        if method == "metrics":
            return json_response(self.pusher.metrics(connector))
        if method:
            raise ApiError(404, f"unknown method :{method}")
        return json_response(connector.resource())

    async def post_method(self, request: web.Request) -> web.Response:
        connector_id, _, method = request.match_info["connector"].partition(":")
        if method != "sync":
            raise ApiError(404, f"unknown method :{method}" if method else "method not allowed")
        connector = self._connector(request, connector_id)
        queued = self.pusher.sync(connector, self.store)
        LOG.info("data connector %s: sync queued %d events", connector_id, queued)
        return json_response({})

    async def patch(self, request: web.Request) -> web.Response:
        connector = self._connector(request, request.match_info["connector"])
        apply_patch(connector, await json_body(request), single(request.query, "update_mask"))
        self.pusher.connector_changed(connector)
        return json_response(connector.resource())

    async def delete(self, request: web.Request) -> web.Response:
        connector = self._connector(request, request.match_info["connector"])
        self.registry.remove(connector)
        self.pusher.connector_removed(connector)
        return json_response({})

    async def add_faults(self, request: web.Request) -> web.Response:
        body = await json_body(request, allow_list=True)
        faults = [PushFault.from_json(item) for item in (body if isinstance(body, list) else [body])]
        # All or none: every fault must reach a connector before any is scheduled.
        for fault in faults:
            if not any(fault.connector in (None, c.connector_id) for c in self.registry):
                raise ApiError(
                    404,
                    f"data connector {fault.connector} not found"
                    if fault.connector
                    else "no data connector to fault",
                )
        reached = 0
        for fault in faults:
            hit = self.pusher.inject(fault)
            reached = max(reached, hit)
            LOG.warning(
                "push fault injected: kind=%s %s connectors_hit=%d", fault.kind, fault.describe(), hit
            )
        return json_response({"faults": len(faults), "connectors_hit": reached})

    async def clear_faults(self, _request: web.Request) -> web.Response:
        self.pusher.clear_faults()
        return json_response({})
