"""What the provider's triggers share when they read a source through Airflow 3.3's shared streams in ack
mode: the DT stream of a project (`project_stream`), or a receiver's spool (`spool`).

The producer follows the source for every subscriber (from the earliest position of the triggers that
subscribe at its start) and hands each delivery to every subscriber; each subscriber takes its matches
from it. Airflow tells the producer (`advance`) when every subscriber has moved past a delivery and every
TriggerEvent derived from it is stored; only then is each watcher's position written to its asset state
store. A subscriber that joins a running stream reads the stretch before it itself first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import Field, dataclass, field, replace
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from tap_disruptive.client.protocol.errors import DisruptiveError, FatalError

logger = logging.getLogger(__name__)

# How long a new stream waits for the triggers created with it (a triggerer starts all of its triggers
# within a second), so that it starts from the earliest of their positions.
COHORT_WAIT = 2.0
# An empty delivery is handed on at most this often: it lets subscribers that wait for history move on,
# and watermarks move on a quiet stream.
TICK_INTERVAL = 1.0
# The position of a subscriber that fired nothing since its last write is written at most this often.
QUIET_WRITE_INTERVAL = 30.0
# After a fatal error (refused credentials, an unknown project, a missing spool), a stream is opened
# again no sooner.
FATAL_PAUSE = 60.0


class PositionStore(Protocol):
    """Where a watcher keeps its position: Airflow's asset state store accessor."""

    async def aset(self, key: str, value: Any) -> None: ...


class StoredPosition(Protocol):
    """A watcher's position as its store keeps it: a DT stream's `Position`, or a spool's seq."""

    def to_json(self) -> Any: ...


P = TypeVar("P", bound=StoredPosition)


class Delivery(Protocol):
    """What subscribers receive: a frozen dataclass (the producer numbers it with `replace`) holding a
    delivery of events (maybe none), or a fatal error (`failure`)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def seq(self) -> int: ...
    @property
    def events(self) -> Sequence[Any]: ...
    @property
    def failure(self) -> str | None: ...


D = TypeVar("D", bound=Delivery)


@dataclass
class Subscriber(Generic[P]):
    """A trigger reading a shared stream, as the stream's producer sees it."""

    position: P
    # Where its position is written once what it fired is stored (None: nothing to write, e.g. a sensor).
    store: PositionStore | None = None
    key: str = ""
    # Nothing before now matters to it (no start time, nothing stored): it needs no history read.
    from_now: bool = False
    # How many events it has fired so far: a position with more fired than the last one written is
    # written at once (or the fired events would fire again after a restart).
    fired: int = 0
    written: P | None = None
    written_fired: int = 0
    written_at: float = 0.0


@dataclass
class Cohort(Generic[P]):
    """The shared state of one stream in this process: its subscribers, whether it has started (a
    subscriber joining later reads its stretch of history itself), and each subscriber's position as it
    stood when it moved past each delivery."""

    subscribers: dict[int, Subscriber[P]] = field(default_factory=dict)
    started: bool = False
    marks: dict[int, dict[int, tuple[P, int]]] = field(default_factory=dict)

    def mark(self, seq: int, subscriber_id: int, subscriber: Subscriber[P]) -> None:
        """The subscriber moves past delivery `seq` with this position, having fired this many events."""
        self.marks.setdefault(seq, {})[subscriber_id] = (subscriber.position, subscriber.fired)


# One cohort per shared-stream key, in this (triggerer) process.
COHORTS: dict[Hashable, Cohort[Any]] = {}
_LAST_FATAL: dict[Hashable, float] = {}


def cohort(key: Hashable) -> Cohort[Any]:
    return COHORTS.setdefault(key, Cohort())


async def write_position(
    subscriber: Subscriber[P], position: P, fired: int, quiet_interval: float = QUIET_WRITE_INTERVAL
) -> None:
    """Write a subscriber's position: at once if it has fired since the last write, else now and then."""
    if subscriber.store is None or position == subscriber.written:
        return
    quiet = subscriber.written is not None and fired == subscriber.written_fired
    if quiet and time.monotonic() - subscriber.written_at < quiet_interval:
        return
    try:
        await subscriber.store.aset(subscriber.key, position.to_json())
    except Exception:  # the older position stays: its events may fire again, but are never lost
        logger.exception("could not store a watcher's position")
        return
    subscriber.written, subscriber.written_fired, subscriber.written_at = position, fired, time.monotonic()


