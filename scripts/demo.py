"""The main job on the emulator: start it, run `meltano run tap-disruptive target-duckdb`, show what
landed in the warehouse, and stop the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import meltano_environment

ROOT = Path(__file__).resolve().parent.parent
MELTANO = ROOT / ".meltano-venv" / "bin" / "meltano"
DUCKDB_PYTHON = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "python"
WAREHOUSE = ROOT / "output" / "warehouse.duckdb"


def run_pipeline(environment_name: str, variables: dict[str, str], what: str) -> int:
    """`meltano run --full-refresh tap-disruptive target-duckdb` in the Meltano environment named, with
    `variables` added; its exit code (said on stderr if not 0)."""
    environment = {
        **os.environ,
        "MELTANO_ENVIRONMENT": environment_name,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        **variables,
    }
    command = [str(MELTANO), "run", "--full-refresh", "tap-disruptive", "target-duckdb"]
    print("$ " + " ".join(command[1:]) + f"   ({what})", flush=True)
    run = subprocess.run(command, cwd=ROOT, env=environment, check=False)  # noqa: S603
    if run.returncode != 0:
        print(f"meltano run failed with exit code {run.returncode}", file=sys.stderr)
    return run.returncode


def show_warehouse() -> int:
    """Print what landed, with the target-duckdb plugin's Python (which has duckdb)."""
    show = [str(DUCKDB_PYTHON), str(ROOT / "scripts" / "show_warehouse.py"), str(WAREHOUSE)]
    return subprocess.run(show, check=False).returncode  # noqa: S603


def main() -> int:
    # Each demo is whole on its own: a new warehouse, and no state from an earlier emulator.
    WAREHOUSE.parent.mkdir(exist_ok=True)
    WAREHOUSE.unlink(missing_ok=True)
    # Ten sensor events a second, and an hour of history for the first run to catch up on.
    with EmulatorProcess("--rate", "10", "--history-span", "3600", "--history-interval", "300") as emulator:
        print(f"emulator: {emulator.api_url}, project {emulator.project_id}", flush=True)
        code = run_pipeline("emulator", meltano_environment(emulator), "follows the live stream for 15 s")
        if code != 0:
            return code
    shown = show_warehouse()
    print("emulator stopped")
    return shown


if __name__ == "__main__":
    sys.exit(main())
