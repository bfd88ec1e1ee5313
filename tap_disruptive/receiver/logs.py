"""The receiver's log on stderr: start-up facts, one line per request, refusals and spool trouble.

Request lines carry method, path, status and duration, never headers (the signature) or bodies. As a
second guard every line, tracebacks included, is scrubbed of the configured secrets (the connector's
signature secrets, a database password) before it is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tap_disruptive.serving import logs

# The levels `--log-level` offers.
LEVELS = logs.LEVELS

LOG = logging.getLogger("tap_disruptive.receiver")
_FORMAT = "%(asctime)s %(levelname)s disruptive-receiver: %(message)s"
HIDDEN = "***"


class ScrubbingFormatter(logging.Formatter):
    """Formats a record, then replaces every secret in the text with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(_FORMAT)
        # Longest first, so a secret that contains another is hidden whole.
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, HIDDEN)
        return text


def configure(level: str, secrets: Iterable[str]) -> None:
    """Log the receiver's lines at `level` and up to stderr; other libraries' only from warning up."""
    logs.configure(LOG, level, ScrubbingFormatter(secrets))


# One INFO line per request once it is answered: method, path, status and milliseconds.
access_log = logs.access_log(LOG)
