"""The stream decoder never raises on input and never loses a complete valid event line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_disruptive.client.protocol.decoding import BadLine, Ping, StreamDecoder, StreamError, parse_line
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.model.times import canonical_timestamp


def event_line(index: int, event_type: str = "touch") -> bytes:
    event = {
        "eventId": f"c0event{index:013d}",
        "targetName": f"projects/p1/devices/d{index % 7}",
        "eventType": event_type,
        "data": {event_type: {"updateTime": "2026-01-02T03:04:05.123456Z"}},
        "timestamp": "2026-01-02T03:04:05.123456Z",
    }
    return json.dumps({"result": {"event": event}}).encode()


PING = (
    b'{"result":{"event":{"eventId":"c0ping","targetName":"projects/p1","eventType":"ping","data":null,'
    b'"timestamp":"2026-01-02T03:04:05.000001Z"}}}'
)
JUNK = [
    b"",
    b"not json at all",
    b"<html><body>502 Bad Gateway</body></html>",
    b'{"error":{"code":14,"message":"unavailable","details":[]}}',
    b'{"error":{"grpcCode":1,"httpCode":408,"message":"closing stream","httpStatus":"Request Timeout"}}',
    b'{"error":"unauthenticated","code":401,"help":"https://docs.d21s.com/error/#401"}',
    b'{"result":{}}',
    b'{"result":{"event":{"eventId":"x"}}}',
    b"[1, 2, 3]",
    b'{"unexpected": true}',
    b"\xff\xfe\x00 bytes that are not utf-8",
    PING,
]


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def decode(pieces: list[bytes], sse: bool) -> list[object]:
    decoder = StreamDecoder(sse=sse)
    items: list[object] = []
    for piece in pieces:
        items += decoder.feed(piece)
    return items + decoder.finish()


@settings(max_examples=300)
@given(
    data=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
    sse=st.booleans(),
)
def test_never_raises_on_arbitrary_bytes(data: bytes, cuts: list[int], sse: bool) -> None:
    items = decode(chunked(data, cuts), sse)
    assert all(isinstance(item, Event | Ping | StreamError | BadLine) for item in items)


@settings(max_examples=300)
@given(
    plan=st.lists(st.one_of(st.integers(min_value=0, max_value=10**6), st.sampled_from(JUNK)), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=10**5), max_size=30),
    sse=st.booleans(),
    crlf=st.booleans(),
)
def test_every_complete_event_line_comes_through_in_order(
    plan: list[int | bytes], cuts: list[int], sse: bool, crlf: bool
) -> None:
    newline = b"\r\n" if crlf else b"\n"
    lines = [event_line(entry) if isinstance(entry, int) else entry for entry in plan]
    if sse:
        # Each message is `data: <line>` and a blank line; junk goes in bare, as a broken server might.
        wire = b"".join(
            (b"data: " + line + newline + newline) if isinstance(entry, int) else (line + newline)
            for entry, line in zip(plan, lines, strict=True)
        )
    else:
        wire = b"".join(line + newline for line in lines)
    items = decode(chunked(wire, cuts), sse)
    got = [item.event_id for item in items if isinstance(item, Event)]
    expected = [f"c0event{entry:013d}" for entry in plan if isinstance(entry, int)]
    assert got == expected


def test_each_line_is_reported_as_what_it_is() -> None:
    decoder = StreamDecoder()
    wire = (
        b"\n".join([event_line(1), b"", b"garbage", PING, *JUNK[3:6], event_line(2, "brandNewType")]) + b"\n"
    )
    items = decoder.feed(wire)
    kinds = [type(item).__name__ for item in items]
    assert kinds == [
        "Event",
        "BadLine",
        "BadLine",
        "Ping",
        "StreamError",
        "StreamError",
        "StreamError",
        "Event",
    ]
    assert [item.kind for item in items if isinstance(item, BadLine)] == ["blank", "not_json"]
    errors = [item for item in items if isinstance(item, StreamError)]
    assert [(e.status, e.shape) for e in errors] == [(503, "code"), (408, "grpcCode"), (401, "text")]
    unknown = items[-1]
    assert isinstance(unknown, Event) and unknown.event_type == "brandNewType" and not unknown.known_type


def test_a_line_cut_by_the_end_of_the_stream_is_reported_truncated() -> None:
    decoder = StreamDecoder()
    line = event_line(3)
    assert decoder.feed(line[:40]) == []
    assert decoder.feed(line[40:70]) == []
    (item,) = decoder.finish()
    assert isinstance(item, BadLine) and item.kind == "truncated"


def test_a_huge_line_is_skipped_not_buffered_forever() -> None:
    decoder = StreamDecoder(max_line_bytes=1000)
    items = (
        decoder.feed(b"x" * 1500) + decoder.feed(b"y" * 1500) + decoder.feed(b"\n" + event_line(4) + b"\n")
    )
    assert [type(item).__name__ for item in items] == ["BadLine", "Event"]
    assert isinstance(items[0], BadLine) and items[0].kind == "too_long"


@pytest.mark.parametrize(
    ("stamp", "canonical"),
    [
        ("2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.123456Z"),
        ("2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05.123456Z"),
        ("2026-01-02T05:04:05.5+02:00", "2026-01-02T03:04:05.500000Z"),
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000Z"),
    ],
)
def test_event_timestamps_are_made_canonical(stamp: str, canonical: str) -> None:
    line = event_line(5).replace(b'2026-01-02T03:04:05.123456Z"}', stamp.encode() + b'"}')
    item = parse_line(line)
    assert isinstance(item, Event) and item.timestamp == canonical


def test_malformed_events_are_reported_with_the_reason() -> None:
    bad_target = parse_line(event_line(6).replace(b"projects/p1/devices/d6", b"nonsense"))
    assert isinstance(bad_target, BadLine) and bad_target.kind == "malformed_event"
    assert "target" in bad_target.excerpt
    bad_time = parse_line(
        event_line(6).replace(b'"timestamp": "2026-01-02T03:04:05.123456Z"', b'"timestamp": 5')
    )
    assert isinstance(bad_time, BadLine) and "timestamp" in bad_time.excerpt


@pytest.mark.parametrize(
    "stamp",
    ["2026-11-28T25:61:00.000000Z", "2026-02-30T10:00:00.000000Z", "2026-11-28T10:00:00.12345xZ", "tomorrow"],
)
def test_an_impossible_timestamp_makes_a_bad_line_not_a_crash(stamp: str) -> None:
    line = event_line(7).replace(
        b'"timestamp": "2026-01-02T03:04:05.123456Z"', f'"timestamp": "{stamp}"'.encode()
    )
    item = parse_line(line)
    assert isinstance(item, BadLine) and item.kind == "malformed_event"
    assert "timestamp" in item.excerpt


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-01-02T03:04:05.654321Z",
        "2026-01-02T03:04:05.12345xZ",
        "2026-01-02T03:04:05.123456",
        "2026-01-02T03:04:05.1234567Z",
        "2026-01-02T03:04:05.123456Z ",
        "2026-01-02T03:04:05.12345\u0663Z",  # an Arabic-Indic digit, a digit to str.isdigit
        "2026-01-02T03:04:05.",
        "2026-01-02T03:04:05",
    ],
)
def test_a_stamp_in_a_second_already_seen_is_checked_all_the_same(stamp: str) -> None:
    try:
        expected: str | None = canonical_timestamp(stamp)
    except ValueError:
        expected = None
    seen = event_line(8)  # its second, 2026-01-02T03:04:05, is known good from here on
    line = event_line(9).replace(
        b'"timestamp": "2026-01-02T03:04:05.123456Z"', b'"timestamp": ' + json.dumps(stamp).encode()
    )
    assert line != event_line(9)
    for item in (StreamDecoder().feed(seen + b"\n" + line + b"\n")[1], parse_line(line)):
        if expected is None:
            assert isinstance(item, BadLine) and item.kind == "malformed_event"
        else:
            assert isinstance(item, Event) and item.timestamp == expected
