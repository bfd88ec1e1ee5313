"""The command line's values, each checked as it is parsed, and a parser that refuses in one line."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import NoReturn

from tap_disruptive.emulator.faults import STREAM_FAULTS

# DT's ids are 20 characters of 0-9a-v; the emulator also takes readable ids, as long as they are safe
# in a URL path and are not `-`, DT's wildcard project.
_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


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


def project_id(text: str) -> str:
    """An argparse type: a project id that can stand in a resource name and a URL path."""
    if not _PROJECT_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not a DT project id: {text!r}; use letters, digits, '-' and '_' (DT's look like "
            "c0demoproject0000000)"
        )
    return text


def fault_kinds(text: str) -> tuple[str, ...]:
    """An argparse type: a comma-separated list of stream fault kinds, each named once."""
    kinds = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not kinds:
        raise argparse.ArgumentTypeError("name at least one fault kind")
    for kind in kinds:
        if kind not in STREAM_FAULTS:
            known = ", ".join(sorted(STREAM_FAULTS))
            raise argparse.ArgumentTypeError(f"unknown fault kind {kind!r}; the kinds are {known}")
    return kinds
