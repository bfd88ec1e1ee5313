"""A local server run as a child process by this interpreter: started, it prints one JSON line on stdout
saying where it listens (and nothing after it); it logs at warning unless its arguments say otherwise, to
this process's stderr unless `stderr` names a file (never into a pipe nobody reads, which would fill)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any, Self


class ServerProcess:
    """`python -m <module> --log-level warning <args>`, its handshake in `info`."""

    module = ""
    what = "the server"

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stderr: int | IO[Any] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.stderr = stderr
        self.startup_timeout = startup_timeout
        self.info: dict[str, Any] = {}
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        self._process = subprocess.Popen(  # noqa: S603 - our own module, run by this interpreter
            # A later --log-level among the arguments wins: argparse keeps the last.
            [sys.executable, "-m", self.module, "--log-level", "warning", *self.args],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=self.env,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait(timeout=self.startup_timeout)
            raise RuntimeError(f"{self.what} exited with {code} before it was ready")
        self.info = json.loads(line)
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def stop(self) -> int | None:
        """SIGTERM, then wait (SIGKILL after 15 s); the exit code (0 for a clean stop)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._close()
        return self._process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to finish anything."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._close()

    def _close(self) -> None:
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
