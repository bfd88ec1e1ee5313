"""A DAG run per touch that a Data Connector pushed: `disruptive-receiver` keeps each push in its spool,
and an asset watched by a DisruptiveSpoolTrigger runs the DAG once per touch of a device whose push
carries the label `button=coffee` (the connector must forward that label). No DT connection at all:
only the spool, named by the Airflow connection `dt_spool`, e.g.

    AIRFLOW_CONN_DT_SPOOL='{"conn_type": "generic", "extra": {"spool": "/var/lib/dt/spool.sqlite"}}'
    AIRFLOW_CONN_DT_SPOOL='postgresql://reader:<password>@db.internal:5432/dtspool'

The watcher resumes after the last spool row it dealt with (kept in the asset's state store)."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider.triggers.spool import DisruptiveSpoolTrigger

coffee_pushes = Asset(
    "disruptive_spool_coffee_button",
    watchers=[
        AssetWatcher(
            name="coffee_button_pushes",
            trigger=DisruptiveSpoolTrigger(
                spool_conn_id="dt_spool",
                project_ids=os.environ.get("DT_PROJECT_ID", "<your DT project id>"),
                event_types=["touch"],
                label_filters={"button": "coffee"},
            ),
        )
    ],
)


@dag(schedule=[coffee_pushes], catchup=False, tags=["disruptive", "example"])
def disruptive_spool_touches() -> None:
    @task
    def brew(**context: Any) -> list[int]:
        seqs = []
        for asset_events in context["triggering_asset_events"].values():
            for asset_event in asset_events:
                event = asset_event.extra.get("payload", {}).get("event", {})
                print(f"brewing for {event.get('device_id')}, touched at {event.get('timestamp')}")
                seqs.append(event.get("spool_seq", 0))
        return seqs

    brew()


disruptive_spool_touches()
