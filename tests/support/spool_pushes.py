"""Data Connector pushes for spool tests: bodies as DT POSTs them (event, labels, metadata), appended to
a spool the way the receiver stores them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tap_disruptive.model.ids import IdFactory
from tap_disruptive.model.pushes import parse_push
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.spool import Spool, open_spool

PROJECT = "c14u9p094l47cdv1o3pg"
OTHER_PROJECT = "c0therproject0000000"
IDS = IdFactory()


def push_body(
    device_id: str,
    event_type: str = "touch",
    data: dict[str, Any] | None = None,
    *,
    project_id: str = PROJECT,
    labels: dict[str, str] | None = None,
    device_type: str | None = None,
) -> bytes:
    """One push body: an event of `event_type` (payload `data`, else a touch's) of a device."""
    stamp = format_timestamp(time.time())
    payload = {"updateTime": stamp} if data is None else {**data, "updateTime": stamp}
    document = {
        "event": {
            "eventId": IDS.new_id(time.time()),
            "targetName": f"projects/{project_id}/devices/{device_id}",
            "eventType": event_type,
            "data": {event_type: payload},
            "timestamp": stamp,
        },
        "labels": labels or {},
        "metadata": {
            "deviceId": device_id,
            "projectId": project_id,
            "deviceType": device_type or event_type,
            "productNumber": "",
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


def event_id(body: bytes) -> str:
    return str(json.loads(body)["event"]["eventId"])


@dataclass
class SpoolFile:
    """A spool on disk that tests append pushes to, as the receiver would."""

    path: Path
    spool: Spool = field(init=False)
    appended: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spool = open_spool(str(self.path))

    def append(self, body: bytes) -> str:
        self.spool.append(parse_push(body), time.time())
        self.appended.append(body)
        return event_id(body)

    def push(
        self, device_id: str, event_type: str = "touch", data: dict[str, Any] | None = None, **kw: Any
    ) -> str:
        return self.append(push_body(device_id, event_type, data, **kw))

    def last_seq(self) -> int:
        return self.spool.last_seq()

    def close(self) -> None:
        self.spool.close()
