"""Record door openings for an hour: an operator collects every contact event with state OPEN during
its window (DOOR_WINDOW_SECONDS, an hour by default), logs each one, and returns them all."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import dag, task

from airflow_provider.conditions import field
from airflow_provider.operators.disruptive import DisruptiveEventOperator


def log_opening(event: dict[str, Any]) -> None:
    print(f"door {event['device_id']} opened at {event['timestamp']}")


@dag(schedule=None, catchup=False, tags=["disruptive", "example"])
def disruptive_door_openings() -> None:
    openings = DisruptiveEventOperator(
        task_id="collect_door_openings",
        device_types=["contact"],
        event_types=["contact"],
        condition=field("data.contact.state", "==", "OPEN"),
        window_seconds=float(os.environ.get("DOOR_WINDOW_SECONDS", "3600")),
        on_event="airflow_provider.example_dags.door_openings.log_opening",
    )

    # One XCom for the whole dict: a dict return type alone would make Airflow push one per door.
    @task(multiple_outputs=False)
    def summarise(events: list[dict[str, Any]]) -> dict[str, int]:
        per_door: dict[str, int] = {}
        for event in events:
            per_door[event["device_id"]] = per_door.get(event["device_id"], 0) + 1
        return per_door

    summarise(openings.output)  # type: ignore[arg-type]  # an XComArg stands for the value at run time


disruptive_door_openings()
