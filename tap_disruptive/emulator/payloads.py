"""Event payloads: realistic simulated readings, and completion of what a publisher leaves out."""

from __future__ import annotations

import random
from typing import Any

from tap_disruptive.model.event_types import CONNECTION_KINDS, STATE_VALUES, TRANSMISSION_MODES

Payload = dict[str, Any]


class SensorState:
    """One device's evolving readings: temperatures drift, counters only grow, states flip."""

    def __init__(self, rng: random.Random, ccon_ids: list[str]) -> None:
        self._rng = rng
        self._ccon_ids = ccon_ids or ["emulated-ccon"]
        self.temperature = rng.uniform(-20.0, 30.0)
        self.humidity = rng.uniform(20.0, 70.0)
        self.co2 = rng.randint(400, 900)
        self.pascal = rng.randint(98_000, 103_000)
        self.battery = rng.choice((100, 100, 90, 80, 60))
        self.counter = rng.randint(0, 5_000)
        self.states = {name: rng.choice(values) for name, values in STATE_VALUES.items()}
        self.states["probeWireStatus"] = "THREE_WIRE"
        self.signal = rng.randint(30, 99)

    def payload(self, event_type: str, stamp: str, backfilled: bool = False) -> Payload:
        """The next payload of ``event_type`` at the RFC 3339 time ``stamp``."""
        builder = _BUILDERS[event_type]
        payload: Payload = builder(self, stamp, backfilled)
        return payload

    def _temperature(self, stamp: str, backfilled: bool) -> Payload:
        self.temperature += self._rng.gauss(0.0, 0.15)
        value = round(self.temperature, 2)
        return {
            "value": value,
            "updateTime": stamp,
            "samples": [{"value": value, "sampleTime": stamp}],
            "isBackfilled": backfilled,
        }

    def _humidity(self, stamp: str, backfilled: bool) -> Payload:
        self.temperature += self._rng.gauss(0.0, 0.1)
        self.humidity = min(100.0, max(0.0, self.humidity + self._rng.gauss(0.0, 0.5)))
        temperature, humidity = round(self.temperature, 2), round(self.humidity)
        return {
            "temperature": temperature,
            "relativeHumidity": humidity,
            "samples": [{"temperature": temperature, "relativeHumidity": humidity, "sampleTime": stamp}],
            "isBackfilled": backfilled,
            "updateTime": stamp,
        }

    def _state(self, event_type: str, stamp: str, flip: float = 0.5) -> Payload:
        values = STATE_VALUES[event_type]
        if self._rng.random() < flip:
            self.states[event_type] = self._rng.choice(values)
        return {"state": self.states[event_type], "updateTime": stamp}

    def _count(self, stamp: str) -> Payload:
        self.counter += self._rng.randint(1, 5)
        return {"total": self.counter, "updateTime": stamp}

    def _network(self, stamp: str) -> Payload:
        self.signal = min(100, max(0, self.signal + self._rng.randint(-3, 3)))
        rssi = round(-105 + self.signal * 0.6)
        seen = self._rng.sample(self._ccon_ids, k=min(len(self._ccon_ids), self._rng.randint(1, 2)))
        connectors = [{"id": ccon, "signalStrength": self.signal, "rssi": rssi} for ccon in seen]
        return {
            "signalStrength": self.signal,
            "rssi": rssi,
            "updateTime": stamp,
            "cloudConnectors": connectors,
            "transmissionMode": TRANSMISSION_MODES[0] if self.signal > 20 else TRANSMISSION_MODES[1],
        }

    def _battery(self, stamp: str) -> Payload:
        if self._rng.random() < 0.02:
            self.battery = max(0, self.battery - 1)
        return {"percentage": self.battery, "updateTime": stamp}

    def _desk(self, stamp: str) -> Payload:
        payload = self._state("deskOccupancy", stamp)
        payload["remarks"] = ["INCOMPLETE_DATA"] if self._rng.random() < 0.05 else []
        return payload

    def _co2(self, stamp: str) -> Payload:
        self.co2 = max(380, self.co2 + self._rng.randint(-25, 25))
        return {"ppm": self.co2, "updateTime": stamp}

    def _pressure(self, stamp: str) -> Payload:
        self.pascal += self._rng.randint(-20, 20)
        return {"pascal": self.pascal, "updateTime": stamp}

    def _connection(self, stamp: str) -> Payload:
        connection = "ETHERNET" if self._rng.random() < 0.9 else "CELLULAR"
        return {"connection": connection, "available": ["CELLULAR", "ETHERNET"], "updateTime": stamp}

    def _ethernet(self, stamp: str) -> Payload:
        return {
            "macAddress": "f0:b5:b7:00:0a:08",
            "ipAddress": "10.0.0.1",
            "errors": [],
            "updateTime": stamp,
        }

    def _cellular(self, stamp: str) -> Payload:
        return {"signalStrength": self._rng.randint(40, 99), "errors": [], "updateTime": stamp}


_BUILDERS: dict[str, Any] = {
    "touch": lambda s, stamp, _b: {"updateTime": stamp},
    "temperature": SensorState._temperature,
    "humidity": SensorState._humidity,
    "objectPresent": lambda s, stamp, _b: s._state("objectPresent", stamp),
    "waterPresent": lambda s, stamp, _b: s._state("waterPresent", stamp, flip=0.1),
    "motion": lambda s, stamp, _b: s._state("motion", stamp),
    "contact": lambda s, stamp, _b: s._state("contact", stamp),
    "probeWireStatus": lambda s, stamp, _b: s._state("probeWireStatus", stamp, flip=0.0),
    "deskOccupancy": lambda s, stamp, _b: s._desk(stamp),
    "objectPresentCount": lambda s, stamp, _b: s._count(stamp),
    "touchCount": lambda s, stamp, _b: s._count(stamp),
    "networkStatus": lambda s, stamp, _b: s._network(stamp),
    "batteryStatus": lambda s, stamp, _b: s._battery(stamp),
    "co2": lambda s, stamp, _b: s._co2(stamp),
    "pressure": lambda s, stamp, _b: s._pressure(stamp),
    "connectionStatus": lambda s, stamp, _b: s._connection(stamp),
    "ethernetStatus": lambda s, stamp, _b: s._ethernet(stamp),
    "cellularStatus": lambda s, stamp, _b: s._cellular(stamp),
}

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
