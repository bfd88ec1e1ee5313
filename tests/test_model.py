"""DT's shared model: ids, timestamps, and the emulator's templated payloads."""

from __future__ import annotations

import base64
import json
import random
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_disruptive.emulator.sensor_state import SensorState
from tap_disruptive.model.device_types import DEVICE_TYPES
from tap_disruptive.model.event_types import EVENT_TYPES
from tap_disruptive.model.ids import ID_PATTERN, IdFactory, id_seconds, split_target_name
from tap_disruptive.model.times import format_timestamp, parse_timestamp, stamp_and_seconds


@given(
    second=st.integers(min_value=0, max_value=2**32 - 1),
    machine=st.binary(min_size=3, max_size=3),
    pid=st.integers(min_value=0, max_value=2**16 - 1),
    start=st.integers(min_value=0, max_value=2**24 - 1),
    count=st.integers(min_value=1, max_value=5),
)
def test_ids_are_xids_as_rs_xid_encodes_them(
    second: int, machine: bytes, pid: int, start: int, count: int
) -> None:
    factory = IdFactory(machine=machine, pid=pid, start=start)
    made = factory.new_ids(second + 0.5, count)
    for offset, xid in enumerate(made):
        counter = (start + offset) & 0xFFFFFF
        raw = struct.pack(">I", second) + machine + struct.pack(">H", pid) + counter.to_bytes(3, "big")
        assert xid == base64.b32hexencode(raw)[:20].decode().lower()
        assert ID_PATTERN.match(xid)
        assert id_seconds(xid) == second


def test_ids_decode_real_dt_fixtures() -> None:
    # An event id and its timestamp from DT's public fixtures: the id embeds the event's second.
    assert id_seconds("c82gg9catj3vmh4248og") == int(
        datetime(2022, 2, 10, 12, 42, 13, tzinfo=UTC).timestamp()
    )


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_stamps_read_back_as_the_seconds_beside_them(seconds: float) -> None:
    stamp, rounded = stamp_and_seconds(seconds)
    assert stamp.endswith("Z") and len(stamp) == 27
    assert parse_timestamp(stamp).timestamp() == rounded
    assert abs(rounded - seconds) <= 0.5e-6 + 1e-9 * seconds
    assert format_timestamp(rounded) == stamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-04-21T08:15:43.512330Z", datetime(2021, 4, 21, 8, 15, 43, 512330, tzinfo=UTC)),
        ("2021-04-21T08:15:43.543486780Z", datetime(2021, 4, 21, 8, 15, 43, 543486, tzinfo=UTC)),
        ("2021-04-21T08:15:43Z", datetime(2021, 4, 21, 8, 15, 43, tzinfo=UTC)),
        ("2021-04-21T10:15:43.5+02:00", datetime(2021, 4, 21, 8, 15, 43, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps_parse_with_any_fraction_and_offset(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["2021-04-21 08:15:43Z", "2021-04-21T08:15:43", "yesterday", ""])
def test_bad_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(text)


def test_target_names() -> None:
    assert split_target_name("projects/p1/devices/d1") == ("p1", "d1")
    assert split_target_name("projects/p1") == ("p1", None)
    for bad in ("projects/", "devices/d1", "projects/p1/devices/", "projects/p1/things/d1"):
        with pytest.raises(ValueError, match="target name"):
            split_target_name(bad)


@pytest.mark.parametrize("event_type", sorted({t for d in DEVICE_TYPES.values() for t in d.event_types}))
def test_templated_payloads_are_json_with_every_required_key(event_type: str) -> None:
    state = SensorState(random.Random(3), ["c0ccon00000000000000"])
    stamp = format_timestamp(1_700_000_000.25)
    for backfilled in (False, True):
        payload = json.loads(state.payload_json(event_type, stamp, backfilled))
        assert set(payload) >= set(EVENT_TYPES[event_type].required_keys)
        assert payload["updateTime"] == stamp
        if "isBackfilled" in payload:
            assert payload["isBackfilled"] is backfilled


def test_simulated_counters_only_grow() -> None:
    state = SensorState(random.Random(5), [])
    stamp = format_timestamp(1_700_000_000.0)
    totals = [json.loads(state.payload_json("touchCount", stamp))["total"] for _ in range(200)]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)
