"""Reading a receiver's spool, without I/O: the steps of `follow_spool` driven by a script of answers."""

from __future__ import annotations

import json
import logging

import pytest

from tap_disruptive.client.protocol.commands import Sleep
from tap_disruptive.client.protocol.errors import GaveUp
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.spooled import (
    ReadSpool,
    SpoolDelivery,
    SpoolRows,
    SpoolSettings,
    SpoolStats,
    SpoolUnavailable,
    follow_spool,
    pushed_event,
)

FAST = SpoolSettings(poll_interval=0.1, backoff_initial=0.01, backoff_cap=0.02, max_attempts=3)


def body(number: int, project: str = "p1", event_type: str = "touch", room: str = "lab") -> str:
    event = {
        "eventId": f"event{number:04d}",
        "targetName": f"projects/{project}/devices/d{number % 3}",
        "eventType": event_type,
        "data": {event_type: {"updateTime": "2026-11-28T10:00:00Z"}},
        "timestamp": f"2026-11-28T10:00:{number % 60:02d}Z",
    }
    metadata = {"deviceId": f"d{number % 3}", "projectId": project, "deviceType": "touch"}
    return json.dumps({"event": event, "labels": {"room": room}, "metadata": metadata})


def test_a_push_body_becomes_an_event_with_its_device_type_and_labels() -> None:
    pushed = pushed_event(7, body(5, room="cellar"))
    assert (pushed.seq, pushed.event.event_id, pushed.event.device_id) == (7, "event0005", "d2")
    assert (pushed.device_type, pushed.labels) == ("touch", {"room": "cellar"})
    with pytest.raises(ValueError, match="spool row 3 is not a DT push"):
        pushed_event(3, '{"labels": {}}')


def test_the_position_never_passes_an_event_not_taken() -> None:
    delivery = SpoolDelivery([pushed_event(seq, body(seq)) for seq in (3, 5, 9)], through_seq=12)
    assert [delivery.seq_after(taken, before=1) for taken in range(4)] == [2, 4, 8, 12]
    assert SpoolDelivery([], through_seq=4).seq_after(0, before=7) == 7  # never backwards


def test_steps_read_on_filter_and_end_at_the_end_of_a_spool_read_once() -> None:
    stats = SpoolStats()
    steps = follow_spool(
        0, ["p1"], EventFilter.of(event_types=["touch"]), FAST, stats, since=None, live=False
    )
    assert next(steps) == ReadSpool(0)
    rows = [(1, body(1)), (2, body(2, project="p2")), (4, body(4, event_type="temperature")), (6, body(6))]
    delivery = steps.send(SpoolRows(rows, pruned_through=0))
    assert isinstance(delivery, SpoolDelivery)
    assert [event.seq for event in delivery.events] == [1, 6]
    assert delivery.through_seq == 6
    # A short read is the end of a run that does not follow the spool.
    with pytest.raises(StopIteration):
        steps.send(None)
    assert (stats.events, stats.filtered_out, stats.reads) == (2, 2, 1)


def test_a_live_reader_hands_on_an_empty_delivery_then_waits_and_reads_again() -> None:
    steps = follow_spool(5, ["p1"], EventFilter(), FAST, SpoolStats(), live=True)
    assert next(steps) == ReadSpool(5)
    assert steps.send(SpoolRows([], 0)) == SpoolDelivery([], 5)
    assert steps.send(None) == Sleep(0.1)
    assert steps.send(None) == ReadSpool(5)


def test_a_spool_that_does_not_answer_is_retried_with_backoff_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = SpoolStats()
    steps = follow_spool(0, ["p1"], EventFilter(), FAST, stats)
    next(steps)
    with caplog.at_level(logging.WARNING):
        wait = steps.send(SpoolUnavailable("database is locked"))
        assert isinstance(wait, Sleep) and 0 <= wait.seconds <= 0.02
        assert steps.send(None) == ReadSpool(0)
        steps.send(SpoolUnavailable("database is locked"))
        steps.send(None)
        with pytest.raises(GaveUp, match="database is locked"):
            steps.send(SpoolUnavailable("database is locked"))
    assert stats.faults == 3
    assert "database is locked [spool]" in caplog.text


def test_rows_pruned_before_the_reader_got_to_them_are_said_once_and_reading_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = SpoolStats()
    steps = follow_spool(10, ["p1"], EventFilter(), FAST, stats)
    next(steps)
    with caplog.at_level(logging.ERROR):
        delivery = steps.send(SpoolRows([(40, body(40))], pruned_through=30))
        assert isinstance(delivery, SpoolDelivery) and [e.seq for e in delivery.events] == [40]
        steps.send(None)  # the next read
        steps.send(SpoolRows([(41, body(41))], pruned_through=30))
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "deleted rows up to seq 30 before this reader (at seq 10)" in errors[0].getMessage()
    assert "pruned unread" in stats.summary()
