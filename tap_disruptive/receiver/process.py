"""Run the receiver as a child process, for tests and demos: where it listens, and its counters.

with ReceiverProcess("--spool", "spool.sqlite", env={"DT_CONNECTOR_SECRET": secret}) as receiver:
    requests.post(receiver.url, data=body, headers={"X-Dt-Signature": token})

Secrets go in `env`, never in the arguments. The child logs at warning unless the arguments say otherwise,
to this process's stderr unless `stderr` names a file. Its stdout carries one JSON line, where it listens.
"""

from __future__ import annotations

from typing import Any

import requests

from tap_disruptive.serving.process import ServerProcess


class ReceiverProcess(ServerProcess):
    """A `disruptive-receiver` child process on loopback."""

    module = "tap_disruptive.receiver"
    what = "the receiver"

    def __repr__(self) -> str:
        return f"ReceiverProcess(url={self.info.get('url')!r})"

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def health_url(self) -> str:
        return str(self.info["health_url"])

    @property
    def metrics_url(self) -> str:
        return str(self.info["metrics_url"])

    def metrics(self) -> dict[str, Any]:
        response = requests.get(self.metrics_url, timeout=30)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer
