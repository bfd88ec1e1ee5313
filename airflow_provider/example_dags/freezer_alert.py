"""Alert when a freezer warms above a threshold: a deferrable sensor waits for a temperature event of a
device labelled `kind=freezer` above `FREEZER_MAX_CELSIUS`, then an alert task reports it."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import dag, task

from airflow_provider.conditions import field
from airflow_provider.sensors.disruptive import DisruptiveEventSensor

THRESHOLD = float(os.environ.get("FREEZER_MAX_CELSIUS", "-15"))


@dag(schedule=None, catchup=False, tags=["disruptive", "example"])
def disruptive_freezer_alert() -> None:
    too_warm = DisruptiveEventSensor(
        task_id="wait_for_a_warm_freezer",
        label_filters={"kind": "freezer"},
        event_types=["temperature"],
        condition=field("data.temperature.value", ">", THRESHOLD),
        timeout=int(os.environ.get("FREEZER_WAIT_SECONDS", "3600")),
    )

    @task
    def alert(event: dict[str, Any]) -> str:
        celsius = event["data"]["temperature"]["value"]
        message = f"freezer {event['device_id']} is at {celsius} °C, above {THRESHOLD} °C"
        print(message)
        return message

    alert(too_warm.output)  # type: ignore[arg-type]  # an XComArg stands for the value at run time


disruptive_freezer_alert()
