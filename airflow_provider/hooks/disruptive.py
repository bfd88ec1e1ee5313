"""DisruptiveHook: a DT service account from an Airflow connection, as the client core's settings."""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

from airflow.sdk import BaseHook

from tap_disruptive.client.drivers.aio import AsyncDisruptiveClient
from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.client.protocol.errors import DisruptiveError, FatalError
from tap_disruptive.client.protocol.settings import DT_API_URL, DT_TOKEN_URL, ClientSettings, Credentials

# Clients shared in a process, by event loop and connection id (see `ashared_client`).
_SHARED_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncDisruptiveClient]] = (
    weakref.WeakKeyDictionary()
)


class DisruptiveHook(BaseHook):
    """A DT connection: `login` is the key id, `password` the secret, and `extra` holds `email`,
    `project_id`, `api_url`, `identity_url` (DT's OAuth2 token endpoint) and `basic_auth`.

        AIRFLOW_CONN_DISRUPTIVE_DEFAULT='{"conn_type": "disruptive", "login": "<key id>",
            "password": "<secret>", "extra": {"email": "<sa email>", "project_id": "<project>"}}'
    """

    conn_name_attr = "disruptive_conn_id"
    default_conn_name = "disruptive_default"
    conn_type = "disruptive"
    hook_name = "Disruptive Technologies"

    def __init__(self, disruptive_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.disruptive_conn_id = disruptive_conn_id

    # --- settings from the connection -------------------------------------------------------------------

    def settings(self, **overrides: Any) -> ClientSettings:
        return self._settings(self.get_connection(self.disruptive_conn_id), overrides)

    async def asettings(self, **overrides: Any) -> ClientSettings:
        """The same, without blocking the triggerer's event loop."""
        return self._settings(await self.aget_connection(self.disruptive_conn_id), overrides)

    def default_project_id(self) -> str | None:
        project = _extra(self.get_connection(self.disruptive_conn_id)).get("project_id")
        return str(project) if project else None

    async def adefault_project_id(self) -> str | None:
        project = _extra(await self.aget_connection(self.disruptive_conn_id)).get("project_id")
        return str(project) if project else None

    async def aproject_id(self, project_id: str | None) -> str:
        """`project_id`, else the connection's; FatalError naming the connection when neither is set."""
        chosen = project_id or await self.adefault_project_id()
        if not chosen:
            raise FatalError(
                f"no project_id given, and connection {self.disruptive_conn_id} has none in its extra"
            )
        return chosen

    @staticmethod
    def _settings(connection: Any, overrides: dict[str, Any]) -> ClientSettings:
        extra = _extra(connection)
        credentials = Credentials(
            key_id=connection.login or "",
            key_secret=connection.password or "",
            email=str(extra.get("email") or ""),
            basic_auth=str(extra.get("basic_auth", "")).lower() in ("true", "1", "yes"),
        )
        return ClientSettings(
            credentials,
            api_url=str(extra.get("api_url") or DT_API_URL),
            # `identity_url`; `token_url` as well, as connections made before it was renamed have it.
            token_url=str(extra.get("identity_url") or extra.get("token_url") or DT_TOKEN_URL),
            **overrides,
        )

    # --- clients ------------------------------------------------------------------------------------------

    def get_conn(self) -> DisruptiveClient:
        return DisruptiveClient(self.settings())

    async def aget_client(self, **overrides: Any) -> AsyncDisruptiveClient:
        return AsyncDisruptiveClient(await self.asettings(**overrides))

    async def ashared_client(self) -> AsyncDisruptiveClient:
        """The connection's client in this process and event loop, made once: one token and one
        connection pool for every trigger of a triggerer that uses the connection."""
        clients = _SHARED_CLIENTS.setdefault(asyncio.get_running_loop(), {})
        client = clients.get(self.disruptive_conn_id)
        if client is None:
            client = clients[self.disruptive_conn_id] = await self.aget_client()
        return client

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials and the connection's project with a real call to DT."""
        try:
            project_id = self.default_project_id()
            with self.get_conn() as client:
                if project_id:
                    project = client.project(project_id)
                    return True, f"connected to project {project.get('displayName') or project_id}"
                projects = client.projects()
        except DisruptiveError as error:
            return False, str(error)
        return True, f"credentials accepted; {len(projects)} project(s) visible"


def _extra(connection: Any) -> dict[str, Any]:
    extra = connection.extra_dejson if hasattr(connection, "extra_dejson") else connection.extra
    if isinstance(extra, str):
        extra = json.loads(extra or "{}")
    return dict(extra or {})
