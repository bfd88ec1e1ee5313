"""The emulator's stream: wire format, SSE, pings, filters, and every fault it can inject."""

from __future__ import annotations

import json
import queue
import time

import pytest
import requests

from tap_disruptive.emulator.faults import FAULT_KINDS
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.ids import ID_PATTERN
from tap_disruptive.testing import wait_until
from tests.support.emulators import StartEmulator
from tests.support.stream_reader import LineReader, open_stream


def stream_url(emulator: EmulatorProcess, device_id: str | None = None) -> str:
    base = f"{emulator.api_url}/projects/{emulator.project_id}/devices"
    return f"{base}/{device_id}:stream" if device_id else f"{base}:stream"


def connect(emulator: EmulatorProcess, sse: bool = False, **params: object) -> LineReader:
    before = emulator.status()["connections_served"]
    reader = open_stream(emulator.http, stream_url(emulator), {"ping_interval": "200ms", **params}, sse=sse)
    assert wait_until(lambda: emulator.status()["connections_served"] > before)
    return reader


def event_of(obj: dict[str, object]) -> dict[str, object]:
    event = obj["result"]["event"]  # type: ignore[index]
    assert isinstance(event, dict)
    return event


def test_ndjson_lines_pings_and_events(quiet_emulator: EmulatorProcess) -> None:
    device_id = quiet_emulator.create_device("touch")
    reader = connect(quiet_emulator)
    assert reader.response.headers["Content-Type"].startswith("application/json")
    assert reader.response.headers["Transfer-Encoding"] == "chunked"
    ping = json.loads(reader.next_line())
    ping_event = event_of(ping)
    assert ping_event["eventType"] == "ping"
    assert ping_event["targetName"] == f"projects/{quiet_emulator.project_id}"
    assert ping_event["data"] is None
    assert ID_PATTERN.match(str(ping_event["eventId"]))
    quiet_emulator.publish(device_id, "touch")
    event = event_of(reader.next_event())
    assert event["targetName"] == f"projects/{quiet_emulator.project_id}/devices/{device_id}"
    assert event["eventType"] == "touch"
    assert list(event) == ["eventId", "targetName", "eventType", "data", "timestamp"]


def test_no_blank_lines_in_ndjson(start_emulator: StartEmulator) -> None:
    emulator = start_emulator("--rate", "2000", "--history-span", "0")
    reader = connect(emulator)
    lines = [reader.next_line() for _ in range(3000)]
    assert all(line.strip() for line in lines)
    assert all("result" in json.loads(line) for line in lines)


def test_server_sent_events_mode(quiet_emulator: EmulatorProcess) -> None:
    device_id = quiet_emulator.create_device("contact")
    response = quiet_emulator.http.get(
        stream_url(quiet_emulator),
        params={"ping_interval": "5s"},
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=10,
    )
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert wait_until(lambda: quiet_emulator.status()["open_streams"] == 1)
    quiet_emulator.publish(device_id, "contact", {"state": "CLOSED"})
    raw = b""
    chunks = response.iter_content(chunk_size=None)
    while not raw.endswith(b"\n\n"):
        raw += next(chunks)
    response.close()
    assert raw.startswith(b"data: {")
    event = event_of(json.loads(raw[len(b"data: ") :].strip()))
    assert event["data"] == {"contact": {"state": "CLOSED", "updateTime": event["timestamp"]}}


def test_device_stream_endpoint_carries_one_device(quiet_emulator: EmulatorProcess) -> None:
    mine = quiet_emulator.create_device("touch")
    other = quiet_emulator.create_device("touch")
    reader = open_stream(quiet_emulator.http, stream_url(quiet_emulator, mine), {"ping_interval": "1s"})
    assert wait_until(lambda: quiet_emulator.status()["open_streams"] == 1)
    quiet_emulator.publish(other, "touch")
    quiet_emulator.publish(mine, "touch")
    assert str(event_of(reader.next_event())["targetName"]).endswith(mine)


