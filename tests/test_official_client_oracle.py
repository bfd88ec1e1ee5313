"""DT's official client (disruptive 1.7.3), which nobody here wrote, against the emulator.

It authenticates with the JWT-bearer grant, lists devices with label filters, reads history and
streams with each filter, parsing everything into its own event classes without a warning.
"""

from __future__ import annotations

import logging
import queue
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import disruptive
import pytest

from benchmarks.official import use_official_client
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.event_types import LABELS_CHANGED
from tap_disruptive.testing import wait_until
from tests.support.emulators import StartEmulator

pytestmark = pytest.mark.e2e

# The official client's class for each event type.
EVENT_CLASSES = {
    "touch": "Touch",
    "temperature": "Temperature",
    "objectPresent": "ObjectPresent",
    "humidity": "Humidity",
    "objectPresentCount": "ObjectPresentCount",
    "touchCount": "TouchCount",
    "waterPresent": "WaterPresent",
    "networkStatus": "NetworkStatus",
    "batteryStatus": "BatteryStatus",
    "labelsChanged": "LabelsChanged",
    "connectionStatus": "ConnectionStatus",
    "ethernetStatus": "EthernetStatus",
    "cellularStatus": "CellularStatus",
    "co2": "Co2",
    "pressure": "Pressure",
    "motion": "Motion",
    "deskOccupancy": "DeskOccupancy",
    "contact": "Contact",
    "probeWireStatus": "ProbeWireStatus",
}


# Stream threads of finished tests: the official client cannot be stopped, so they retry until they give
# up after their emulator is gone; what they log then belongs to no test.
_RETIRED_THREADS: set[int] = set()
_STREAM_THREADS: list[threading.Thread] = []


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread not in _RETIRED_THREADS:
            self.records.append(record)


@pytest.fixture
def official_client() -> Iterator[RecordingHandler]:
    """Point the official client at whatever emulator the test configures, and record its warnings."""
    saved = (disruptive.base_url, disruptive.emulator_base_url, disruptive.default_auth)
    logger = logging.getLogger("disruptive")
    saved_level = logger.level
    handler = RecordingHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield handler
    _RETIRED_THREADS.update(thread.ident for thread in _STREAM_THREADS if thread.ident is not None)
    logger.removeHandler(handler)
    logger.setLevel(saved_level)
    disruptive.base_url, disruptive.emulator_base_url, disruptive.default_auth = saved


def use(emulator: EmulatorProcess) -> None:
    use_official_client(emulator)


def assert_parsed(event: Any) -> None:
    assert type(event.data).__name__ == EVENT_CLASSES[event.event_type], event.event_type


class StreamCollector:
    """Runs the official client's event_stream in a thread and collects what it yields."""

    def __init__(self, project_id: str, **filters: Any) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(project_id, filters), daemon=True)
        self._thread.start()
        _STREAM_THREADS.append(self._thread)

    def _run(self, project_id: str, filters: dict[str, Any]) -> None:
        try:
            for event in disruptive.Stream.event_stream(project_id, **filters):
                self.events.put(event)
        except BaseException as error:  # recorded for the test to report
            self.failure = error

    def take(self, count: int, timeout: float = 15.0) -> list[Any]:
        taken = [self.events.get(timeout=timeout) for _ in range(count)]
        return taken


def connected(emulator: EmulatorProcess, streams: int) -> bool:
    return wait_until(lambda: emulator.status()["open_streams"] >= streams, timeout=15)


def test_authenticates_and_lists_devices_with_label_filters(
    official_client: RecordingHandler, shared_quiet_emulator: EmulatorProcess
) -> None:
    use(shared_quiet_emulator)
    devices = disruptive.Device.list_devices(shared_quiet_emulator.project_id)
    assert {device.device_type for device in devices} == set(DEVICE_TYPES)
    assert len(devices) == 24
    room = devices[0].labels["room"]
    in_room = disruptive.Device.list_devices(shared_quiet_emulator.project_id, label_filters={"room": room})
    assert {d.device_id for d in in_room} == {d.device_id for d in devices if d.labels["room"] == room}
    one = disruptive.Device.get_device(devices[2].device_id, shared_quiet_emulator.project_id)
    assert one.device_id == devices[2].device_id and one.labels == devices[2].labels
    assert official_client.records == []


