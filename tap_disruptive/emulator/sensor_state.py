"""Simulated readings: each device's state evolves realistically and is written straight as DT's JSON.

The text is formatted from templates rather than through `json.dumps`: the emulator's fast feed must
produce tens of thousands of events a second, and the values are numbers and fixed vocabulary that need
no escaping. Tests parse every shape with DT's official client to keep the templates honest.
"""

# JSON templates use %-formatting: their braces would all need doubling in f-strings or str.format.
# ruff: noqa: UP031

from __future__ import annotations

import random
from collections.abc import Callable

from tap_disruptive.model.event_types import STATE_VALUES, TRANSMISSION_MODES

_BOOL = ("false", "true")


class SensorState:
    """One device's evolving readings: temperatures drift, counters only grow, states flip."""

    def __init__(self, rng: random.Random, ccon_ids: list[str]) -> None:
        self._random = rng.random
        self.temperature = rng.uniform(-20.0, 30.0)
        self.humidity = rng.uniform(20.0, 70.0)
        self.co2 = rng.randint(400, 900)
        self.pascal = rng.randint(98_000, 103_000)
        self.battery = rng.choice((100, 100, 90, 80, 60))
        self.counter = rng.randint(0, 5_000)
        self.states = {name: rng.choice(values) for name, values in STATE_VALUES.items()}
        self.states["probeWireStatus"] = "THREE_WIRE"
        # A sensor hears the one or two cloud connectors nearest to it.
        connectors = ccon_ids or ["emulated-ccon"]
        self._heard_by = rng.sample(connectors, k=min(len(connectors), rng.randint(1, 2)))
        self.signal = rng.randint(30, 99)

    def payload_json(self, event_type: str, stamp: str, backfilled: bool = False) -> str:
        """The next payload of ``event_type`` at the RFC 3339 time ``stamp``, as JSON text."""
        return _WRITERS[event_type](self, stamp, backfilled)

    def _drift(self, step: float) -> float:
        return (self._random() - 0.5) * 2.0 * step

    def _temperature(self, stamp: str, backfilled: bool) -> str:
        self.temperature += self._drift(0.25)
        value = "%.2f" % self.temperature
        return (
            '{"value":%s,"updateTime":"%s","samples":[{"value":%s,"sampleTime":"%s"}],"isBackfilled":%s}'
            % (
                value,
                stamp,
                value,
                stamp,
                _BOOL[backfilled],
            )
        )

    def _humidity(self, stamp: str, backfilled: bool) -> str:
        self.temperature += self._drift(0.15)
        self.humidity = min(100.0, max(0.0, self.humidity + self._drift(0.8)))
        celsius, relative = "%.2f" % self.temperature, int(self.humidity)
        return (
            '{"temperature":%s,"relativeHumidity":%d,"samples":[{"temperature":%s,"relativeHumidity":%d,'
            '"sampleTime":"%s"}],"isBackfilled":%s,"updateTime":"%s"}'
            % (celsius, relative, celsius, relative, stamp, _BOOL[backfilled], stamp)
        )

    def _state(self, event_type: str, stamp: str, flip: float = 0.5) -> str:
        if self._random() < flip:
            values = STATE_VALUES[event_type]
            self.states[event_type] = values[int(self._random() * len(values))]
        return '{"state":"%s","updateTime":"%s"}' % (self.states[event_type], stamp)

    def _count(self, stamp: str) -> str:
        self.counter += 1 + int(self._random() * 5)
        return '{"total":%d,"updateTime":"%s"}' % (self.counter, stamp)

    def _network(self, stamp: str) -> str:
        self.signal = min(100, max(0, self.signal + int(self._drift(3.5))))
        rssi = round(-105 + self.signal * 0.6)
        connectors = ",".join(
            '{"id":"%s","signalStrength":%d,"rssi":%d}' % (ccon, self.signal, rssi) for ccon in self._heard_by
        )
        mode = TRANSMISSION_MODES[0] if self.signal > 20 else TRANSMISSION_MODES[1]
        return (
            '{"signalStrength":%d,"rssi":%d,"updateTime":"%s","cloudConnectors":[%s],"transmissionMode":"%s"}'
            % (self.signal, rssi, stamp, connectors, mode)
        )

    def _battery(self, stamp: str) -> str:
        if self._random() < 0.02:
            self.battery = max(0, self.battery - 1)
        return '{"percentage":%d,"updateTime":"%s"}' % (self.battery, stamp)

    def _desk(self, stamp: str) -> str:
        if self._random() < 0.5:
            self.states["deskOccupancy"] = STATE_VALUES["deskOccupancy"][self._random() < 0.5]
        remarks = '"INCOMPLETE_DATA"' if self._random() < 0.05 else ""
        return '{"state":"%s","remarks":[%s],"updateTime":"%s"}' % (
            self.states["deskOccupancy"],
            remarks,
            stamp,
        )

    def _co2(self, stamp: str) -> str:
        self.co2 = max(380, self.co2 + int(self._drift(25.5)))
        return '{"ppm":%d,"updateTime":"%s"}' % (self.co2, stamp)

    def _pressure(self, stamp: str) -> str:
        self.pascal += int(self._drift(20.5))
        return '{"pascal":%d,"updateTime":"%s"}' % (self.pascal, stamp)

    def _connection(self, stamp: str) -> str:
        connection = "ETHERNET" if self._random() < 0.9 else "CELLULAR"
        return '{"connection":"%s","available":["CELLULAR","ETHERNET"],"updateTime":"%s"}' % (
            connection,
            stamp,
        )

    def _ethernet(self, stamp: str) -> str:
        return (
            '{"macAddress":"f0:b5:b7:00:0a:08","ipAddress":"10.0.0.1","errors":[],"updateTime":"%s"}' % stamp
        )

    def _cellular(self, stamp: str) -> str:
        return '{"signalStrength":%d,"errors":[],"updateTime":"%s"}' % (40 + int(self._random() * 60), stamp)


_WRITERS: dict[str, Callable[[SensorState, str, bool], str]] = {
    "touch": lambda _s, stamp, _b: '{"updateTime":"%s"}' % stamp,
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
