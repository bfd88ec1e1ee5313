"""A throwaway Airflow home for tests that run Airflow in subprocesses, and a DAG folder parsed there as
Airflow's dag-processor does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.support.services import ROOT


def migrated_airflow_home(dags_folder: Path | None = None) -> dict[str, str]:
    """The environment of a new Airflow home with its database migrated; `dags_folder` is the DAGs
    folder (else `dags` in the home, made empty)."""
    home = tempfile.mkdtemp(prefix="airflow-home-")
    if dags_folder is None:
        dags_folder = Path(home) / "dags"
        dags_folder.mkdir()
    environment = {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run(
        [str(airflow), "db", "migrate"], env=environment, check=True, capture_output=True, timeout=300
    )
    return environment


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