class AcknowledgedProducer(SharedStreamProducer, Generic[P, D]):
    """Follows one source for every subscriber of its cohort, and writes watchers' positions once Airflow
    has stored what they fired."""

    def __init__(self, key: Hashable, private: bool) -> None:
        """`private`: a stream for one trigger alone (run on its own), which waits for nobody."""
        self.key = key
        self.cohort: Cohort[P] = Cohort() if private else cohort(key)
        self.cohort_wait = 0.0 if private else COHORT_WAIT

    @abstractmethod
    def follow(self) -> AsyncGenerator[D, None]:
        """The source's deliveries (unnumbered: `seq` 0), from the earliest position among the cohort's
        subscribers; the cohort is marked started once their positions are read. FatalError ends them."""

    @abstractmethod
    def failure(self, message: str) -> D:
        """The delivery that tells every subscriber of a fatal error (unnumbered)."""

    async def open_stream(self) -> AsyncIterator[tuple[D, int]]:
        pause = FATAL_PAUSE - (time.monotonic() - _LAST_FATAL.get(self.key, -FATAL_PAUSE))
        await asyncio.sleep(max(self.cohort_wait, pause))
        seq = 0
        last_tick = 0.0
        try:
            async with aclosing(self.follow()) as deliveries:
                async for delivery in deliveries:
                    # An empty delivery (one comes after every empty read) only moves watermarks on.
                    now = time.monotonic()
                    if not delivery.events and now - last_tick < TICK_INTERVAL:
                        continue
                    last_tick = now
                    seq += 1
                    yield replace(delivery, seq=seq), seq
        except FatalError as error:
            # Said to every subscriber once (a sensor fails with it), then the stream ends; it is opened
            # again no sooner than FATAL_PAUSE.
            _LAST_FATAL[self.key] = time.monotonic()
            seq += 1
            yield replace(self.failure(str(error)), seq=seq), seq
            raise
        finally:
            self.cohort.started = False

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Every subscriber has moved past these deliveries; where all of them did so cleanly, what each
        fired up to then is stored, and its position may be written."""
        latest: dict[int, tuple[P, int]] = {}
        for item in batch:
            marks = self.cohort.marks.pop(item.broker_payload, {})
            if item.outcome.failed == 0:
                latest.update(marks)
        for subscriber_id, (position, fired) in latest.items():
            subscriber = self.cohort.subscribers.get(subscriber_id)
            if subscriber is not None:
                await write_position(subscriber, position, fired)

    async def aclose(self) -> None:
        self.cohort.marks.clear()


@dataclass
class Reading(Generic[P, D]):
    """How one trigger reads a shared stream: as its subscriber, taking its matches from each delivery."""

    subscriber: Subscriber[P]
    # Fires on a delivery's matches that the subscriber has not dealt with, and moves its position on.
    take: Callable[[D], Iterator[TriggerEvent]]
    # The deliveries from a position up to now, for a subscriber that joins a running stream.
    catch_up: Callable[[P], Awaitable[list[D]]]
    # After each delivery of the stream: a firing that has come due meanwhile (a collection window's).
    due: Callable[[], TriggerEvent | None] = lambda: None


class SharedStreamTrigger(BaseEventTrigger, Generic[P, D]):
    """A trigger that reads its source through a shared stream in a triggerer, or alone through a stream
    of its own; fatal errors fire `{"status": "error", "message": ...}`."""

    @property
    def watches(self) -> bool:
        """An asset watcher (Airflow gave it a state store): it fires on every match, for good."""
        return self.asset_state_store is not None

    @abstractmethod
    def _private_producer(self) -> AcknowledgedProducer[P, D]:
        """A producer for this trigger alone."""

    @abstractmethod
    async def _join(self) -> Reading[P, D]:
        """How this trigger reads the stream, from its starting position; DisruptiveError if it cannot."""

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for fired in self._fire(shared_stream, cohort(self.shared_stream_key()), acknowledged=True):
            yield fired

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Without a shared stream (`dag.test()`, a trigger run on its own): a stream of its own, and a
        watcher's position written once each delivery's matches are handed to Airflow."""
        producer = self._private_producer()

        async def deliveries() -> AsyncGenerator[D, None]:
            async for delivery, _seq in producer.open_stream():
                yield delivery

        async with aclosing(deliveries()) as stream:
            async for fired in self._fire(stream, producer.cohort, acknowledged=False):
                yield fired

    async def _fire(
        self, stream: AsyncIterator[D], shared: Cohort[P], acknowledged: bool
    ) -> AsyncIterator[TriggerEvent]:
        """TriggerEvents for the matches among the stream's deliveries, in the stream's order.
        `acknowledged`: the producer writes a watcher's position once Airflow has stored what it fired;
        otherwise it is written here after each delivery."""
        me = id(self)
        try:
            reading = await self._join()
        except DisruptiveError as error:
            yield error_event(error)
            return
        subscriber = reading.subscriber
        shared.subscribers[me] = subscriber
        # Joining a stream that is already running: the stretch before it is read first.
        catch_up = None
        if shared.started and not subscriber.from_now:
            catch_up = asyncio.ensure_future(reading.catch_up(subscriber.position))
        waiting: list[D] = []
        try:
            async for delivery in stream:
                if delivery.failure is not None:
                    yield error_event(delivery.failure)
                    if not self.watches:
                        return
                    continue
                pending = [delivery]
                if catch_up is not None:
                    waiting.append(delivery)
                    if not catch_up.done():
                        if acknowledged:
                            shared.mark(delivery.seq, me, subscriber)
                        continue
                    pending, waiting = [*catch_up.result(), *waiting], []
                    catch_up = None
                for batch in pending:
                    for fired in reading.take(batch):
                        yield fired
                        subscriber.fired += 1
                        if not self.watches:
                            return
                    if not acknowledged:
                        await write_position(subscriber, subscriber.position, subscriber.fired)
                due = reading.due()
                if due is not None:
                    yield due
                    subscriber.fired += 1
                    if not self.watches:
                        return
                if acknowledged:
                    shared.mark(delivery.seq, me, subscriber)
        finally:
            shared.subscribers.pop(me, None)
            if catch_up is not None:
                catch_up.cancel()


def error_event(error: DisruptiveError | str) -> TriggerEvent:
    return TriggerEvent({"status": "error", "message": str(error)})  # type: ignore[no-untyped-call]
