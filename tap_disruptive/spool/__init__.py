"""Where pushes are kept until a consumer reads them: a SQLite file, or PostgreSQL given a URL."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from tap_disruptive.spool.base import (
    READ_LIMIT,
    Appended,
    Spool,
    SpooledEvent,
    SpoolError,
    SpoolMissing,
    SpoolStats,
)
from tap_disruptive.spool.sqlite import SqliteSpool

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

__all__ = [
    "READ_LIMIT",
    "Appended",
    "Spool",
    "SpoolError",
    "SpoolMissing",
    "SpoolStats",
    "SpooledEvent",
    "SqliteSpool",
    "is_postgres",
    "open_spool",
    "shown_target",
    "spool_password",
]


def is_postgres(target: str) -> bool:
    return target.startswith(POSTGRES_SCHEMES)


def open_spool(target: str, create: bool = True) -> Spool:
    """The spool `target` names: a postgresql:// URL, or else a SQLite file path. A reader passes
    `create=False`: a spool that does not exist yet raises SpoolMissing instead of being made."""
    if not is_postgres(target):
        return SqliteSpool(target, create=create)
    try:
        # psycopg is needed only for this spool, so it is imported only for it.
        from tap_disruptive.spool.postgres import PostgresSpool  # noqa: PLC0415
    except ImportError:
        raise SpoolError("a PostgreSQL spool needs psycopg: pip install 'tap-disruptive[postgres]'") from None
    return PostgresSpool(target, create=create)


def spool_password(target: str) -> str | None:
    """The password a postgresql:// URL carries, so that logs can hide it wherever it turns up."""
    return urlsplit(target).password if is_postgres(target) else None


def shown_target(target: str) -> str:
    """`target` fit to print: a URL's password and query (which may hold one too) replaced by ***."""
    if not is_postgres(target):
        return target
    parts = urlsplit(target)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))
