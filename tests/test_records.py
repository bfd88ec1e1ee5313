"""Records' columns: snake_case everywhere (DT's camelCase payload keys renamed, label keys kept as users
wrote them), the same record whichever of its two ways it is made, and labels as of when an event is read."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_disruptive.client.protocol.events import Event
from tap_disruptive.emulator.payloads import complete_published
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.devices import Device
from tap_disruptive.model.event_types import EVENT_TYPES, LABELS_CHANGED
from tap_disruptive.tap.columns import SCHEMAS, payload_keys, snake_case, snake_data, snake_data_json
from tap_disruptive.tap.records import DeviceRegistry, device_record
from tap_disruptive.testing import tap_config
from tests.support.emulators import QUIET, StartEmulator
from tests.support.tap_runs import records, run_tap

PROJECT = "c0project00000000000"
STAMP = "2026-01-02T03:04:05.123456Z"
NESTED_TYPES = sorted(name for name, spec in EVENT_TYPES.items() if spec.nested)
LABEL_CHANGE = {
    "added": {"roomName": "lab", "Floor": "2"},
    "modified": {"name": "Freezer"},
    "removed": ["oldKey"],
}
# Every digit one up, 9 to 1: numbers stay valid JSON (no leading zero), and the layout stays the same.
OTHER_DIGITS = bytes.maketrans(b"0123456789", b"1234567891")
_ids = itertools.count()


def make_event(event_type: str, text: bytes, device_id: str = "d1", at: str = STAMP) -> Event:
    return Event(f"c0event{next(_ids):013d}", event_type, f"projects/{PROJECT}/devices/{device_id}", at, text)


def registry(*devices: Device) -> DeviceRegistry:
    made = DeviceRegistry()
    made.load(devices or [Device(PROJECT, "d1", "temperature", {"name": "Fridge", "roomName": "lab"})])
    return made


def both_ways(events: list[Event]) -> list[dict[str, Any]]:
    """Each event's record made both ways, each way with its own registry; they must be equal."""
    as_dicts, as_text = registry(), registry()
    made = []
    for event in events:
        record = as_dicts.record(event)
        assert orjson.loads(as_text.record_json(event)) == record, event
        made.append(record)
    return made


def dt_payload(event_type: str) -> Any:
    """An event's `data` with every key DT sends for its type."""
    if event_type == LABELS_CHANGED:
        return LABEL_CHANGE
    return {event_type: complete_published(event_type, {}, STAMP)}


def keys(value: Any) -> set[str]:
    """Every object key in a JSON value, at any depth."""
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys(item)}
    return set()


def property_names(schema: dict[str, Any]) -> set[str]:
    names = set(schema.get("properties") or {})
    for inner in (schema.get("properties") or {}).values():
        names |= property_names(inner)
    if isinstance(schema.get("items"), dict):
        names |= property_names(schema["items"])
    return names


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("updateTime", "update_time"),
        ("objectPresentCount", "object_present_count"),
        ("isBackfilled", "is_backfilled"),
        ("co2", "co2"),
        ("macAddress", "mac_address"),
        ("HTTPStatus", "http_status"),
        ("deviceID", "device_id"),
        ("update_time", "update_time"),
        ("Ünïcode", "Ünïcode"),  # only ASCII capitals count, in the text as in the dict
    ],
)
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake
    assert snake_case(snake) == snake


@pytest.mark.parametrize("stream", ["events", "devices"])
def test_every_schema_property_is_snake_case(stream: str) -> None:
    names = property_names(json.loads((SCHEMAS / f"{stream}.json").read_text()))
    assert {"update_time", "sample_time", "relative_humidity", "object_present"} <= names
    assert [name for name in names if snake_case(name) != name] == []


