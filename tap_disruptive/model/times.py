"""RFC 3339 timestamps as DT writes them: UTC, a `Z` suffix and microseconds.

In canonical form (``2021-04-21T08:15:43.512330Z``, always 27 characters) stamps compare as strings,
so the client keeps them as text and only converts when it does arithmetic.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_second_cache: tuple[int, str] = (-1, "")
# Seconds (the first 19 characters of a canonical stamp) already checked to be real times. A stream's
# events share few seconds, so checking each second once makes validation nearly free.
_valid_seconds: dict[str, bool] = {}
_VALID_SECONDS_LIMIT = 4096


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
    Raises ValueError on anything else, impossible dates and times included.
    """
    if not isinstance(text, str) or "T" not in text:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}"[:120])
    head, sep, fraction = text.partition(".")
    if sep:
        digits = len(fraction) - len(fraction.lstrip("0123456789"))
        zone = fraction[digits:]
        # Python's parser takes at most 6 fractional digits; DT's older 9-digit stamps lose only nanoseconds.
        text = f"{head}.{(fraction[:digits] or '0')[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}"[:120]) from None
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp has no time zone: {text!r}"[:120])
    return parsed.astimezone(UTC)


def timestamp_seconds(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp."""
    return parse_timestamp(text).timestamp()


def canonical_timestamp(text: str) -> str:
    """DT's usual form (UTC, `Z`, six fractional digits), so that stamps compare as strings.

    The common case, a stamp already in that form, costs a shape check and a lookup of its second;
    anything else (nine digits, an offset) is parsed and rewritten. Raises ValueError if the text is no
    real time (`2026-02-30T25:61:00.000000Z` included).
    """
    if len(text) == 27 and text[26] == "Z" and text[19] == "." and text[10] == "T":
        second = text[:19]
        valid = _valid_seconds.get(second)
        if valid is None:
            valid = _is_real_second(second)
            if len(_valid_seconds) >= _VALID_SECONDS_LIMIT:
                _valid_seconds.clear()
            _valid_seconds[second] = valid
        if valid and text[20:26].isdigit():
            return text
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}"[:120])
    return format_timestamp(parse_timestamp(text).timestamp())


def _is_real_second(second: str) -> bool:
    if not (second[:4].isdigit() and second[4] == "-" and second[7] == "-" and second[13] == ":"):
        return False
    try:
        datetime.strptime(second, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return False
    return True


def stamp_micros(stamp: str) -> int:
    """Microseconds since the epoch of a timestamp, exactly (no float rounding)."""
    return (parse_timestamp(stamp) - _EPOCH) // _ONE_MICROSECOND


def micros_stamp(micros: int) -> str:
    """The canonical stamp of microseconds since the epoch."""
    whole, fraction = divmod(micros, 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{fraction:06d}Z"


def shift(stamp: str, seconds: float) -> str:
    """A canonical stamp moved by `seconds` (negative for earlier), to the microsecond."""
    return micros_stamp(stamp_micros(stamp) + round(seconds * 1_000_000))


def just_before(stamp: str) -> str:
    """The canonical stamp one microsecond earlier: the last time strictly before `stamp`."""
    return micros_stamp(stamp_micros(stamp) - 1)
