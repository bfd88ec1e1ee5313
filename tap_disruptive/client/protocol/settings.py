"""How to reach DT and how patient to be: every knob of the protocol in one value object."""

from __future__ import annotations

from dataclasses import dataclass, field

from tap_disruptive import __version__
from tap_disruptive.client.protocol.errors import FatalError

DT_API_URL = "https://api.disruptive-technologies.com/v2"
DT_TOKEN_URL = "https://identity.disruptive-technologies.com/oauth2/token"  # noqa: S105 - a URL
USER_AGENT = f"tap-disruptive/{__version__}"


@dataclass(frozen=True)
class Credentials:
    """A DT service account key. The secret never appears in a repr."""

    key_id: str
    key_secret: str = field(repr=False)
    email: str = ""
    # With basic auth the key id and secret go in every request; otherwise they sign a JWT for a token.
    basic_auth: bool = False

    def __post_init__(self) -> None:
        if not self.key_id:
            raise FatalError("missing service account key id (key_id)")
        if not self.key_secret:
            raise FatalError("missing service account secret (key_secret)")
        if not self.basic_auth and not self.email:
            raise FatalError("missing service account email (email), needed for OAuth2; or use basic auth")


@dataclass(frozen=True)
class ClientSettings:
    credentials: Credentials
    api_url: str = DT_API_URL
    token_url: str = DT_TOKEN_URL
    user_agent: str = USER_AGENT
    # Seconds to wait for a REST answer.
    request_timeout: float = 30.0
    # Pings asked of the stream; a connection silent for ping_interval + ping_leeway is dead.
    ping_interval: float = 10.0
    ping_leeway: float = 5.0
    # Backoff between attempts: exponential from backoff_initial, capped, with full jitter.
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    # Consecutive failed attempts (connects or requests) before giving up.
    max_attempts: int = 10
    # Retry-After beyond this is treated as this, so a bad header cannot stall a run for hours.
    max_retry_after: float = 300.0
    # Gap fill: how far before the last sign of life to read history again, and when to read it a
    # second time, after DT's indexing delay (documented as up to about 10 s).
    gap_overlap: float = 30.0
    indexing_delay: float = 12.0
    history_concurrency: int = 16
    # Requests a second: where the pacer starts, and a cap it never passes (None: learned from DT alone).
    request_rate: float = 20.0
    max_request_rate: float | None = None
    history_page_size: int = 1000
    # History is read in time slices, each delivered in time order; a slice holds at most about this
    # many events (its length adapts to how dense the history is), which bounds memory on any span.
    slice_events: int = 20_000
    # Events read from history are handed over in chunks of this many, each with its own claim, so a
    # consumer that stops part way keeps most of what was read.
    delivery_chunk: int = 2_000
    slice_seconds: float = 600.0
    # A follower this far behind reads history before it opens the stream; closer, it opens the stream
    # first and reads the rest of history while the stream waits.
    live_lag: float = 60.0
    # The consumer gets control back at least this often (an empty delivery), to end a bounded run.
    heartbeat: float = 1.0
    device_page_size: int = 100
    # Refresh an access token this long before it expires (at most a quarter of its lifetime).
    token_margin: float = 60.0
    # Event ids remembered to drop duplicates: those within the gap window, but never more than this
    # many. At DT's usual rates that is many minutes of events; only on a very fast feed could a
    # duplicate pass after a reconnect, which at-least-once delivery allows (targets upsert by event id).
    dedupe_capacity: int = 100_000

    def __post_init__(self) -> None:
        for name in ("request_timeout", "ping_interval", "backoff_initial", "backoff_cap", "request_rate"):
            if getattr(self, name) <= 0:
                raise FatalError(f"{name} must be positive")
        if self.max_request_rate is not None and self.max_request_rate <= 0:
            raise FatalError("max_request_rate must be positive")
        if min(self.max_attempts, self.history_concurrency, self.slice_events, self.delivery_chunk) < 1:
            raise FatalError(
                "max_attempts, history_concurrency, slice_events and delivery_chunk must be at least 1"
            )
        for url_name in ("api_url", "token_url"):
            url = getattr(self, url_name)
            if not url.startswith(("http://", "https://")):
                raise FatalError(f"{url_name} must be an http(s) URL, got {url!r}")

    @property
    def api_base(self) -> str:
        return self.api_url.rstrip("/")

    @property
    def read_timeout(self) -> float:
        return self.ping_interval + self.ping_leeway
