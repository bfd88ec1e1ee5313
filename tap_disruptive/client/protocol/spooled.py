"""Reading the spool a Data Connector receiver fills: its rows turned into events, filtered, and a
position (the spool's own seq) that never passes an event the consumer has not taken.

The spool hands rows out in seq order, and seq order is commit order, so a consumer that remembers the
seq up to which it has taken everything misses nothing and takes nothing twice (the receiver has
already dropped DT's re-sends by eventId). No I/O here: the driver reads rows and sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Generator
from dataclasses import dataclass

import msgspec

from tap_disruptive.client.protocol.commands import Sleep
from tap_disruptive.client.protocol.errors import TransientError
from tap_disruptive.client.protocol.events import Event, WireEvent
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.retry import Backoff

logger = logging.getLogger(__name__)

# Rows asked for at a time: a batch a consumer writes and bookmarks as one.
READ_LIMIT = 1000


@dataclass(frozen=True)
class SpoolSettings:
    # How often an empty spool is asked again: a local read, so a short wait is cheap.
    poll_interval: float = 0.2
    # Backoff between failed reads (a locked file, a database restarting), as for DT's API.
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    max_attempts: int = 10
    max_retry_after: float = 30.0


class SpoolUnavailable(TransientError):
    """The spool did not answer a read (a locked file, a database restarting); retried with backoff."""

    kind = "spool"


@dataclass(frozen=True, slots=True)
class ReadSpool:
    """Read up to `limit` rows with a seq above `after_seq`. Answer: SpoolRows, or SpoolUnavailable."""

    after_seq: int
    limit: int = READ_LIMIT


@dataclass(frozen=True, slots=True)
class SpoolRows:
    rows: list[tuple[int, str]]  # (seq, push body), in seq order
    pruned_through: int  # the highest seq the receiver's retention has deleted


@dataclass(frozen=True, slots=True)
class PushedEvent:
    """An event as a Data Connector pushed it: with the device's type and the labels the connector
    forwards, both as they were when DT sent it."""

    seq: int
    event: Event
    device_type: str | None
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class SpoolDelivery:
    """Events to hand on, in seq order (possibly none: the spool had nothing new). Once the consumer
    has taken all of them, every row up to `through_seq` has been dealt with."""

    events: list[PushedEvent]
    through_seq: int

    def seq_after(self, taken: int, before: int) -> int:
        """The position once the first `taken` events are written (`before`: the position before)."""
        if taken >= len(self.events):
            return max(before, self.through_seq)
        return max(before, self.events[taken].seq - 1)


@dataclass
class SpoolStats:
    events: int = 0  # events delivered
    reads: int = 0
    filtered_out: int = 0  # rows of other projects, or that the filter drops
    unreadable: int = 0  # rows that are no DT push (the receiver checks them: this should stay 0)
    faults: int = 0
    # The highest seq deleted by retention before this reader read it (0: nothing missed).
    pruned_unread_through: int = 0

    def summary(self) -> str:
        missed = (
            f"; rows up to seq {self.pruned_unread_through} were pruned unread"
            if self.pruned_unread_through
            else ""
        )
        return (
            f"spool: {self.reads} reads, {self.filtered_out} filtered out, "
            f"{self.unreadable} unreadable rows, {self.faults} faults{missed}"
        )


class _Metadata(msgspec.Struct, rename="camel", frozen=True):
    device_type: str | None = None


class _PushBody(msgspec.Struct):
    event: WireEvent
    labels: dict[str, str] = {}
    metadata: _Metadata = _Metadata()


_PUSH_BODY = msgspec.json.Decoder(_PushBody)


def pushed_event(seq: int, body: str | bytes) -> PushedEvent:
    """The event in a spooled push body; ValueError (with the reason) if it is no DT push."""
    try:
        push = _PUSH_BODY.decode(body)
    except msgspec.DecodeError as error:
        raise ValueError(f"spool row {seq} is not a DT push: {error}") from None
    return PushedEvent(seq, Event.from_wire(push.event), push.metadata.device_type, push.labels)


def select(
    rows: list[tuple[int, str]],
    project_ids: Collection[str],
    event_filter: EventFilter,
    since: str | None,
    stats: SpoolStats,
) -> list[PushedEvent]:
    """The rows' events of `project_ids` that pass the filter and are stamped at or after `since`."""
    events = []
    for seq, body in rows:
        try:
            pushed = pushed_event(seq, body)
        except ValueError as error:
            stats.unreadable += 1
            logger.warning("%s; skipped", error)
            continue
        event = pushed.event
        if (
            event.project_id in project_ids
            and event_filter.matches_event_type(event.event_type)
            and event_filter.matches_device(event.device_id, pushed.device_type, pushed.labels)
            and (since is None or event.timestamp >= since)
        ):
            events.append(pushed)
        else:
            stats.filtered_out += 1
    return events


def follow_spool(
    after_seq: int,
    project_ids: Collection[str],
    event_filter: EventFilter,
    settings: SpoolSettings,
    stats: SpoolStats,
    *,
    since: str | None = None,
    live: bool = True,
) -> Generator[ReadSpool | Sleep | SpoolDelivery, SpoolRows | SpoolUnavailable | None, None]:
    """The steps of reading the spool from `after_seq` on: every batch is delivered, and an empty
    delivery after each empty read so that a consumer's bounds hold on a quiet spool. Without `live`,
    the steps end at the first empty read (the end of the spool as it was then)."""
    retry = Backoff(settings)
    position = after_seq
    while True:
        answer = yield ReadSpool(position)
        if isinstance(answer, SpoolUnavailable):
            stats.faults += 1
            yield Sleep(retry.next_wait(answer))
            continue
        assert isinstance(answer, SpoolRows)
        retry.reset()
        stats.reads += 1
        if answer.pruned_through > position:
            _missed(position, answer.pruned_through, stats)
        rows = answer.rows
        if not rows:
            yield SpoolDelivery([], position)
            if not live:
                return
            yield Sleep(settings.poll_interval)
            continue
        events = select(rows, project_ids, event_filter, since, stats)
        stats.events += len(events)
        position = rows[-1][0]
        yield SpoolDelivery(events, position)
        if len(rows) < READ_LIMIT and not live:
            return


def _missed(position: int, pruned_through: int, stats: SpoolStats) -> None:
    if pruned_through <= stats.pruned_unread_through:
        return
    stats.pruned_unread_through = pruned_through
    # Not retried and not fatal: the rows are gone, and what is left should still be read. Said loudly.
    logger.error(
        "The spool's retention deleted rows up to seq %d before this reader (at seq %d) read them: events "
        "pushed then are lost to it. Run the reader more often than the receiver's --retention, or keep "
        "rows longer",
        pruned_through,
        position,
    )
