"""The emulator's log: one line per request, one per injected fault, and the start-up facts, on stderr.

Lines never carry credentials: a request is logged by method, path (the query, which may hold an
assertion, is left out), status and duration; headers are never logged.
"""

from __future__ import annotations

import logging

from tap_disruptive.serving import logs

# The levels `--log-level` offers.
LEVELS = logs.LEVELS

LOG = logging.getLogger("tap_disruptive.emulator")
_FORMAT = "%(asctime)s %(levelname)s disruptive-emulator: %(message)s"


def configure(level: str) -> None:
    """Log the emulator's lines at `level` and up to stderr; other libraries' only from warning up."""
    logs.configure(LOG, level, logging.Formatter(_FORMAT))


# One INFO line per request once it is answered: method, path, status and milliseconds.
access_log = logs.access_log(LOG)
