"""The receiver's settings. Signature secrets never show in a repr, a log line or an error body."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

DEFAULT_SPOOL = "./disruptive-spool.sqlite"
# DT keeps an unacknowledged push for up to 12 h; rows kept longer still catch a late re-send as a duplicate.
DEFAULT_RETENTION_HOURS = 72.0
DT_REDELIVERY_HOURS = 12.0


class ConnectorSecrets:
    """The Data Connector signature secrets accepted at once (several while one is being rotated)."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str]) -> None:
        self._values = tuple(dict.fromkeys(values))
        if not self._values or not all(self._values):
            raise ValueError("give at least one signature secret, none of them empty")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ConnectorSecrets(<{len(self._values)} hidden>)"

    __str__ = __repr__


@dataclass(frozen=True)
class ReceiverConfig:
    secrets: ConnectorSecrets
    host: str = "127.0.0.1"
    port: int = 8080
    # Where DT POSTs; the connector's endpoint URL names it.
    path: str = "/"
    # A SQLite file path, or a postgresql:// URL (which may hold a password: never shown as given).
    spool: str = field(default=DEFAULT_SPOOL, repr=False)
    retention_hours: float = DEFAULT_RETENTION_HOURS
    prune_every: float = 300.0
    # DT's events are a few hundred bytes; anything near this is not DT.
    max_body_bytes: int = 1024 * 1024
    # Seconds a push may wait for the spool before it is answered 503: well inside DT's 10 s.
    answer_within: float = 8.0
    log_level: str = "info"
