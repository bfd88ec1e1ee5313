"""Transport failures in one line: what was being done, where, and the root cause in plain words."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from tap_disruptive.client.protocol.errors import ConnectionFailed


def root_cause(error: BaseException) -> str:
    """The innermost OS-level reason (e.g. "connection refused"), else the outermost error's name."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno and current.errno > 0:
            return os.strerror(current.errno).lower()  # the standard words, whatever the library says
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
        if isinstance(current, TimeoutError):
            return "timed out"
        nested = [arg for arg in current.args if isinstance(arg, BaseException)]
        current = current.__cause__ or current.__context__ or (nested[0] if nested else None)
    return type(error).__name__


def connection_failed(error: BaseException, what: str, url: str, kind: str) -> ConnectionFailed:
    """E.g. "cannot reach token_url http://host/oauth2/token: connection refused": the setting to check,
    where the failure is to reach DT at all."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if what == "token":
        message = f"cannot reach token_url {where}"
    elif what == "stream read":
        message = f"the stream {where} broke"
    else:
        message = f"cannot reach api_url ({what}) {where}"
    return ConnectionFailed(f"{message}: {root_cause(error)}", kind=kind)
