"""The follower loses nothing: for every fault the emulator can inject, alone and mixed, while sensors
keep publishing, every ledger event that matches the filter is delivered, and none twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.model.times import format_timestamp, timestamp_seconds
from tap_disruptive.testing import wait_until
from tests.support.emulators import StartEmulator, list_devices
from tests.support.follow import FAST, FollowThread, now_stamp, settings_for

pytestmark = pytest.mark.e2e

FAULTS: dict[str, list[dict[str, Any]]] = {
    "cut": [{"kind": "cut", "after_events": 3}],
    "end": [{"kind": "end", "after_events": 3}],
    "stall": [{"kind": "stall", "seconds": 2.5}],
    "blank": [{"kind": "blank", "after_events": 1}],
    "garbage": [{"kind": "garbage", "after_events": 1}],
    "error": [{"kind": "error", "after_events": 2}],
    "error_v1": [{"kind": "error_v1", "after_events": 2}],
    "http_503_on_reconnect": [{"kind": "http", "status": 503, "count": 2}, {"kind": "end"}],
    "http_429_on_reconnect": [{"kind": "http", "status": 429, "retry_after": 1}, {"kind": "cut"}],
    "http_502_html_on_reconnect": [{"kind": "http", "status": 502, "count": 2}, {"kind": "end"}],
    "history_503_during_gap_fill": [
        {"kind": "http", "status": 503, "scope": "rest", "count": 3},
        {"kind": "cut"},
    ],
    "mixed": [
        {"kind": "garbage", "after_events": 2},
        {"kind": "cut", "after_events": 5},
        {"kind": "http", "status": 503},
        {"kind": "blank"},
        {"kind": "error_v1", "after_events": 4},
        {"kind": "stall", "seconds": 2},
        {"kind": "http", "status": 429, "retry_after": 1},
        {"kind": "end", "after_events": 3},
    ],
}

# Sensors publish throughout; some readings arrive late, backfilled, within the gap overlap.
EMULATOR = (
    "--rate",
    "150",
    "--history-span",
    "0",
    "--indexing-delay",
    "1",
    "--backfill-ratio",
    "0.05",
    "--backfill-max-age",
    "3",
    "--devices",
    "36",
)


def ledger_ids(emulator: EmulatorProcess, after: int, since: str | None = None, **filters: Any) -> set[str]:
    """Ids of ledger events after a ledger position, or (with `since`) of any time from then on."""
    events, _ = emulator.ledger(after=0 if since else after, **filters)
    return {
        event["eventId"]
        for position, event in enumerate(events)
        if position >= after or (since is not None and event["timestamp"] >= since)
    }


def inject_each(
    emulator: EmulatorProcess, faults: list[dict[str, Any]], before_each: Callable[[], None] | None = None
) -> None:
    """Inject the faults one after another, each once a stream is open again."""
    for fault in faults:
        assert wait_until(lambda: emulator.status()["open_streams"] >= 1, timeout=20)
        if before_each is not None:
            before_each()
        emulator.inject(**fault)
        time.sleep(0.4)


def run_case(
    emulator: EmulatorProcess,
    case: str,
    use_async: bool,
    event_filter: EventFilter | None,
    ledger_filters: dict[str, Any],
    before_each_fault: Callable[[], None] | None = None,
) -> FollowThread:
    before_start, start = emulator.ledger_position(), now_stamp()
    follower = FollowThread(
        settings_for(emulator), emulator.project_id, event_filter, start, use_async=use_async
    )
    assert wait_until(lambda: emulator.status()["open_streams"] == 1, timeout=20)
    connected = emulator.ledger_position()
    inject_each(emulator, FAULTS[case], before_each_fault)
    time.sleep(1.0)  # sensors go on publishing after the last fault
    # Every matching event produced once the stream was open must come, whatever the faults did.
    expected = ledger_ids(emulator, connected, **ledger_filters)
    assert len(expected) > 20
    missing = follower.wait_for(expected, timeout=40)
    follower.stop()
    assert follower.failure is None, follower.failure
    assert not missing, f"{len(missing)} of {len(expected)} ledger events never delivered"
    assert follower.duplicates() == {}
    # Nothing delivered that the emulator did not produce since the start (or within the gap overlap
    # before it, where gap fills reach back), nor anything the filter excludes.
    since = format_timestamp(timestamp_seconds(start) - FAST["gap_overlap"])
    assert set(follower.ids()) <= ledger_ids(emulator, before_start, since=since, **ledger_filters)
    return follower


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("case", list(FAULTS))
def test_nothing_lost_nothing_twice(start_emulator: StartEmulator, case: str, use_async: bool) -> None:
    emulator = start_emulator(*EMULATOR)
    follower = run_case(emulator, case, use_async, None, {})
    stats = follower.stats
    assert stats is not None
    if case not in ("blank", "garbage"):
        assert stats.reconnects >= 1
    if case in ("blank", "garbage"):
        assert stats.faults[f"{case if case == 'blank' else 'not_json'}_line"] >= 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_filtered_follow_under_faults(start_emulator: StartEmulator, use_async: bool) -> None:
    emulator = start_emulator(*EMULATOR)
    devices = list_devices(emulator)
    room = devices[0]["labels"]["room"]
    kinds = ["temperature", "networkStatus", "touch"]
    event_filter = EventFilter.of(label_filters={"room": room, "floor": None}, event_types=kinds)
    ledger_filters = {"label_filters": [f"room={room}", "floor"], "event_types": kinds}
    # A filtered stream sees few simulated events: publish more from a device in that room.
    target = next(d["name"].rsplit("/", 1)[-1] for d in devices if d["labels"]["room"] == room)

    def publish() -> None:
        for _ in range(5):
            emulator.publish(target, "touch")

    follower = run_case(emulator, "mixed", use_async, event_filter, ledger_filters, before_each_fault=publish)
    assert {event.event_type for event in follower.events} <= set(kinds)


def test_an_event_published_during_the_gap_and_indexed_late_is_recovered(
    start_emulator: StartEmulator,
) -> None:
    # History lags 2 s behind; the stream is cut and the reconnect refused for a while, so the event
    # published in the gap is not in history when the follower first looks.
    emulator = start_emulator("--rate", "0", "--history-span", "0", "--indexing-delay", "2")
    device_id = emulator.create_device("contact")
    follower = FollowThread(settings_for(emulator, indexing_delay=4.0), emulator.project_id)
    assert wait_until(lambda: emulator.status()["open_streams"] == 1, timeout=20)
    emulator.inject("stall", seconds=30)
    emulator.publish(device_id, "contact", {"state": "OPEN"})
    (published,), _ = emulator.ledger(device_ids=device_id)
    missing = follower.wait_for({published["eventId"]}, timeout=30)
    follower.stop()
    assert follower.failure is None
    assert not missing
    assert follower.stats is not None and follower.stats.recovered == 1
    assert follower.stats.faults["stall"] == 1
