"""Disruptive Technologies sensor events as Singer records, Airflow triggers and a local API emulator."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tap-disruptive")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