def test_reads_pregenerated_history_of_every_event_type(
    official_client: RecordingHandler, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator("--rate", "0", "--history-span", "7200", "--history-interval", "60")
    use(emulator)
    seen: set[str] = set()
    for device in disruptive.Device.list_devices(emulator.project_id):
        history = disruptive.EventHistory.list_events(device.device_id, emulator.project_id)
        assert len(history) == 120  # one event a minute for two hours, over several pages
        for event in history:
            assert_parsed(event)
            seen.add(event.event_type)
        stamps = [event.data.timestamp for event in history]
        assert stamps == sorted(stamps, reverse=True)
    expected = {kind for device_type in DEVICE_TYPES.values() for kind in device_type.event_types}
    assert seen == expected
    assert official_client.records == []


def test_history_filters_by_type_and_time(
    official_client: RecordingHandler, quiet_emulator: EmulatorProcess
) -> None:
    use(quiet_emulator)
    device = disruptive.Emulator.create_device(quiet_emulator.project_id, "temperature", labels={"zone": "a"})
    for celsius in (1.5, 2.5, 3.5):
        disruptive.Emulator.publish_event(
            device.device_id, quiet_emulator.project_id, disruptive.events.Temperature(celsius=celsius)
        )
    disruptive.Emulator.publish_event(device.device_id, quiet_emulator.project_id, disruptive.events.Touch())
    assert wait_until(
        lambda: len(disruptive.EventHistory.list_events(device.device_id, quiet_emulator.project_id)) == 4
    )
    temperatures = disruptive.EventHistory.list_events(
        device.device_id, quiet_emulator.project_id, event_types=["temperature"]
    )
    assert [event.data.celsius for event in temperatures] == [3.5, 2.5, 1.5]
    later = disruptive.EventHistory.list_events(
        device.device_id,
        quiet_emulator.project_id,
        event_types=["temperature"],
        start_time=temperatures[1].data.timestamp,
    )
    assert [event.data.celsius for event in later] == [3.5, 2.5]
    assert official_client.records == []


def test_publishes_every_publishable_type_and_streams_them_back(
    official_client: RecordingHandler, quiet_emulator: EmulatorProcess
) -> None:
    use(quiet_emulator)
    project = quiet_emulator.project_id
    samples: dict[str, Any] = {
        "temperature": disruptive.events.Temperature(celsius=21.5),
        "humidity": disruptive.events.Humidity(celsius=22.0, relative_humidity=45.0),
        "objectPresent": disruptive.events.ObjectPresent(state="PRESENT"),
        "objectPresentCount": disruptive.events.ObjectPresentCount(total=12),
        "touchCount": disruptive.events.TouchCount(total=7),
        "waterPresent": disruptive.events.WaterPresent(state="PRESENT"),
        "networkStatus": disruptive.events.NetworkStatus(
            signal_strength=80,
            rssi=-60,
            transmission_mode="LOW_POWER_STANDARD_MODE",
            cloud_connectors=[disruptive.events.NetworkStatusCloudConnector("ccon1", 80, -60)],
        ),
        "batteryStatus": disruptive.events.BatteryStatus(percentage=90),
        "co2": disruptive.events.Co2(ppm=650),
        "pressure": disruptive.events.Pressure(pascal=101000),
        "motion": disruptive.events.Motion(state="MOTION_DETECTED"),
        "deskOccupancy": disruptive.events.DeskOccupancy(state="OCCUPIED"),
        "contact": disruptive.events.Contact(state="OPEN"),
        "connectionStatus": disruptive.events.ConnectionStatus(connection="ETHERNET", available=["ETHERNET"]),
        "touch": disruptive.events.Touch(),
    }
    owner = {
        "temperature": "temperature",
        "humidity": "humidity",
        "objectPresent": "proximity",
        "objectPresentCount": "proximityCounter",
        "touchCount": "touchCounter",
        "waterPresent": "waterDetector",
        "co2": "co2",
        "pressure": "co2",
        "motion": "motion",
        "deskOccupancy": "deskOccupancy",
        "contact": "contact",
        "connectionStatus": "ccon",
        "networkStatus": "temperature",
        "batteryStatus": "temperature",
        "touch": "touch",
    }
    collector = StreamCollector(project)
    assert connected(quiet_emulator, 1)
    for event_type, data in samples.items():
        device = disruptive.Emulator.create_device(project, owner[event_type])
        disruptive.Emulator.publish_event(device.device_id, project, data)
    received = collector.take(len(samples))
    assert [event.event_type for event in received] == list(samples)
    for event in received:
        assert_parsed(event)
    assert received[0].data.celsius == 21.5
    assert received[1].data.relative_humidity == 45.0
    assert received[2].data.state == "PRESENT"
    assert received[6].data.cloud_connectors[0].device_id == "ccon1"
    assert collector.failure is None
    assert official_client.records == []


FILTER_CASES: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "device_ids": lambda devices: {"device_ids": [devices["a"], devices["c"]]},
    "device_types": lambda devices: {"device_types": ["contact"]},
    "label_filters_value": lambda devices: {"label_filters": {"room": "lab"}},
    "label_filters_any": lambda devices: {"label_filters": {"alarm": None}},
    "event_types": lambda devices: {"event_types": ["touch"]},
    "combined": lambda devices: {"device_types": ["temperature"], "event_types": ["temperature"]},
}


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_streams_exactly_the_events_each_filter_selects(
    official_client: RecordingHandler, quiet_emulator: EmulatorProcess, case: str
) -> None:
    use(quiet_emulator)
    project = quiet_emulator.project_id
    devices = {
        "a": quiet_emulator.create_device("temperature", {"room": "lab", "alarm": "on"}),
        "b": quiet_emulator.create_device("temperature", {"room": "kitchen"}),
        "c": quiet_emulator.create_device("contact", {"room": "lab"}),
        "d": quiet_emulator.create_device("contact", {"room": "office", "alarm": "off"}),
    }
    filters = FILTER_CASES[case](devices)
    collector = StreamCollector(project, **filters)
    assert connected(quiet_emulator, 1)
    published: list[tuple[str, str]] = []
    for round_ in range(3):
        for name, device_id in devices.items():
            reading = "temperature" if name in "ab" else "contact"
            quiet_emulator.publish(device_id, reading, {"value": round_} if reading == "temperature" else {})
            quiet_emulator.publish(device_id, "touch")
            published += [(device_id, reading), (device_id, "touch")]
    # The ledger, filtered by the emulator, is what the official client must receive.
    params: dict[str, Any] = {}
    for key, value in filters.items():
        if key == "label_filters":
            params[key] = [k if v is None else f"{k}={v}" for k, v in value.items()]
        else:
            params[key] = value
    expected, _ = quiet_emulator.ledger(**params)
    assert 0 < len(expected) < len(published)
    received = collector.take(len(expected))
    assert [event.event_id for event in received] == [event["eventId"] for event in expected]
    # Nothing else arrives: the next event the client sees is a matching marker published last.
    marker_device = devices["a"] if case != "device_types" else devices["c"]
    marker_type = "touch" if case != "combined" else "temperature"
    quiet_emulator.publish(marker_device, marker_type, {"value": 99} if marker_type == "temperature" else {})
    (marker,) = collector.take(1)
    assert marker.device_id == marker_device and marker.event_type == marker_type
    for event in received:
        assert_parsed(event)
    assert official_client.records == []


def test_streams_label_changes(official_client: RecordingHandler, quiet_emulator: EmulatorProcess) -> None:
    use(quiet_emulator)
    project = quiet_emulator.project_id
    device = disruptive.Emulator.create_device(project, "motion", labels={"floor": "2"})
    collector = StreamCollector(project, event_types=[LABELS_CHANGED])
    assert connected(quiet_emulator, 1)
    disruptive.Device.set_label(device.device_id, project, key="floor", value="3")
    (event,) = collector.take(1)
    assert_parsed(event)
    assert event.data.modified == {"floor": "3"}
    assert official_client.records == []


def test_streams_simulated_sensors_of_every_type(
    official_client: RecordingHandler, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator("--rate", "400", "--history-span", "0", "--backfill-ratio", "0.2")
    use(emulator)
    collector = StreamCollector(emulator.project_id)
    received = collector.take(1500, timeout=30)
    for event in received:
        assert_parsed(event)
    kinds = {event.event_type for event in received}
    assert kinds >= {"temperature", "humidity", "networkStatus", "connectionStatus", "co2", "deskOccupancy"}
    assert any(event.event_type == "temperature" and event.data.is_backfilled for event in received)
    assert collector.failure is None
    assert official_client.records == []
