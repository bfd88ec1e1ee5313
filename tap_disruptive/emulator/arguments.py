"""The emulator's own command-line values, each checked as it is parsed (the shared ones are in
`tap_disruptive.serving.arguments`)."""

from __future__ import annotations

import argparse
import re

from tap_disruptive.emulator.faults import STREAM_FAULTS
from tap_disruptive.serving.arguments import OneLineParser, real_number, whole_number

# DT's ids are 20 characters of 0-9a-v; the emulator also takes readable ids, as long as they are safe
# in a URL path and are not `-`, DT's wildcard project.
_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


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


__all__ = ["OneLineParser", "fault_kinds", "project_id", "real_number", "whole_number"]
