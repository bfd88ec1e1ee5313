"""RFC 3339 timestamps as DT writes them: UTC, a `Z` suffix and microseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_second_cache: tuple[int, str] = (-1, "")


def stamp_and_seconds(unix_seconds: float) -> tuple[str, float]:
    """DT's stamp of a time, e.g. ``2021-04-21T08:15:43.512330Z``, and the seconds that stamp reads back as.

    DT sends whole microseconds; keeping the rounded seconds beside the stamp lets an index of times
    agree exactly with what a client parses from the wire.
    """
    global _second_cache  # noqa: PLW0603 - a one-slot cache: the emulator formats many stamps per second
    total = round(unix_seconds * 1_000_000)
    whole, micros = divmod(total, 1_000_000)
    cached_second, prefix = _second_cache
    if cached_second != whole:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second_cache = (whole, prefix)
    return f"{prefix}.{micros:06d}Z", total / 1_000_000


def format_timestamp(unix_seconds: float) -> str:
    """Format seconds since the epoch as DT does, e.g. ``2021-04-21T08:15:43.512330Z``."""
    return stamp_and_seconds(unix_seconds)[0]


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    Tolerates any number of fractional digits (DT has sent 6 and 9) and `Z` or a numeric offset.
    Raises ValueError on anything else.
    """
    if not isinstance(text, str) or "T" not in text:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    head, sep, fraction = text.partition(".")
    if sep:
        digits = len(fraction) - len(fraction.lstrip("0123456789"))
        zone = fraction[digits:]
        # Python's parser takes at most 6 fractional digits; DT's older 9-digit stamps lose only nanoseconds.
        text = f"{head}.{(fraction[:digits] or '0')[:6]}{zone}"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp has no time zone: {text!r}")
    return parsed.astimezone(UTC)


def timestamp_seconds(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp."""
    return parse_timestamp(text).timestamp()