def test_a_temperature_record() -> None:
    text = (
        b'{"temperature":{"value":-18.5,"updateTime":"2026-01-02T03:04:05.123456Z","samples":'
        b'[{"value":-18.5,"sampleTime":"2026-01-02T03:04:05.123456Z"}],"isBackfilled":false}}'
    )
    (record,) = both_ways([make_event("temperature", text)])
    assert record == {
        "event_id": record["event_id"],
        "event_type": "temperature",
        "timestamp": STAMP,
        "project_id": PROJECT,
        "device_id": "d1",
        "target_name": f"projects/{PROJECT}/devices/d1",
        "device_type": "temperature",
        "labels": {"name": "Fridge", "roomName": "lab"},
        "data": {
            "temperature": {
                "value": -18.5,
                "update_time": STAMP,
                "samples": [{"value": -18.5, "sample_time": STAMP}],
                "is_backfilled": False,
            }
        },
    }


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_both_ways_make_the_same_snake_case_record_of_every_event_type(event_type: str) -> None:
    data = dt_payload(event_type)
    compact = orjson.dumps(data)
    texts = [
        compact,
        compact,  # its layout seen twice: kept
        compact,  # and used
        compact.translate(OTHER_DIGITS),  # the same layout with other readings
        json.dumps(data).encode(),  # a space after each colon
        json.dumps(data, indent=2).encode(),
        json.dumps(data, separators=(",", " : ")).encode(),  # a space before each colon
    ]
    made = both_ways([make_event(event_type, text) for text in texts])
    for text, record in zip(texts, made, strict=True):
        assert record["data"] == snake_data(event_type, orjson.loads(text))
        # (co2's key is co3 with the digits changed)
        payload = record["data"] if event_type == LABELS_CHANGED else next(iter(record["data"].values()))
        named = keys(payload) - keys(LABEL_CHANGE["added"]) - keys(LABEL_CHANGE["modified"])
        assert named and all(snake_case(key) == key for key in named)
    if event_type != LABELS_CHANGED:
        # DT's own text is renamed in place, not decoded: the fast path holds for every type.
        assert snake_data_json(event_type, compact) == orjson.dumps(made[0]["data"])


def test_the_schema_names_every_key_dt_sends() -> None:
    schema = json.loads((SCHEMAS / "events.json").read_text())["properties"]["data"]
    for event_type in EVENT_TYPES:
        data = snake_data(event_type, dt_payload(event_type))
        if event_type == LABELS_CHANGED:
            assert set(data) <= set(schema["properties"])
            continue
        (key,) = data
        assert set(data[key]) <= set(schema["properties"][key]["properties"]), event_type


def test_label_keys_are_kept_as_users_wrote_them() -> None:
    device = Device(PROJECT, "d1", "temperature", {"updateTime": "user data", "name": "Fridge"})
    as_dicts, as_text = registry(device), registry(device)
    for made in (as_dicts, as_text):
        change = make_event(LABELS_CHANGED, orjson.dumps(LABEL_CHANGE))
        later = make_event("touch", b'{"touch":{"updateTime":"2026-01-02T03:04:05.123456Z"}}')
        records_ = (
            [made.record(change), made.record(later)]
            if made is as_dicts
            else [orjson.loads(made.record_json(change)), orjson.loads(made.record_json(later))]
        )
        assert records_[0]["data"] == LABEL_CHANGE
        assert records_[1]["labels"] == {
            "updateTime": "user data",
            "name": "Freezer",
            "roomName": "lab",
            "Floor": "2",
        }
        assert records_[1]["data"] == {"touch": {"update_time": STAMP}}


@pytest.mark.parametrize(
    ("event_type", "text", "data"),
    [
        # A key newer than the schema.
        (
            "touch",
            b'{"touch":{"updateTime":"t","tapStrength":3}}',
            {"touch": {"update_time": "t", "tap_strength": 3}},
        ),
        # A type newer than the model.
        ("smellLevel", b'{"smellLevel":{"ppbValue":7}}', {"smell_level": {"ppb_value": 7}}),
        ("smellLevel", b'{"smell":{"ppb":7}}', {"smell": {"ppb": 7}}),
        # Escapes: in a value, and in a key (`\u0054` is T).
        (
            "contact",
            b'{"contact":{"state":"OP\\"EN","updateTime":"t"}}',
            {"contact": {"state": 'OP"EN', "update_time": "t"}},
        ),
        ("contact", b'{"contact":{"update\\u0054ime":"t"}}', {"contact": {"update_time": "t"}}),
        # A value that looks like a key.
        (
            "contact",
            b'{"contact":{"state":"\\"updateTime\\":","updateTime":"t"}}',
            {"contact": {"state": '"updateTime":', "update_time": "t"}},
        ),
        # A key with a digit and a capital, and keys with colons.
        ("co2", b'{"co2":{"ppm2Max":1,"a:B":2}}', {"co2": {"ppm2_max": 1, "a:b": 2}}),
        ("co2", b'{"co2":{"aB:":3}}', {"co2": {"a_b:": 3}}),
        # No data.
        ("touch", b"null", None),
    ],
)
def test_text_that_cannot_be_renamed_in_place_is_renamed_all_the_same(
    event_type: str, text: bytes, data: Any
) -> None:
    for record in both_ways([make_event(event_type, text) for _ in range(3)]):
        assert record["data"] == data


