"""JSON in and out of the emulator's handlers: request bodies checked, answers compact."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tap_disruptive.emulator.errors import ApiError


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )


async def json_body(request: web.Request, allow_list: bool = False) -> Any:
    """The request's JSON object (or list, if `allow_list`); DT's 400 for anything else."""
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the request body is not JSON") from None
    if not isinstance(body, dict) and not (allow_list and isinstance(body, list)):
        raise ApiError(400, "the request body must be a JSON object")
    return body