def test_label_filters_follow_label_changes(quiet_emulator: EmulatorProcess) -> None:
    device_id = quiet_emulator.create_device("touch", {"zone": "a"})
    reader = connect(quiet_emulator, label_filters="zone=b")
    quiet_emulator.publish(device_id, "touch")
    quiet_emulator.set_labels(device_id, {"zone": "b"})
    quiet_emulator.publish(device_id, "touch")
    first, second = event_of(reader.next_event()), event_of(reader.next_event())
    assert first["eventType"] == "labelsChanged"
    assert second["eventType"] == "touch"


# --- faults on an open stream --------------------------------------------------------------------------


def publish_touches(emulator: EmulatorProcess, device_id: str, count: int) -> None:
    for _ in range(count):
        emulator.publish(device_id, "touch")


def test_cut_mid_chunk_breaks_the_connection(quiet_emulator: EmulatorProcess) -> None:
    device_id = quiet_emulator.create_device("touch")
    reader = connect(quiet_emulator)
    assert quiet_emulator.inject("cut", after_events=2)["open_streams_hit"] == 1
    publish_touches(quiet_emulator, device_id, 4)
    assert reader.next_event()["result"]["event"]["eventType"] == "touch"
    assert reader.next_event()["result"]["event"]["eventType"] == "touch"
    ended = reader.wait_end()
    assert isinstance(ended, requests.exceptions.ChunkedEncodingError), ended
    # The two events after the cut are lost to this connection but kept in the ledger and history.
    events, _ = quiet_emulator.ledger(device_ids=device_id)
    assert len(events) == 4


def test_clean_end_of_body(quiet_emulator: EmulatorProcess) -> None:
    reader = connect(quiet_emulator)
    quiet_emulator.inject("end")
    assert reader.wait_end() == "clean end"


@pytest.mark.parametrize(
    ("kind", "shape"),
    [
        ("error", {"code", "message", "details"}),
        ("error_v1", {"grpcCode", "httpCode", "message", "httpStatus"}),
    ],
)
def test_error_line_then_end(quiet_emulator: EmulatorProcess, kind: str, shape: set[str]) -> None:
    reader = connect(quiet_emulator)
    quiet_emulator.inject(kind)
    while True:
        obj = json.loads(reader.next_line())
        if "error" in obj:
            break
    assert shape <= set(obj["error"])
    assert reader.wait_end() == "clean end"


@pytest.mark.parametrize(("kind", "check"), [("blank", lambda line: line == ""), ("garbage", None)])
def test_bad_lines_then_the_stream_goes_on(quiet_emulator: EmulatorProcess, kind: str, check: object) -> None:
    device_id = quiet_emulator.create_device("touch")
    reader = connect(quiet_emulator)
    quiet_emulator.inject(kind, after_events=1)
    publish_touches(quiet_emulator, device_id, 2)
    lines: list[str] = []
    while len([line for line in lines if '"touch"' in line]) < 2:
        lines.append(reader.next_line())
    bad = [line for line in lines if not line.startswith('{"result"')]
    assert len(bad) == 1
    if kind == "blank":
        assert bad == [""]
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad[0])
    assert lines.index(bad[0]) < max(i for i, line in enumerate(lines) if '"touch"' in line)


def test_stall_sends_nothing_then_drops(quiet_emulator: EmulatorProcess) -> None:
    device_id = quiet_emulator.create_device("touch")
    reader = connect(quiet_emulator)
    reader.next_line()  # a ping: the connection is live
    quiet_emulator.inject("stall", seconds=1.5)
    while not reader.lines.empty():
        reader.lines.get_nowait()
    publish_touches(quiet_emulator, device_id, 3)
    ended = reader.wait_end()
    assert isinstance(ended, requests.RequestException | str)
    # Pings every 200 ms would have arrived during 1.5 s; a stalled connection sends nothing at all.
    leftovers = []
    while True:
        try:
            leftovers.append(reader.lines.get_nowait())
        except queue.Empty:
            break
    # At most the one ping already in flight when the fault arrived; no event and no later ping.
    assert len(leftovers) <= 1
    assert not any('"touch"' in line for line in leftovers)
    events, _ = quiet_emulator.ledger(device_ids=device_id)
    assert len(events) == 3


