"""Simulated sensors: a seeded project of every device type, its history, and live readings."""

from __future__ import annotations

import asyncio
import random
import time
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

from tap_disruptive.emulator.config import EmulatorConfig
from tap_disruptive.emulator.sensor_state import SensorState
from tap_disruptive.emulator.store import Device, EventStore, RecordedEvent
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.ids import IdFactory
from tap_disruptive.model.times import stamp_and_seconds

_ROOMS = ("kitchen", "lab", "server-room", "lobby", "meeting-1", "meeting-2", "storage", "office")
_BACKFILLABLE = frozenset({"temperature", "humidity"})
# A loop tick; at high rates each tick produces a batch, so writers coalesce them into few writes.
_TICK = 0.005


@dataclass
class SimulatedDevice:
    device: Device
    state: SensorState
    event_types: list[str]
    # Running totals of the event types' shares, ending at 1.0, to draw a type with one random number.
    cumulative_weights: list[float]


class Simulator:
    """Produces the devices' events into the store: pre-generated history, then live at `rate` per second."""

    def __init__(self, config: EmulatorConfig, store: EventStore) -> None:
        self.config = config
        self.store = store
        self.rng = random.Random(config.seed)
        self.devices: list[SimulatedDevice] = []
        self.produced = 0
        self._backfill_ratio = config.backfill_ratio
        self._order: list[int] = []
        self._cursor = 0
        self.skipped = 0

    def populate(self) -> None:
        """Create `device_count` devices per project over every device type, cloud connectors first."""
        id_rng = random.Random(self.config.seed)
        factory = IdFactory(
            machine=id_rng.randbytes(3), pid=id_rng.getrandbits(16), start=id_rng.getrandbits(20)
        )
        base_time = 1_640_995_200  # 2022-01-01: simulated devices were registered long ago
        type_names = ["ccon", *(name for name in DEVICE_TYPES if name != "ccon")]
        for project_id in self.store.projects:
            ccon_ids: list[str] = []
            for index in range(self.config.device_count):
                device_type = DEVICE_TYPES[type_names[index % len(type_names)]]
                device_id = factory.new_id(base_time + index)
                if device_type.name == "ccon":
                    ccon_ids.append(device_id)
                labels = {
                    "name": f"{device_type.name} {index // len(type_names) + 1}",
                    "room": self.rng.choice(_ROOMS),
                    "floor": str(self.rng.randint(1, 4)),
                }
                device = self.store.add_device(
                    Device(project_id, device_id, device_type.name, device_type.product_number, labels)
                )
                self.devices.append(self._simulate(device, ccon_ids))

    def _simulate(self, device: Device, ccon_ids: list[str]) -> SimulatedDevice:
        kinds = list(DEVICE_TYPES[device.device_type].event_types)
        if device.device_type == "ccon":
            weights = [0.3, 0.3, 0.3, 0.1]
        else:
            readings = len(kinds) - 3  # all but touch, networkStatus and batteryStatus
            weights = [0.7 / readings] * readings + [0.1, 0.15, 0.05] if readings else [0.7, 0.25, 0.05]
        cumulative = list(accumulate(weight / sum(weights) for weight in weights))
        cumulative[-1] = 1.0
        return SimulatedDevice(device, SensorState(self.rng, ccon_ids), kinds, cumulative)

    def pregenerate_history(self, now: float) -> None:
        span, interval = self.config.history_span, self.config.history_interval
        if span <= 0 or interval <= 0 or not self.devices:
            return
        steps = int(span / interval)
        for step in range(steps, 0, -1):
            for simulated in self.devices:
                timestamp = now - step * interval + self.rng.uniform(0, interval * 0.9)
                self._emit_past(simulated, timestamp)

    def _emit_past(self, simulated: SimulatedDevice, timestamp: float) -> None:
        # History from before the emulator started: long indexed, and no stream was open to hear it.
        stamp, timestamp = stamp_and_seconds(timestamp)
        self._emit(simulated, stamp, timestamp, timestamp, self.store.ids.new_id(timestamp))

    def _emit(
        self, simulated: SimulatedDevice, stamp: str, timestamp: float, recorded_at: float, event_id: str
    ) -> RecordedEvent:
        event_type = simulated.event_types[bisect(simulated.cumulative_weights, self.rng.random())]
        backfilled = (
            self._backfill_ratio > 0.0
            and event_type in _BACKFILLABLE
            and self.rng.random() < self._backfill_ratio
        )
        if backfilled:
            stamp, timestamp = stamp_and_seconds(
                timestamp - self.rng.uniform(1.0, self.config.backfill_max_age)
            )
        payload = simulated.state.payload_json(event_type, stamp, backfilled)
        device = simulated.device
        encoded = self.store.record_stamped(
            device, event_type, payload, stamp, timestamp, recorded_at, event_id
        )
        self.produced += 1
        return device, event_type, encoded

    def emit_tick(self, count: int) -> None:
        """Emit `count` live events from devices in shuffled turns.

        Events of one tick share its timestamp (a tick is a few milliseconds): formatting one stamp and
        one run of ids per tick is what lets the fast feed reach tens of thousands of events a second.
        """
        stamp, now = stamp_and_seconds(time.time())
        devices, order, recorded = self.devices, self._order, []
        for event_id in self.store.ids.new_ids(now, count):
            if self._cursor == 0:
                self.rng.shuffle(order)
            recorded.append(self._emit(devices[order[self._cursor]], stamp, now, now, event_id))
            self._cursor = (self._cursor + 1) % len(order)
        self.store.notify(recorded)

    async def run(self) -> None:
        """Emit live events at the configured rate until cancelled."""
        rate = self.config.rate
        if rate <= 0 or not self.devices:
            return
        loop = asyncio.get_running_loop()
        started, emitted = loop.time(), 0
        self._order = list(range(len(self.devices)))
        while True:
            await asyncio.sleep(_TICK if rate * _TICK >= 1 else min(1.0 / rate, 0.05))
            due = int((loop.time() - started) * rate) - emitted
            # If the loop fell more than a second behind, skip ahead rather than flood.
            if due > rate:
                self.skipped += due - int(rate)
                emitted += due - int(rate)
                due = int(rate)
            if due > 0:
                self.emit_tick(due)
            emitted += due
