"""A DAG scheduled by touch events: an asset watched by a DisruptiveEventTrigger runs the DAG once per
touch of a device labelled `button=coffee`, on new events only, resuming after the last one it fired on."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider.triggers.disruptive import DisruptiveEventTrigger

coffee_button = Asset(
    "disruptive_coffee_button",
    watchers=[
        AssetWatcher(
            name="coffee_button_touches",
            trigger=DisruptiveEventTrigger(event_types=["touch"], label_filters={"button": "coffee"}),
        )
    ],
)


@dag(schedule=[coffee_button], catchup=False, tags=["disruptive", "example"])
def disruptive_touch_scheduled() -> None:
    @task
    def brew(**context: Any) -> list[str]:
        touched = []
        for asset_events in context["triggering_asset_events"].values():
            for asset_event in asset_events:
                payload = asset_event.extra.get("payload", {})
                touched.append(payload.get("event", {}).get("device_id", "?"))
        print(f"brewing for touches of {touched}")
        return touched

    brew()


disruptive_touch_scheduled()