@pytest.mark.parametrize(
    ("event_type", "text"),
    [
        # A part without digits, kept in the layout's template: a `%` in it is no format.
        ("contact", b'{"contact":{"state":"%% %b OPEN","updateTime":"2026-01-02T03:04:05.123456Z"}}'),
        ("contact", b'{"contact":{"state":"%s","updateTime":"%d"}}'),  # no digit anywhere: nothing to cut
        (
            "temperature",
            b'{"temperature":{"value":0.0,"updateTime":"t","samples":[{"value":20,"sampleTime":"t"}]}}',
        ),
    ],
)
def test_texts_of_one_layout_are_renamed_alike(event_type: str, text: bytes) -> None:
    texts = [
        text,
        text,
        text,
        text.translate(OTHER_DIGITS),
        text.translate(OTHER_DIGITS).translate(OTHER_DIGITS),
    ]
    keys_of = payload_keys(event_type)
    assert keys_of is not None
    for each in texts:  # the layout is kept at the second text, and used from the third on
        renamed = keys_of.rename(each)
        assert renamed is not None and orjson.loads(renamed) == snake_data(event_type, orjson.loads(each))
    both_ways([make_event(event_type, each) for each in texts])


JSON_KEYS = st.sampled_from(
    [
        "updateTime",
        "sampleTime",
        "isBackfilled",
        "value",
        "state",
        "fooBar",
        "HTTPCode",
        "a1B",
        "x_y",
        "Ünï",
        ":aB",
        "",
    ]
) | st.text(max_size=6)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(-1e99, 1e99)  # two-digit exponents: other digits keep them finite
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from([*NESTED_TYPES, LABELS_CHANGED, "smellLevel"]),
    payload=JSON_VALUES,
    nested=st.booleans(),
    form=st.sampled_from(["compact", "spaced", "space before colon", "ascii escapes"]),
)
def test_both_ways_agree_on_any_payload(event_type: str, payload: Any, nested: bool, form: str) -> None:
    data = {event_type: payload} if nested else payload
    if form == "compact":
        text = orjson.dumps(data)
        texts = [text, text, text, text.translate(OTHER_DIGITS), text.translate(OTHER_DIGITS)]
    else:
        dumped = {
            "spaced": json.dumps(data, ensure_ascii=False),
            "space before colon": json.dumps(data, ensure_ascii=False, separators=(",", " : ")),
            "ascii escapes": json.dumps(data),
        }[form]
        texts = [dumped.encode()] * 3
    for text, record in zip(texts, both_ways([make_event(event_type, text) for text in texts]), strict=True):
        assert record["data"] == snake_data(event_type, orjson.loads(text))
    keys_of = payload_keys(event_type)
    if keys_of is not None:
        renamed = keys_of.rename(texts[0])
        assert renamed is None or orjson.loads(renamed) == snake_data(event_type, orjson.loads(texts[0]))


