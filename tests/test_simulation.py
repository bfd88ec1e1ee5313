"""Nothing lost across runs, proven on random schedules: a deterministic simulation of DT (virtual clock,
history with an indexing delay and small newest-first pages, the stream and every fault) drives the
protocol core through publishes of every kind, faults, and runs stopped at any step by a bound, SIGTERM
or a crash, each resumed from the last bookmark saved. Checked after every step: every event owed at or
before the bookmark has been written, the bookmark is never ahead of DT's time, history comes in time
order and nothing comes twice within a run; at the end, one more run catches up on everything."""

from __future__ import annotations

import os
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.model.times import timestamp_seconds
from tests.support.simulation import HTTP_FAULTS, SETTINGS, STREAM_FAULTS, World

DEVICE_EVENTS = {
    "dev00": ("temperature", "touch"),
    "dev01": ("contact",),
    "dev02": ("touch",),
    "dev03": ("temperature",),
}
FILTERS = {
    "none": EventFilter(),
    "types": EventFilter.of(event_types=["temperature", "contact"]),
    "labels": EventFilter.of(label_filters={"room": "lab"}),
}
OVERLAP = SETTINGS.gap_overlap
devices = st.sampled_from(sorted(DEVICE_EVENTS))


class AcrossRuns(RuleBasedStateMachine):
    world: World

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        which=st.sampled_from(sorted(FILTERS)),
        skew=st.floats(-120, 120),
        in_order=st.booleans(),
    )
    def start(self, seed: int, which: str, skew: float, in_order: bool) -> None:
        world = self.world = World(seed, FILTERS[which], in_order=in_order)
        # An hour of history before the first run, each event reaching DT at its own time: owed, so the
        # first run's catch-up is checked like everything else.
        history = [
            world.publish_history(
                device_id, types[minute % len(types)], 3600 - (minute + world.rng.random()) * 60
            )
            for minute in range(0, 60, 3)
            for device_id, types in DEVICE_EVENTS.items()
        ]
        owed = {event.event_id for event in world.owed()}
        matching = [event.event_id for event in history if world.matches(event)]
        assert matching and all(event_id in owed for event_id in matching), "the history is not owed"
        world.start_run(skew)

    def _publish(self, device_id: str, timestamp: float) -> None:
        types = DEVICE_EVENTS[device_id]
        index_delay = self.world.rng.uniform(0, SETTINGS.indexing_delay)
        self.world.dt.publish(device_id, self.world.rng.choice(types), timestamp, index_delay)

    @rule(device_id=devices, count=st.integers(1, 6))
    def publish_live(self, device_id: str, count: int) -> None:
        for _ in range(count):
            self._publish(device_id, self.world.clock.now)

    @rule(device_id=devices, late=st.floats(0, OVERLAP))
    def publish_late(self, device_id: str, late: float) -> None:
        """A reading that reaches DT after its time, within the overlap."""
        self._publish(device_id, self.world.clock.now - late)

    @rule(device_id=devices, age=st.floats(OVERLAP + 1, 3 * 3600))
    def publish_backfilled(self, device_id: str, age: float) -> None:
        """A backfilled reading, older than the overlap: delivered when the stream is open, not owed."""
        self._publish(device_id, self.world.clock.now - age)

    @rule(device_id=devices, ahead=st.floats(0, 86_400))
    def publish_ahead(self, device_id: str, ahead: float) -> None:
        """A reading stamped in the future (a cloud connector's clock gone wrong)."""
        self._publish(device_id, self.world.clock.now + ahead)

    @rule(kind=st.sampled_from(STREAM_FAULTS))
    def stream_fault(self, kind: str) -> None:
        self.world.dt.stream_fault(kind)

    @rule(kind=st.sampled_from(HTTP_FAULTS), count=st.integers(1, 3), after=st.integers(0, 6))
    def http_fault(self, kind: str, count: int, after: int) -> None:
        """The next `count` requests of a kind fail, once `after` more requests of it have gone well."""
        for _ in range(count):
            self.world.dt.http_fault(kind, after)

    @rule(seconds=st.floats(0.01, 90))
    def advance(self, seconds: float) -> None:
        assert self.world.run is not None
        self.world.run.advance(seconds)

    @rule(
        how=st.sampled_from(["bound", "sigterm", "crash"]),
        downtime=st.sampled_from([0.0, 5.0, 10.0, 15.0, 25.0, 45.0, 90.0, 600.0]),
        published=st.integers(0, 8),
        skew=st.floats(-120, 120),
    )
    def stop_and_resume(self, how: str, downtime: float, published: int, skew: float) -> None:
        """A run ends; until the next one starts (a scheduler's interval) sensors go on publishing."""
        world = self.world
        assert world.run is not None
        world.run.stop(how)
        world.check()
        for _ in range(published):
            world.clock.now += downtime / (published + 1)
            self._publish(world.rng.choice(sorted(DEVICE_EVENTS)), world.clock.now)
        world.clock.now += downtime / (published + 1)
        world.start_run(skew)

    @precondition(lambda self: self.world.run is not None and not self.world.run.alive)
    @rule(skew=st.floats(-120, 120))
    def resume_after_failure(self, skew: float) -> None:
        """A run that gave up (faults past the retry budget) is started again, as a scheduler would."""
        self.world.start_run(skew)

    @invariant()
    def bookmark_holds(self) -> None:
        self.world.check()

    def teardown(self) -> None:
        world = getattr(self, "world", None)
        if world is None:
            return
        # One more run with nothing in its way catches up on everything owed.
        assert world.run is not None
        world.run.stop("sigterm")
        world.dt.clear_faults()
        drained_at = world.clock.now
        run = world.start_run(0.0)
        run.advance(240.0)
        assert run.failed is None, run.failed
        missing = [
            e.event_id for e in world.owed() if e.arrival <= drained_at and e.event_id not in world.written
        ]
        assert not missing, f"never written: {missing[:5]}"
        bookmark = run.consumer.bookmark
        assert bookmark is not None
        lag = world.clock.now - timestamp_seconds(bookmark)
        assert lag <= SETTINGS.gap_overlap + SETTINGS.ping_interval + SETTINGS.ping_leeway, lag


# Thousands of schedules, in parts that a parallel test run spreads over its workers; fewer on request
# (SIMULATED_SCHEDULES), for a quick check while editing.
SCHEDULES = int(os.environ.get("SIMULATED_SCHEDULES", "2000"))
PARTS = 4


MachineTestCase: Any = AcrossRuns.TestCase


class _Part(MachineTestCase):  # type: ignore[misc]
    settings = settings(
        max_examples=max(1, SCHEDULES // PARTS),
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


class TestAcrossRunsPart1(_Part):
    pass


class TestAcrossRunsPart2(_Part):
    pass


class TestAcrossRunsPart3(_Part):
    pass


class TestAcrossRunsPart4(_Part):
    pass


def test_schedule_found_once_events_waiting_for_a_re_read_hold_the_bookmark_back() -> None:
    """A schedule the machine above found: with events in time order, a late reading that came on the
    stream while it waited for a re-read was passed by the bookmark before it was delivered."""
    machine = AcrossRuns()
    machine.start(seed=0, which="labels", skew=0.0, in_order=True)
    for seconds in (1.0, 1.0, 4.0):
        machine.advance(seconds)
    machine.publish_late("dev00", 22.0)
    machine.advance(11.0)
    machine.teardown()
