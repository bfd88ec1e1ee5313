"""Parse a DAG folder as Airflow's dag-processor does, in a fresh interpreter with a test's Airflow home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def parse_dags(folder: Path, environment: dict[str, str], also: str = "") -> dict[str, Any]:
    """The folder's import errors (`errors`) and DAG ids (`dags`); `also`, Python run after the parse,
    may add to `result` from `bag` (the DagBag)."""
    script = (
        "import json; from airflow.dag_processing.dagbag import DagBag; "
        f"bag = DagBag(dag_folder={str(folder)!r}); "
        "result = {'errors': bag.import_errors, 'dags': sorted(bag.dag_ids)}; "
        f"{also or 'pass'}; print(json.dumps(result))"
    )
    parsed = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(parsed.stdout.strip().splitlines()[-1])
    return result
