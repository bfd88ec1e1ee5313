"""The emulator's log: one line per request, one per injected fault, and the start-up facts, on stderr.

Lines never carry credentials: a request is logged by method, path (the query, which may hold an
assertion, is left out), status and duration; headers are never logged.
"""

from __future__ import annotations

import logging
import sys
import time

from aiohttp import web
from aiohttp.typedefs import Handler

LOG = logging.getLogger("tap_disruptive.emulator")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_FORMAT = "%(asctime)s %(levelname)s disruptive-emulator: %(message)s"


def configure(level: str) -> None:
    """Log the emulator's lines at `level` and up to stderr; other libraries' only from warning up."""
    chosen = LEVELS[level]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries' debug and info lines are theirs, not the operator's; their warnings still show.
    root.setLevel(max(chosen, logging.WARNING))
    LOG.setLevel(chosen)


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One INFO line per request once it is answered: method, path, status and milliseconds."""
    started = time.perf_counter()
    status: int | str = "-"  # stays "-" if the client went away before an answer
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    except Exception:
        status = 500
        raise
    finally:
        elapsed = (time.perf_counter() - started) * 1000
        LOG.info("%s %s %s %.1fms", request.method, request.path, status, elapsed)
