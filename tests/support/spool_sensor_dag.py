"""A DAG for tests/test_airflow_spool.py's `dag.test()` run: a DisruptiveSpoolSensor waits for a warm
freezer in the spool named by the connection DT_SPOOL (no DT connection), then a task reports it."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import dag, task

from airflow_provider.conditions import field
from airflow_provider.sensors.spool import DisruptiveSpoolSensor


@dag(schedule=None, catchup=False, tags=["disruptive", "test"])
def disruptive_spool_sensor() -> None:
    too_warm = DisruptiveSpoolSensor(
        task_id="wait_for_a_warm_freezer",
        spool_conn_id="dt_spool",
        project_ids=os.environ.get("DT_SPOOL_PROJECT", "c0project"),
        label_filters={"kind": "freezer"},
        event_types=["temperature"],
        condition=field("data.temperature.value", ">", -15),
        timeout=120,
    )

    @task
    def alert(event: dict[str, Any]) -> str:
        return f"freezer {event['device_id']} is at {event['data']['temperature']['value']}"

    alert(too_warm.output)  # type: ignore[arg-type]  # an XComArg stands for the value at run time


disruptive_spool_sensor()
