"""HTTP as the protocol sees it: requests to make, answers to judge. The drivers do the sending."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from tap_disruptive.client.protocol.errors import (
    AuthenticationError,
    BadRequest,
    DisruptiveError,
    NotFound,
    PermissionDenied,
    TransientError,
)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = 30.0
    # What the request is for, in messages and statistics: token, devices, history, stream.
    purpose: str = "request"

    def __repr__(self) -> str:  # headers hold credentials: never show them
        return f"HttpRequest({self.method} {self.url} {self.purpose})"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    # Header names in lower case.
    headers: dict[str, str]
    body: bytes

    def retry_after(self) -> float | None:
        """Retry-After in seconds (either form the header may take), None if absent or unreadable."""
        value = self.headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None

    def json(self) -> Any:
        return orjson.loads(self.body)


def error_message(response: HttpResponse) -> str:
    """The server's own words for an error answer, on one line: DT's `error` field, or a body excerpt."""
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        kind = response.headers.get("content-type", "unknown type").split(";")[0]
        return f"a non-JSON body ({kind})"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error = error.get("message", error)
        description = body.get("error_description")
        text = f"{error}: {description}" if description else str(error)
        return " ".join(text.split())[:200]
    return " ".join(str(body).split())[:200]


def failure(response: HttpResponse, what: str) -> DisruptiveError:
    """The error an unsuccessful answer means; `what` names the thing asked for (e.g. "project p1")."""
    return status_error(
        response.status, error_message(response), what, f"http_{response.status}", response.retry_after()
    )


def status_error(
    status: int, message: str, what: str, kind: str, retry_after: float | None = None
) -> DisruptiveError:
    """The error an HTTP status means, whether it came as an answer's status or in a stream's error line:
    fatal for refused credentials or permissions, an unknown resource or a bad request; else transient."""
    if status == 401:
        return AuthenticationError(f"DT refused the credentials for {what} (HTTP 401): {message}")
    if status == 403:
        return PermissionDenied(f"the service account may not read {what} (HTTP 403): {message}")
    if status == 404:
        return NotFound(f"{what} not found (HTTP 404): {message}")
    if status in (408, 429) or status >= 500:
        return TransientError(f"HTTP {status} for {what}: {message}", kind=kind, retry_after=retry_after)
    return BadRequest(f"DT refused the request for {what} (HTTP {status}): {message}")
