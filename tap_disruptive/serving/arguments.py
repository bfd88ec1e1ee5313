"""Command lines of the local servers: values checked as they are parsed, a parser that refuses in one
line, the version, and where clients reach a server."""

from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import math
from collections.abc import Callable
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """Refuses bad arguments with one line on stderr and exit code 2 (no usage block to scroll past)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _shown(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_bounds(value: float, low: float, high: float, above: bool) -> None:
    too_low = value <= low if above else value < low
    if not too_low and value <= high:
        return
    if high < math.inf:
        wanted = f"between {_shown(low)} and {_shown(high)}"
    else:
        wanted = f"more than {_shown(low)}" if above else f"at least {_shown(low)}"
    raise argparse.ArgumentTypeError(f"must be {wanted}, not {_shown(value)}")


def whole_number(low: int, high: float = math.inf) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        _check_bounds(value, low, high, above=False)
        return value

    return parse


def real_number(low: float, high: float = math.inf, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from `low` (or more than `low`, if `above`) to `high`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
        _check_bounds(value, low, high, above)
        return value

    return parse


def package_version() -> str:
    try:
        return importlib.metadata.version("tap-disruptive")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"  # a source tree that was never installed


def advertised_host(host: str) -> str:
    """Where clients reach a server bound to `host`: loopback for a wildcard bind, else `host` itself."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "127.0.0.1"  # a name such as localhost, or "" for every interface
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


def url_host(host: str) -> str:
    """A host as it stands in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host
