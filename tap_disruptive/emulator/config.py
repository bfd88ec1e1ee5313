"""The emulator's settings, with demo defaults that are safe to print."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEMO_PROJECT_ID = "c0demoproject0000000"
DEMO_KEY_ID = "c0demokey00000000000"
DEMO_KEY_SECRET = "demo-secret-not-for-production-use"  # noqa: S105 - the emulator's published demo credential
DEMO_EMAIL = f"c0demoaccount0000000@{DEMO_PROJECT_ID}.serviceaccount.d21s.com"


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    project_ids: list[str] = field(default_factory=lambda: [DEMO_PROJECT_ID])
    device_count: int = 24
    seed: int = 1
    # Simulated events per second over all devices; 0 produces only what is published.
    rate: float = 2.0
    # Pre-generated history: how far back, and one event per device every `history_interval` seconds.
    history_span: float = 3600.0
    history_interval: float = 300.0
    # Share of temperature and humidity readings that arrive late, backfilled, up to `backfill_max_age` old.
    backfill_ratio: float = 0.0
    backfill_max_age: float = 20.0
    key_id: str = DEMO_KEY_ID
    key_secret: str = field(default=DEMO_KEY_SECRET, repr=False)
    email: str = DEMO_EMAIL
    basic_auth: bool = True
    token_lifetime: float = 3600.0
    # DT documents 1 to 10 s before a streamed event shows in history.
    indexing_delay: float = 2.0
    default_ping_interval: float = 10.0
    # The largest history page served, whatever a client asks for (DT does not document its limit).
    history_page_max: int = 1000
    # Mean seconds between random stream faults; 0 disables chaos.
    chaos_interval: float = 0.0
    chaos_kinds: tuple[str, ...] = ("cut", "end", "blank", "garbage", "error", "error_v1")
    # Data Connectors: DT keeps an unacknowledged push queued 12 h, waits 10 s for an answer, and backs off
    # between attempts (the first wait here, doubling each time).
    connector_retention: float = 12 * 3600.0
    connector_timeout: float = 10.0
    connector_backoff: float = 1.0
    # A remote DT's pace: seconds before each API or token request is handled, and a token bucket of
    # `rate_limit` requests a second (0 = none) holding `rate_limit_burst` (None: the rate, at least 1).
    latency: float = 0.0
    rate_limit: float = 0.0
    rate_limit_burst: int | None = None
    # What goes to stderr: debug, info (start-up facts and every request), warning (injected faults), error.
    log_level: str = "info"

    @property
    def burst(self) -> int:
        """The token bucket's capacity: as given, else one second's worth of requests, at least 1."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit))
