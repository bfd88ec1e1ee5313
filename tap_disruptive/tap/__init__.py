"""The Singer face: the tap's settings, streams and records, and schemas as data files."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tap_disruptive.tap.plugin import TapDisruptive

__all__ = ["TapDisruptive", "main"]


def main() -> None:
    """The console script. A SIGTERM or SIGINT from the very start asks the run to end at its first
    checkpoint: the handler goes in before the SDK and its dependencies are imported (a second or more),
    which would otherwise be a window where a stop kills the process without a word."""
    early_stop = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        early_stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    from tap_disruptive.tap import plugin  # noqa: PLC0415 - after the handlers, on purpose

    plugin.main(early_stop)


def __getattr__(name: str) -> Any:
    # The tap class on first use, so that the console script can set its signal handlers first.
    if name == "TapDisruptive":
        from tap_disruptive.tap.plugin import TapDisruptive  # noqa: PLC0415

        return TapDisruptive
    raise AttributeError(name)
