"""The same event-driven scheduling through Airflow's common.messaging: `MessageQueueTrigger` with the
`disruptive` scheme (needs the `messaging` extra). Runs once per water leak detected."""

from __future__ import annotations

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider.conditions import field

leaks = Asset(
    "disruptive_water_leaks",
    watchers=[
        AssetWatcher(
            name="water_leaks",
            trigger=MessageQueueTrigger(
                scheme="disruptive",
                event_types=["waterPresent"],
                condition=field("data.waterPresent.state", "==", "PRESENT"),
            ),
        )
    ],
)


@dag(schedule=[leaks], catchup=False, tags=["disruptive", "example"])
def disruptive_water_leaks() -> None:
    @task
    def call_the_plumber() -> None:
        print("water detected: calling the plumber")

    call_the_plumber()


disruptive_water_leaks()
