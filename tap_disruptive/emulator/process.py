"""Run the emulator as a child process: for tests, demos and users' own pipeline tests. It speaks the
emulator's own API (create, publish, faults, ledger); what other tools need to reach it is built in
`tap_disruptive.testing`.

with EmulatorProcess("--rate", "5") as emulator:
    print(emulator.api_url, emulator.project_id)

`latency`, `rate_limit` and `rate_limit_burst` make it answer as a remote DT would (`--latency`,
`--rate-limit`, `--rate-limit-burst`); under a rate limit the helpers below wait out its 429s.

The child logs at warning (injected faults) unless the arguments give another `--log-level`, to this
process's stderr unless `stderr` names a file: never into a pipe that nobody reads and that would fill.
Its stdout carries one JSON line, where it listens, and nothing after it.
"""

from __future__ import annotations

from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from tap_disruptive.serving.process import ServerProcess


class EmulatorProcess(ServerProcess):
    """A `disruptive-emulator` child process on loopback, with helpers for its emulator API."""

    module = "tap_disruptive.emulator"
    what = "the emulator"

    def __init__(
        self,
        *args: str,
        startup_timeout: float = 60.0,
        stderr: int | IO[Any] | None = None,
        latency: float = 0.0,
        rate_limit: float = 0.0,
        rate_limit_burst: int | None = None,
    ) -> None:
        pace = _pace_args(latency, rate_limit, rate_limit_burst)
        super().__init__(*pace, *args, startup_timeout=startup_timeout, stderr=stderr)
        self.http = requests.Session()
        if rate_limit > 0:
            # The helpers' own requests wait out the limit: a test publishes what it needs, whatever the pace.
            retry = Retry(total=8, status_forcelist=[429], allowed_methods=None, raise_on_status=False)
            self.http.mount("http://", HTTPAdapter(max_retries=retry))

    def __repr__(self) -> str:
        return f"EmulatorProcess(api_url={self.info.get('api_url')!r})"

    def start(self) -> EmulatorProcess:
        super().start()
        self.http.auth = (self.key_id, self.key_secret)
        return self

    def stop(self) -> int | None:
        code = super().stop()
        self.http.close()
        return code

    # --- where it is ---------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def token_url(self) -> str:
        return str(self.info["token_url"])

    @property
    def base_url(self) -> str:
        return str(self.info["emulator_url"])

    @property
    def project_id(self) -> str:
        return str(self.info["project_id"])

    @property
    def key_id(self) -> str:
        return str(self.info["key_id"])

    @property
    def key_secret(self) -> str:
        return str(self.info["key_secret"])

    @property
    def email(self) -> str:
        return str(self.info["email"])

    # --- the emulator API ----------------------------------------------------------------------------

    def _ok(self, response: requests.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"emulator answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def create_device(self, device_type: str, labels: dict[str, str] | None = None) -> str:
        url = f"{self.api_url}/projects/{self.project_id}/devices"
        device = self._ok(self.http.post(url, json={"type": device_type, "labels": labels or {}}, timeout=30))
        return str(device["name"]).rsplit("/", 1)[-1]

    def publish(self, device_id: str, event_type: str, payload: dict[str, Any] | None = None) -> None:
        url = f"{self.api_url}/projects/{self.project_id}/devices/{device_id}:publish"
        self._ok(self.http.post(url, json={event_type: payload or {}}, timeout=30))

    def set_labels(self, device_id: str, add: dict[str, str], remove: list[str] | None = None) -> None:
        url = f"{self.api_url}/projects/{self.project_id}/devices:batchUpdate"
        name = f"projects/{self.project_id}/devices/{device_id}"
        body = {"devices": [name], "addLabels": add, "removeLabels": remove or []}
        self._ok(self.http.post(url, json=body, timeout=30))

    def inject(self, kind: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(
            self.http.post(f"{self.base_url}/_emulator/faults", json={"kind": kind, **fields}, timeout=30)
        )
        return result

    def clear_faults(self) -> None:
        self._ok(self.http.delete(f"{self.base_url}/_emulator/faults", timeout=30))

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(self.http.get(f"{self.base_url}/_emulator/status", timeout=30))
        return result

    def ledger(self, after: int = 0, **filters: Any) -> tuple[list[dict[str, Any]], int]:
        """Events the emulator produced since ledger position `after`, and the position to read on from."""
        answer = self._ok(
            self.http.get(f"{self.base_url}/_emulator/ledger", params={"after": after, **filters}, timeout=60)
        )
        return answer["events"], int(answer["next"])

    def ledger_position(self) -> int:
        return int(self.status()["events_recorded"])


def _pace_args(latency: float, rate_limit: float, burst: int | None) -> list[str]:
    args = ["--latency", str(latency)] if latency else []
    if rate_limit:
        args += ["--rate-limit", str(rate_limit)]
    if burst is not None:
        args += ["--rate-limit-burst", str(burst)]
    return args
