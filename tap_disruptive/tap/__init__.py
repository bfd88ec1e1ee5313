"""The Singer face: the tap's settings, streams and records, and schemas as data files."""

from tap_disruptive.tap.plugin import TapDisruptive, main

__all__ = ["TapDisruptive", "main"]
