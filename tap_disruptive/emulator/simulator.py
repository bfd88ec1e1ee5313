"""Simulated sensors: a seeded project of every device type, its history, and live readings."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from tap_disruptive.emulator.config import EmulatorConfig
from tap_disruptive.emulator.payloads import SensorState
from tap_disruptive.emulator.store import Device, EventStore
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.ids import IdFactory
from tap_disruptive.model.times import format_timestamp

_ROOMS = ("kitchen", "lab", "server-room", "lobby", "meeting-1", "meeting-2", "storage", "office")
_BACKFILLABLE = frozenset({"temperature", "humidity"})
# A loop tick; at high rates each tick produces a batch, so writers coalesce them into few writes.
_TICK = 0.005


@dataclass
class SimulatedDevice:
    device: Device
    state: SensorState
    event_types: list[str]
    weights: list[float]


class Simulator:
    """Produces the devices' events into the store: pre-generated history, then live at `rate` per second."""

    def __init__(self, config: EmulatorConfig, store: EventStore) -> None:
        self.config = config
        self.store = store
        self.rng = random.Random(config.seed)
        self.devices: list[SimulatedDevice] = []
        self.produced = 0
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
        return SimulatedDevice(device, SensorState(self.rng, ccon_ids), kinds, weights)

    def pregenerate_history(self, now: float) -> None:
        span, interval = self.config.history_span, self.config.history_interval
        if span <= 0 or interval <= 0 or not self.devices:
            return
        steps = int(span / interval)
        for step in range(steps, 0, -1):
            for simulated in self.devices:
                timestamp = now - step * interval + self.rng.uniform(0, interval * 0.9)
                self._emit(simulated, timestamp, recorded_at=timestamp)

    def _emit(self, simulated: SimulatedDevice, timestamp: float, recorded_at: float | None = None) -> None:
        event_type = self.rng.choices(simulated.event_types, simulated.weights)[0]
        backfilled = (
            event_type in _BACKFILLABLE
            and self.config.backfill_ratio > 0
            and self.rng.random() < self.config.backfill_ratio
        )
        if backfilled:
            timestamp -= self.rng.uniform(1.0, self.config.backfill_max_age)
        payload = simulated.state.payload(event_type, format_timestamp(timestamp), backfilled)
        self.store.record(simulated.device, event_type, {event_type: payload}, timestamp, recorded_at)
        self.produced += 1

    async def run(self) -> None:
        """Emit live events at the configured rate until cancelled."""
        rate = self.config.rate
        if rate <= 0 or not self.devices:
            return
        loop = asyncio.get_running_loop()
        started, emitted = loop.time(), 0
        order = list(range(len(self.devices)))
        cursor = 0
        while True:
            await asyncio.sleep(_TICK if rate * _TICK >= 1 else min(1.0 / rate, 0.05))
            due = int((loop.time() - started) * rate) - emitted
            # If the loop fell more than a second behind, skip ahead rather than flood.
            if due > rate:
                self.skipped += due - int(rate)
                emitted += due - int(rate)
                due = int(rate)
            for _ in range(due):
                if cursor == 0:
                    self.rng.shuffle(order)
                self._emit(self.devices[order[cursor]], time.time())
                cursor = (cursor + 1) % len(order)
            emitted += due
