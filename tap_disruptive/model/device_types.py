"""DT's device types, their product numbers and the events each sends."""

from __future__ import annotations

from dataclasses import dataclass

# Every sensor sends these besides its own readings; labelsChanged comes from label edits, not the sensor.
_SENSOR_COMMON = ("touch", "networkStatus", "batteryStatus")


@dataclass(frozen=True)
class DeviceType:
    name: str
    # Empty where public material names no product number for the type.
    product_number: str
    # Event types the device emits, the first being its main reading.
    event_types: tuple[str, ...]
    # Event types only a variant of the type sends (the temperature probe's wire status).
    variant_event_types: tuple[str, ...] = ()

    def sends(self, event_type: str) -> bool:
        return event_type in self.event_types or event_type in self.variant_event_types


_TYPES = (
    DeviceType("temperature", "102067", ("temperature", *_SENSOR_COMMON), ("probeWireStatus",)),
    DeviceType("proximity", "102064", ("objectPresent", *_SENSOR_COMMON)),
    DeviceType("touch", "100110", _SENSOR_COMMON),
    DeviceType("humidity", "101895", ("humidity", *_SENSOR_COMMON)),
    DeviceType("proximityCounter", "101730", ("objectPresentCount", *_SENSOR_COMMON)),
    DeviceType("touchCounter", "101675", ("touchCount", *_SENSOR_COMMON)),
    DeviceType("waterDetector", "101714", ("waterPresent", *_SENSOR_COMMON)),
    DeviceType("co2", "", ("co2", "pressure", "humidity", *_SENSOR_COMMON)),
    DeviceType("motion", "", ("motion", *_SENSOR_COMMON)),
    DeviceType("deskOccupancy", "", ("deskOccupancy", *_SENSOR_COMMON)),
    DeviceType("contact", "", ("contact", *_SENSOR_COMMON)),
    DeviceType("ccon", "100011", ("connectionStatus", "ethernetStatus", "cellularStatus", "touch")),
)

DEVICE_TYPES: dict[str, DeviceType] = {device_type.name: device_type for device_type in _TYPES}
DEVICE_TYPE_NAMES: frozenset[str] = frozenset(DEVICE_TYPES)
