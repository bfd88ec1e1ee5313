"""A server's log on stderr: one line per request (method, path, status, milliseconds; never headers or
bodies), at a level the user picks; other libraries' lines only from warning up."""

from __future__ import annotations

import logging
import sys
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(logger: logging.Logger, level: str, formatter: logging.Formatter) -> None:
    """Log `logger`'s lines at `level` and up to stderr with `formatter`; libraries' from warning up."""
    chosen = LEVELS[level]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries' debug and info lines are theirs, not the operator's; their warnings still show.
    root.setLevel(max(chosen, logging.WARNING))
    logger.setLevel(chosen)


def access_log(logger: logging.Logger) -> Middleware:
    """Middleware logging one INFO line per request once it is answered."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
            logger.info("%s %s %s %.1fms", request.method, request.path, status, elapsed)

    return middleware
