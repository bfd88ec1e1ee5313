"""Published events: completing what a publisher leaves out, so payloads carry every key DT sends."""

from __future__ import annotations

from typing import Any

from tap_disruptive.model.event_types import CONNECTION_KINDS, TRANSMISSION_MODES

Payload = dict[str, Any]


# Defaults for what a publisher leaves out, so every payload carries every key DT sends.
_DEFAULTS: dict[str, Payload] = {
    "temperature": {"value": 20.0, "isBackfilled": False},
    "humidity": {"temperature": 20.0, "relativeHumidity": 50, "isBackfilled": False},
    "objectPresent": {"state": "PRESENT"},
    "waterPresent": {"state": "NOT_PRESENT"},
    "motion": {"state": "MOTION_DETECTED"},
    "contact": {"state": "OPEN"},
    "probeWireStatus": {"state": "THREE_WIRE"},
    "deskOccupancy": {"state": "OCCUPIED", "remarks": []},
    "objectPresentCount": {"total": 0},
    "touchCount": {"total": 0},
    "networkStatus": {"signalStrength": 99, "rssi": 0, "transmissionMode": TRANSMISSION_MODES[0]},
    "batteryStatus": {"percentage": 100},
    "co2": {"ppm": 400},
    "pressure": {"pascal": 101_325},
    "connectionStatus": {"connection": CONNECTION_KINDS[1], "available": ["ETHERNET"]},
    "ethernetStatus": {"macAddress": "", "ipAddress": "", "errors": []},
    "cellularStatus": {"signalStrength": 0, "errors": []},
}


def complete_published(event_type: str, given: Payload, stamp: str) -> Payload:
    """A published payload with every key DT sends, taking what the caller gave.

    DT's own client publishes a few shapes of its own (snake_case `cloud_connectors`, humidity samples
    under `celsius`, desk occupancy without `remarks`); they are accepted and put into the wire shape.
    """
    payload: Payload = {**_DEFAULTS.get(event_type, {}), **given}
    payload.setdefault("updateTime", stamp)
    if event_type == "networkStatus":
        connectors = payload.pop("cloud_connectors", None) or payload.get("cloudConnectors") or [{}]
        payload["cloudConnectors"] = [
            {
                "id": connector.get("id", "emulated-ccon"),
                "signalStrength": connector.get("signalStrength", payload["signalStrength"]),
                "rssi": connector.get("rssi", payload["rssi"]),
            }
            for connector in connectors
        ]
    elif event_type == "temperature":
        payload.setdefault("samples", [{"value": payload["value"], "sampleTime": payload["updateTime"]}])
    elif event_type == "humidity":
        samples = payload.get("samples") or [{}]
        payload["samples"] = [
            {
                "temperature": sample.get("temperature", sample.get("celsius", payload["temperature"])),
                "relativeHumidity": sample.get("relativeHumidity", payload["relativeHumidity"]),
                "sampleTime": sample.get("sampleTime", payload["updateTime"]),
            }
            for sample in samples
        ]
    return payload