def test_a_fault_waits_for_the_next_stream_when_none_is_open(quiet_emulator: EmulatorProcess) -> None:
    assert quiet_emulator.inject("end")["open_streams_hit"] == 0
    reader = connect(quiet_emulator)
    assert reader.wait_end() == "clean end"
    again = connect(quiet_emulator)
    assert json.loads(again.next_line())["result"]["event"]["eventType"] == "ping"


# --- HTTP answers on the next connects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "content_type"),
    [(503, "application/json"), (429, "application/json"), (401, "application/json"), (502, "text/html")],
)
def test_http_faults_answer_the_next_connects(
    quiet_emulator: EmulatorProcess, status: int, content_type: str
) -> None:
    quiet_emulator.inject("http", status=status, count=2, retry_after=3)
    url = stream_url(quiet_emulator)
    for _ in range(2):
        answer = quiet_emulator.http.get(url, stream=True, timeout=10)
        assert answer.status_code == status
        assert answer.headers["Content-Type"].startswith(content_type)
        if status == 429:
            assert answer.headers["Retry-After"] == "3"
        if content_type == "application/json":
            assert answer.json()["code"] == status
        answer.close()
    # REST calls are not hit by a stream-scoped fault, and the third connect is served.
    assert quiet_emulator.http.get(f"{quiet_emulator.api_url}/projects", timeout=10).status_code == 200
    third = quiet_emulator.http.get(url, params={"ping_interval": "100ms"}, stream=True, timeout=10)
    assert third.status_code == 200
    third.close()


def test_rest_scoped_http_fault(quiet_emulator: EmulatorProcess) -> None:
    quiet_emulator.inject("http", status=500, scope="rest")
    url = f"{quiet_emulator.api_url}/projects/{quiet_emulator.project_id}/devices"
    assert quiet_emulator.http.get(url, timeout=10).status_code == 500
    assert quiet_emulator.http.get(url, timeout=10).status_code == 200


def test_bad_fault_requests_are_refused(quiet_emulator: EmulatorProcess) -> None:
    url = f"{quiet_emulator.base_url}/_emulator/faults"
    assert quiet_emulator.http.post(url, json={"kind": "meteor"}, timeout=10).status_code == 400
    assert (
        quiet_emulator.http.post(url, json={"kind": "cut", "after_events": -1}, timeout=10).status_code == 400
    )
    assert quiet_emulator.http.post(url, json={"kind": "http", "status": 200}, timeout=10).status_code == 400
    assert quiet_emulator.http.post(url, json={"kind": "cut", "color": 1}, timeout=10).status_code == 400


def test_status_counts_injected_faults_by_kind(quiet_emulator: EmulatorProcess) -> None:
    none = dict.fromkeys(sorted(FAULT_KINDS), 0)
    assert quiet_emulator.status()["faults_injected"] == none
    quiet_emulator.inject("cut")
    quiet_emulator.inject("cut", after_events=3)
    quiet_emulator.inject("http", status=429)
    url = f"{quiet_emulator.base_url}/_emulator/faults"
    several = quiet_emulator.http.post(url, json=[{"kind": "blank"}, {"kind": "garbage"}], timeout=10)
    assert several.json()["faults"] == 2
    assert quiet_emulator.http.post(url, json={"kind": "meteor"}, timeout=10).status_code == 400
    status = quiet_emulator.status()
    assert status["faults_injected"] == {**none, "cut": 2, "http": 1, "blank": 1, "garbage": 1}
    assert {"open_streams", "connections_served", "events_recorded", "tokens_issued"} <= set(status)


def test_chaos_mode_injects_faults_while_sensors_publish(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(
        "--rate", "100", "--history-span", "0", "--chaos", "0.3", "--chaos-kinds", "end"
    )
    reconnects = 0
    deadline = time.monotonic() + 30
    while reconnects < 3 and time.monotonic() < deadline:
        reader = open_stream(emulator.http, stream_url(emulator), {"ping_interval": "1s"})
        if reader.wait_end(timeout=10) == "clean end":
            reconnects += 1
    assert reconnects == 3
