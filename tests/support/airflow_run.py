"""Run one DAG with `dag.test()` and print its outcome as JSON: run in a subprocess whose environment
points Airflow at a throwaway home (see tests/test_airflow_dags.py)."""

from __future__ import annotations

import json
import sys
from typing import Any

from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session


def main(path: str, dag_id: str) -> None:
    dag = DagBag(dag_folder=path).get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id} in {path}"
    run = dag.test()
    outcome: dict[str, Any] = {"state": str(run.state), "tasks": {}, "xcom": {}}
    with create_session() as session:
        for instance in run.get_task_instances(session=session):
            outcome["tasks"][instance.task_id] = str(instance.state)
        for row in session.query(XComModel).filter(
            XComModel.dag_id == dag_id, XComModel.run_id == run.run_id
        ):
            outcome["xcom"][f"{row.task_id}.{row.key}"] = _decoded(row.value)
    print("OUTCOME " + json.dumps(outcome, default=str))


def _decoded(value: Any) -> Any:
    # XCom rows hold JSON text, or (depending on the backend) the value itself.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
