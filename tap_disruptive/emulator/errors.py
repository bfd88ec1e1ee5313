"""DT's REST error body, and the exception the handlers raise to send it."""

from __future__ import annotations

import json

from aiohttp import web


class ApiError(Exception):
    """An HTTP error answered with DT's body: ``{"error": ..., "code": ..., "help": ...}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_body(status: int, message: str) -> dict[str, object]:
    return {"error": message, "code": status, "help": f"https://docs.d21s.com/error/#{status}"}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(error_body(status, message)),
        content_type="application/json",
        headers=headers,
    )
