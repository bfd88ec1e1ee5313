"""Print what landed in the demo's DuckDB warehouse: events per type and each device's latest reading.

Run with the target-duckdb plugin's own Python, which has duckdb: the project's venv does not need it.
"""

from __future__ import annotations

import json
import re
import sys

import duckdb


def reading(event_type: str, data: str | None) -> str:
    # The payload's key is the event type in snake_case, as every key of the tap's records.
    type_key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", event_type).lower()
    payload = (json.loads(data) if data else {}).get(type_key) or {}
    shown = {
        key: value for key, value in payload.items() if key not in ("update_time", "samples", "is_backfilled")
    }
    return ", ".join(f"{key}={value}" for key, value in shown.items())


def main(path: str) -> None:
    db = duckdb.connect(path, read_only=True)
    total, distinct = db.sql(
        "select count(*), count(distinct event_id) from tap_disruptive.events"
    ).fetchone()
    print(f"\n{total} events landed ({distinct} distinct event ids)\n\nevents per type:")
    for event_type, count in db.sql(
        "select event_type, count(*) from tap_disruptive.events group by 1 order by 2 desc, 1"
    ).fetchall():
        print(f"  {event_type:<20} {count:>6}")
    print("\nlatest reading per device:")
    rows = db.sql(
        """
        select d.display_name, d.device_type, e.event_type, e.timestamp, e.data
        from (select *, row_number() over (partition by device_id order by timestamp desc) as newest
              from tap_disruptive.events
              where event_type not in ('networkStatus', 'batteryStatus', 'touch', 'labelsChanged')) as e
        join tap_disruptive.devices as d using (device_id)
        where e.newest = 1
        order by d.device_type, d.display_name
        """
    ).fetchall()
    for name, device_type, event_type, timestamp, data in rows:
        shown = reading(event_type, data)
        print(f"  {name or '?':<22} {device_type:<17} {timestamp:%H:%M:%S}  {event_type:<18} {shown}")


if __name__ == "__main__":
    main(sys.argv[1])
