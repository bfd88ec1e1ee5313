"""What can go wrong, split into faults worth retrying and fatal ones; every message is one line.

Messages never carry credentials: they name the setting or the server's own words instead.
"""

from __future__ import annotations


class DisruptiveError(Exception):
    """Base of every error this client raises."""


class FatalError(DisruptiveError):
    """Retrying will not help: the request, the credentials or the configuration are wrong."""


class AuthenticationError(FatalError):
    """The credentials were refused (after one token refresh)."""


class PermissionDenied(FatalError):
    """The service account may not do this (HTTP 403)."""


class NotFound(FatalError):
    """The project or device does not exist (HTTP 404)."""


class BadRequest(FatalError):
    """DT refused the request as malformed (HTTP 400 and other 4xx)."""


class GaveUp(FatalError):
    """Transient faults went on past the retry budget."""


class TransientError(DisruptiveError):
    """A fault worth retrying: connection trouble, a busy or failing server, a broken stream."""

    # The fault's kind, counted in the follower's statistics (e.g. "http_503", "cut", "stall").
    kind = "transient"

    def __init__(self, message: str, kind: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.retry_after = retry_after


class ConnectionFailed(TransientError):
    """The connection could not be made, broke, or stalled (the driver names the kind)."""

    kind = "connection"