def test_labels_follow_label_changes_in_the_order_they_are_read() -> None:
    fridge = Device(PROJECT, "d1", "temperature", {"name": "Fridge", "site": "oslo"})
    other = Device(PROJECT, "d2", "temperature", {"name": "Other"})
    reading = b'{"temperature":{"value":4.5,"updateTime":"2026-01-02T03:04:05.123456Z"}}'
    change = {"added": {"floor": "2"}, "modified": {"name": "Freezer"}, "removed": ["site"]}
    older_change = {"added": {}, "modified": {"name": "Stale"}, "removed": []}
    events = [
        make_event("temperature", reading, at="2026-01-02T10:00:00.000000Z"),
        make_event(LABELS_CHANGED, orjson.dumps(change), at="2026-01-02T11:00:00.000000Z"),
        make_event("temperature", reading, at="2026-01-02T12:00:00.000000Z"),
        # Read after the change, from history: the labels as they are when it is read.
        make_event("temperature", reading, at="2026-01-02T09:00:00.000000Z"),
        # A change older than the one applied, read late: not replayed over it.
        make_event(LABELS_CHANGED, orjson.dumps(older_change), at="2026-01-02T10:30:00.000000Z"),
        make_event("temperature", reading, at="2026-01-02T13:00:00.000000Z"),
        make_event("temperature", reading, device_id="d2", at="2026-01-02T13:00:00.000000Z"),
        make_event("temperature", reading, device_id="unlisted", at="2026-01-02T13:00:00.000000Z"),
    ]
    old, new = {"name": "Fridge", "site": "oslo"}, {"name": "Freezer", "floor": "2"}
    expected = [old, new, new, new, new, new, {"name": "Other"}, None]
    as_dicts, as_text = registry(fridge, other), registry(fridge, other)
    assert [as_dicts.record(event)["labels"] for event in events] == expected
    assert [orjson.loads(as_text.record_json(event))["labels"] for event in events] == expected
    # Records already made keep the labels they were made with.
    as_dicts = registry(fridge)
    first = as_dicts.record(events[0])
    as_dicts.record(events[1])
    assert first["labels"] == old


def test_a_device_record_is_snake_case_but_its_labels() -> None:
    reported = {
        "temperature": {"value": 4.5, "updateTime": STAMP, "samples": [{"value": 4.5, "sampleTime": STAMP}]},
        "networkStatus": {"signalStrength": 80, "cloudConnectors": [{"id": "c", "signalStrength": 80}]},
        "connectionLatency": None,
    }
    device = Device(PROJECT, "d1", "temperature", {"roomName": "lab"}, "102058", reported)
    record = device_record(device)
    assert record["labels"] == {"roomName": "lab"}
    assert record["reported"] == {
        "temperature": {
            "value": 4.5,
            "update_time": STAMP,
            "samples": [{"value": 4.5, "sample_time": STAMP}],
        },
        "network_status": {"signal_strength": 80, "cloud_connectors": [{"id": "c", "signal_strength": 80}]},
        "connection_latency": None,
    }
    assert device.reported is not None and "updateTime" in device.reported["temperature"]  # not edited


@pytest.mark.e2e
def test_flattened_columns_are_snake_case(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emulator = start_emulator(*QUIET)
    published = set()
    for device_type in DEVICE_TYPES.values():
        device_id = emulator.create_device(device_type.name, {"roomName": "lab"})
        for event_type in (*device_type.event_types, *device_type.variant_event_types):
            if event_type not in published:
                emulator.publish(device_id, event_type)
                published.add(event_type)
    time.sleep(0.5)  # indexed into history
    config = tap_config(emulator, live=False, start_date="2000-01-01T00:00:00Z")
    plain = run_tap(config, tmp_path)
    flat = run_tap({**config, "flattening_enabled": True, "flattening_max_depth": 3}, tmp_path)
    assert plain.returncode == 0 and flat.returncode == 0, flat.stderr[-2000:]
    by_id = {record["event_id"]: record for record in records(plain.stdout)}
    assert {record["event_type"] for record in by_id.values()} == published
    columns = {column for record in records(flat.stdout) for column in record}
    assert {
        "data__temperature__update_time",
        "data__object_present__state",
        "data__humidity__relative_humidity",
    } <= columns
    assert [column for column in columns if snake_case(column) != column] == []
    for record in records(flat.stdout):
        event_type = snake_case(by_id[record["event_id"]]["event_type"])
        assert (
            record[f"data__{event_type}__update_time"]
            == by_id[record["event_id"]]["data"][event_type]["update_time"]
        )
