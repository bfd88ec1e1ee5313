"""The follower's promises case by case, each on the simulation of DT (tests/simulation.py) with a chosen
schedule: stops in the middle of a catch-up, a bound that cuts a delivery, answers that are not JSON,
history newest first, re-reads, timestamps that lie, and history-only runs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tap_disruptive.client.protocol.commands import Delivery
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.model.times import format_timestamp, timestamp_seconds
from tests.support.simulation import SETTINGS, World

OVERLAP = SETTINGS.gap_overlap
DEVICES = ("dev00", "dev01", "dev02", "dev03")
TYPES = {"dev00": "temperature", "dev01": "contact", "dev02": "touch", "dev03": "temperature"}


def with_history(world: World, per_device: int, span: float) -> list[str]:
    """`per_device` events on each device, spread over the last `span` seconds; their ids."""
    ids = []
    for number in range(per_device):
        for device_id in DEVICES:
            age = span * (1 - number / per_device) - world.rng.random()
            ids.append(world.publish(device_id, TYPES[device_id], age).event_id)
    return ids


def unwritten(world: World, ids: list[str]) -> list[str]:
    return [event_id for event_id in ids if event_id not in world.written]


@pytest.mark.parametrize("how", ["bound", "sigterm", "crash"])
def test_a_stop_during_the_catch_up_keeps_the_bookmark_before_what_was_not_read(how: str) -> None:
    world = World(1, history_hours=1.0)
    ids = with_history(world, 30, 3500)
    run = world.start_run()
    run.advance(2.0)  # a few slices of the hour, not all
    assert run.follower.stats.history_requests >= 1 and unwritten(world, ids), (
        "the catch-up should be under way"
    )
    run.stop(how)
    saved = world.saved
    if saved is not None:
        # Not near now: at most as far as what was written.
        assert timestamp_seconds(saved) < world.clock.now - 600
        first_missing = min(e.stamp for e in world.dt.ledger if e.event_id not in world.written)
        assert saved < first_missing
    world.start_run().advance(120.0)
    assert unwritten(world, ids) == []


def test_a_bound_in_the_middle_of_a_delivery_claims_only_what_was_written() -> None:
    world = World(2)
    with_history(world, 30, 3500)
    run = world.start_run()
    delivery = run.advance(60.0, stop_after=2)
    assert isinstance(delivery, Delivery) and len(delivery.events) >= 2
    taken = len(delivery.events) // 2
    run.consumer.take(delivery, taken=taken)
    bookmark = run.consumer.bookmark
    assert bookmark is not None and bookmark < delivery.events[taken].timestamp
    # A catch-up per device: that device's own frontier stops before the first event not taken, too.
    if delivery.device_id is not None:
        assert run.consumer.devices.get(delivery.device_id, "") < delivery.events[taken].timestamp
    # The events after the cut are owed by the next run, and it delivers them.
    run.stop("sigterm")
    world.start_run().advance(120.0)
    assert all(event.event_id in world.written for event in delivery.events)


@pytest.mark.parametrize("in_order", [True, False], ids=["slice", "per-device"])
def test_a_stop_between_two_deliveries_of_one_read_claims_no_more_than_the_first(in_order: bool) -> None:
    # The whole hour in one slice (in time order), or one device's window (per device), handed over ten
    # events at a time.
    one_slice = replace(SETTINGS, slice_events=1000, slice_seconds=3600.0, delivery_chunk=10)
    world = World(15, settings=one_slice, in_order=in_order)
    ids = [
        world.publish_history(DEVICES[n % 4], TYPES[DEVICES[n % 4]], 3500 - 20 * n).event_id
        for n in range(100)
    ]
    run = world.start_run()
    first = run.advance(60.0, stop_after=1)
    assert first is not None
    got = [event.event_id for event in first.events]
    if in_order:
        assert got == ids[:10]
    else:
        device_ids = [i for i, e in zip(ids, world.dt.ledger, strict=True) if e.device_id == first.device_id]
        assert got == device_ids[:10]
    run.consumer.take(first)  # all of it: the bound falls between two deliveries of the read
    world.check()
    bookmark = run.consumer.bookmark
    assert bookmark is not None and bookmark < world.dt.ledger[10].stamp
    if not in_order:
        assert first.device_id is not None
        next_of_device = next(e for e in world.dt.ledger if e.event_id == device_ids[10])
        assert run.consumer.devices[first.device_id] < next_of_device.stamp
    run.stop("sigterm")
    world.start_run().advance(120.0)
    assert unwritten(world, ids) == []


@pytest.mark.parametrize("after", [1, 2, 3])
def test_an_answer_that_is_not_json_while_history_is_read_loses_no_stretch(after: int) -> None:
    # Started 50 s back: the stream opens first, and history is read while it waits; an answer that is
    # no JSON (a proxy's page) breaks that read part way.
    world = World(3, history_hours=50 / 3600)
    ids = [world.publish(device, TYPES[device], age).event_id for device in DEVICES for age in (48, 40, 33)]
    world.dt.http_fault("rest_not_json", after=after)
    run = world.start_run()
    run.advance(60.0)
    assert run.follower.stats.faults["bad_answer"] == 1
    assert unwritten(world, ids) == []


@pytest.mark.parametrize("how", ["bound", "sigterm"])
def test_a_stop_while_history_is_read_after_the_stream_opened_keeps_the_bookmark_before_it(how: str) -> None:
    # 50 s behind: the stream opens first, then history is read (in several slices: it is dense).
    world = World(13, history_hours=50 / 3600)
    ids = [world.publish(DEVICES[n % 4], TYPES[DEVICES[n % 4]], 49 - n).event_id for n in range(45)]
    run = world.start_run()
    while run.follower.stats.slices < 2:
        run.advance(0.05)
    assert unwritten(world, ids), "history should still be being read"
    run.stop(how)
    assert world.saved is not None
    assert world.saved < min(e.stamp for e in world.dt.ledger if e.event_id not in world.written)
    world.start_run().advance(60.0)
    assert unwritten(world, ids) == []


def test_a_re_read_that_fails_stays_scheduled_until_it_succeeds() -> None:
    world = World(4, history_hours=0.0)
    run = world.start_run()
    run.advance(1.0)  # the stream is open
    # An event that reaches DT during a disconnect and is indexed slowly: only the re-read finds it.
    world.dt.stream_fault("end")
    run.advance(0.01)
    late = world.publish("dev00", "temperature", index_delay=9.0)
    world.dt.http_fault("rest_not_json", after=8)  # past the gap read: the re-read's first answer
    run.advance(90.0)
    assert late.event_id in world.written
    assert run.follower.stats.rechecks >= 2


def test_history_is_delivered_oldest_first_and_the_first_match_by_time_comes_first() -> None:
    world = World(5, event_filter=EventFilter.of(event_types=["contact"]), history_hours=0.1)
    opened = [world.publish("dev01", "contact", age).event_id for age in (300, 200, 100)]
    run = world.start_run()
    first = run.advance(30.0, stop_after=1)
    assert first is not None
    assert [event.event_id for event in first.events] == opened


def test_the_re_read_after_the_indexing_delay_covers_only_the_stretch_that_can_still_change() -> None:
    few_ids = replace(SETTINGS, dedupe_capacity=10, slice_events=1000)
    world = World(6, settings=few_ids)
    with_history(world, 60, 3500)
    run = world.start_run()
    run.advance(120.0)
    stats = run.follower.stats
    assert stats.rechecks >= 1
    assert stats.events == len(world.written), "an event was delivered twice"
    # One read of the hour, plus re-reads of the last minute: nowhere near two reads of the hour.
    assert stats.recovered < 240 + 40


def test_ids_from_the_stream_are_kept_long_enough_to_drop_them_when_the_gap_read_brings_them_again() -> None:
    # Ids are forgotten only once more than `dedupe_capacity` are held: a small one makes that happen here.
    few_ids = replace(SETTINGS, dedupe_capacity=20)
    world = World(17, settings=few_ids, history_hours=0.0)
    run = world.start_run()
    run.advance(5.0)  # the stream is open
    for number in range(15):  # backfilled readings, an hour old: the first ids to forget
        world.publish(DEVICES[number % 4], TYPES[DEVICES[number % 4]], age=3600.0)
    connection = world.dt.connection
    assert connection is not None
    run.advance(connection.next_ping - world.clock.now + 0.01)  # just after a ping
    # Late readings, at the edge of the overlap: a gap read from before this ping reads them again.
    late = [world.publish(device, TYPES[device], age=OVERLAP - 1).event_id for device in (*DEVICES, "dev00")]
    run.advance(3.0)
    world.publish("dev01", "contact")  # the 21st id: the old ones are forgotten
    run.advance(1.0)
    assert len(world.written) == 21
    world.dt.stream_fault("end")  # before the next ping
    run.advance(30.0)  # every delivery checks that nothing comes twice within the run
    assert run.follower.stats.reconnects == 1
    assert run.follower.stats.duplicates >= len(late)
    assert all(world.written[event_id] == [1] for event_id in late)


def test_an_event_stamped_a_day_ahead_does_not_move_the_bookmark() -> None:
    world = World(7, history_hours=0.0)
    run = world.start_run()
    run.advance(5.0)
    ahead = world.publish("dev00", "temperature", age=-86_400)
    run.advance(60.0)
    assert ahead.event_id in world.written  # it came on the stream
    bookmark = run.consumer.bookmark
    assert bookmark is not None and timestamp_seconds(bookmark) <= world.clock.now


def test_a_ping_stamped_a_day_ahead_does_not_move_the_bookmark() -> None:
    world = World(16, history_hours=0.0)
    run = world.start_run()
    run.advance(5.0)  # the stream is open
    world.dt.stream_fault("ping_ahead")
    late = world.publish("dev00", "temperature", age=OVERLAP / 2)
    run.advance(60.0)  # every step checks the bookmark against DT's time and what was written
    assert late.event_id in world.written
    assert run.follower.stats.pings >= 5
    bookmark = run.consumer.bookmark
    assert bookmark is not None and timestamp_seconds(bookmark) <= world.clock.now - OVERLAP


def test_an_impossible_timestamp_is_a_bad_line_whose_stretch_is_read_again() -> None:
    world = World(8, history_hours=0.0)
    run = world.start_run()
    run.advance(5.0)
    world.dt.stream_fault("bad_stamp")
    run.advance(60.0)
    assert run.failed is None and run.alive
    assert run.follower.stats.faults["malformed_event_line"] == 1
    assert run.follower.stats.rechecks >= 1


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_the_clients_own_clock_never_sets_the_bookmark(skew: float) -> None:
    world = World(9, history_hours=0.5)
    with_history(world, 5, 1700)
    run = world.start_run(client_skew=skew)
    run.advance(90.0)
    bookmark = run.consumer.bookmark
    assert bookmark is not None
    assert world.clock.now - 60 <= timestamp_seconds(bookmark) <= world.clock.now


def test_a_re_read_runs_when_due_on_a_silent_stream() -> None:
    # Pings once a minute, and no heartbeat before: the re-read must not wait for the next chunk.
    slow = replace(SETTINGS, ping_interval=60.0, ping_leeway=30.0, heartbeat=60.0)
    world = World(10, settings=slow, history_hours=0.0)
    run = world.start_run()
    run.advance(0.01)
    late = world.publish("dev02", "touch", index_delay=8.0)  # reaches DT before the stream opens
    run.advance(SETTINGS.indexing_delay + 3.0)
    assert late.event_id in world.written


def test_a_run_that_ends_before_a_re_read_keeps_its_bookmark_before_the_re_read() -> None:
    world = World(11, history_hours=0.0)
    run = world.start_run()
    run.advance(0.01)
    late = world.publish("dev02", "touch", index_delay=8.0)
    run.advance(3.0)  # the stream is open and history was read; the re-read is not due yet
    run.stop("sigterm")
    assert late.event_id not in world.written
    assert world.saved is not None and world.saved < late.stamp
    world.start_run().advance(60.0)
    assert late.event_id in world.written


def test_a_history_only_run_holds_a_slice_at_a_time_drops_repeated_ids_and_ends() -> None:
    world = World(12, history_hours=2.0)
    # History indexed while the run reads it: newest-first pages shift and repeat ids.
    ids = with_history(world, 40, 7000)
    run = world.start_run(live=False)
    sizes: list[int] = []
    while run.alive:
        delivery = run.advance(1.0, stop_after=1)
        if delivery is not None:
            sizes.append(len(delivery.events))
            run.consumer.take(delivery)
            world.check()
            run._answer(None)
        world.publish("dev00", "temperature", age=world.rng.uniform(0, 7000), index_delay=0.0)
    assert run.failed is None
    assert unwritten(world, ids) == []
    assert max(sizes) <= SETTINGS.slice_events
    assert len(world.written) == sum(len(runs) for runs in world.written.values())
    assert world.dt.connection is None
    bookmark = run.consumer.bookmark
    assert bookmark is not None
    assert bookmark <= format_timestamp(world.clock.now - SETTINGS.indexing_delay - OVERLAP + 1)


def test_events_come_in_time_order_across_the_opening_of_the_stream() -> None:
    # A reaches DT just before the stream opens and is slow to be indexed: the first read of history
    # misses it. B comes on the stream after. B must wait for the re-read that finds A.
    world = World(14, history_hours=0.0, in_order=True)
    run = world.start_run()
    early = world.publish("dev01", "contact", index_delay=5.0)
    run.advance(1.5)
    later = world.publish("dev01", "contact")
    run.advance(30.0)
    order = [event_id for event_id in run.consumer.ids if event_id in (early.event_id, later.event_id)]
    assert order == [early.event_id, later.event_id]
