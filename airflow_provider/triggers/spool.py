"""DisruptiveSpoolTrigger: fires on the DT events a Data Connector pushed to `disruptive-receiver`, read
from the receiver's spool; it needs no DT connection at all.

The reading and filtering is the client's `AsyncSpoolReader`; here are the condition, the position (the
spool's seq: every row up to it dealt with) and Airflow's shared streams. In a triggerer, the triggers
that read one spool with the same projects and filters share one reader (ack mode, as the DT stream's
triggers do; see `shared`): a watcher's seq is written to its asset state store only once Airflow
has stored what it fired. A trigger that joins a running reader reads the rows before it itself first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncGenerator, Hashable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from airflow.triggers.shared_stream import SharedStreamProducer

from airflow_provider.conditions import check, evaluate
from airflow_provider.hooks.spool import aspool_target, check_source
from airflow_provider.pushes import push_document
from airflow_provider.triggers.shared import AcknowledgedProducer, Reading, SharedStreamTrigger, Subscriber
from tap_disruptive.client.drivers.spool import AsyncSpoolReader
from tap_disruptive.client.protocol.errors import FatalError
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.retry import Backoff
from tap_disruptive.client.protocol.spooled import PushedEvent, SpoolUnavailable
from tap_disruptive.spool import shown_target

logger = logging.getLogger(__name__)

# Where an asset watcher keeps its position: the spool seq up to which every row has been dealt with.
SPOOL_POSITION_KEY = "disruptive_spool_seq"


@dataclass(frozen=True)
class SpoolPosition:
    """Every spool row up to `seq` has been dealt with (fired on, or not matching)."""

    seq: int

    def to_json(self) -> int:
        return self.seq

    @classmethod
    def from_json(cls, value: Any) -> SpoolPosition:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"a stored spool position is a seq (an integer >= 0), not {value!r}")
        return cls(value)


@dataclass(frozen=True)
class SpoolBatch:
    """What subscribers receive: one of the reader's deliveries (maybe empty), or a fatal error."""

    seq: int
    events: tuple[PushedEvent, ...]
    through_seq: int
    failure: str | None = None


def spool_event_document(pushed: PushedEvent) -> dict[str, Any]:
    """The stream trigger's event document, with the push's labels and device type and its spool seq."""
    return {**push_document(pushed), "spool_seq": pushed.seq}


class DisruptiveSpoolTrigger(SharedStreamTrigger[SpoolPosition, SpoolBatch]):
    """Fires on the events of `project_ids` in a receiver's spool that pass DT's four filters (the labels
    and device type being those the push carried) and `condition`.

    The spool is `spool` (the receiver's `--spool`: a SQLite path or a postgresql:// URL) or the one the
    Airflow connection `spool_conn_id` names (see `hooks.spool`); prefer the connection for a URL with a
    password, which would otherwise be kept in the serialized DAG and the trigger's row.

    With the defaults it fires on the first match after `start_seq` (else after the spool's newest row
    when it starts), with `{"status": "success", "event": {...}}`, and ends (a sensor's wait); in an asset
    watcher it fires on every match, in seq order, for good, resuming after its stored seq (a first life
    from `start_seq`, else from now). A missing spool or connection fires `{"status": "error", ...}`.
    """

    def __init__(
        self,
        *,
        project_ids: Sequence[str] | str,
        spool: str | None = None,
        spool_conn_id: str | None = None,
        device_ids: list[str] | None = None,
        label_filters: dict[str, str | None] | None = None,
        device_types: list[str] | None = None,
        event_types: list[str] | None = None,
        condition: dict[str, Any] | None = None,
        start_seq: int | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        check_source(spool, spool_conn_id)
        projects = [project_ids] if isinstance(project_ids, str) else list(project_ids)
        if not projects or not all(isinstance(project, str) and project for project in projects):
            raise ValueError("project_ids: give the DT project id(s) whose events to take")
        if start_seq is not None and (isinstance(start_seq, bool) or start_seq < 0):
            raise ValueError("start_seq must be a spool seq (an integer >= 0)")
        self.spool = spool
        self.spool_conn_id = spool_conn_id
        # Normalised so that serialisation, and so the trigger's identity, is deterministic.
        self.project_ids = sorted(set(projects))
        self.event_filter = EventFilter.of(device_ids, label_filters, device_types, event_types)
        self.condition = check(condition) if condition is not None else None
        self.start_seq = start_seq

    def serialize(self) -> tuple[str, dict[str, Any]]:
        filters = self.event_filter.to_json()
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "project_ids": self.project_ids,
                "spool": self.spool,
                "spool_conn_id": self.spool_conn_id,
                "device_ids": filters["device_ids"],
                "label_filters": filters["label_filters"],
                "device_types": filters["device_types"],
                "event_types": filters["event_types"],
                "condition": self.condition,
                "start_seq": self.start_seq,
            },
        )

    def __repr__(self) -> str:
        # Airflow's repr shows every kwarg; a spool URL's password must not be one of them.
        classpath, kwargs = self.serialize()
        if self.spool is not None:
            kwargs["spool"] = shown_target(self.spool)
        shown: str = BaseTrigger.repr(classpath, kwargs)
        return shown

    # --- the shared stream (Airflow 3.3): one reader per spool, projects and filters in a triggerer ---

    def shared_stream_key(self) -> Hashable:
        if self.spool_conn_id is not None:
            source: tuple[str, ...] = ("connection", self.spool_conn_id)
        else:
            assert self.spool is not None
            # Airflow logs the key: the target's shown form, and a digest that tells passwords apart.
            digest = hashlib.sha256(self.spool.encode()).hexdigest()[:16]
            source = ("spool", shown_target(self.spool), digest)
        filters = json.dumps(self.event_filter.to_json(), sort_keys=True)
        return ("disruptive-spool", *source, ",".join(self.project_ids), filters)

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        return SpoolStreamProducer(cls(**kwargs))

    def _private_producer(self) -> SpoolStreamProducer:
        return SpoolStreamProducer(self, private=True)

    # --- matching ----------------------------------------------------------------------------------------

    async def _join(self) -> Reading[SpoolPosition, SpoolBatch]:
        target = await aspool_target(self.spool, self.spool_conn_id)
        position = await self._starting_position(target)
        subscriber = Subscriber(position, self.asset_state_store, SPOOL_POSITION_KEY)
        return Reading(
            subscriber, take=partial(self._take, subscriber), catch_up=partial(self._catch_up, target)
        )

    def _take(self, subscriber: Subscriber[SpoolPosition], batch: SpoolBatch) -> Iterator[TriggerEvent]:
        """Fire on the batch's matches after the subscriber's position; its position moves past each
        match as it fires, and past the batch at its end."""
        for pushed in batch.events:
            if pushed.seq <= subscriber.position.seq:
                continue  # dealt with already (a shared reader may start before this trigger's seq)
            document = spool_event_document(pushed)
            if evaluate(self.condition, document):
                subscriber.position = SpoolPosition(pushed.seq)
                yield TriggerEvent({"status": "success", "event": document})  # type: ignore[no-untyped-call]
        if batch.through_seq > subscriber.position.seq:
            subscriber.position = SpoolPosition(batch.through_seq)

    async def _starting_position(self, target: str) -> SpoolPosition:
        """A watcher's stored seq; else `start_seq`; else the spool's newest row (only what comes next)."""
        if self.asset_state_store is not None:
            stored = await self.asset_state_store.aget(SPOOL_POSITION_KEY)
            if stored is not None:
                try:
                    return SpoolPosition.from_json(stored)
                except ValueError as error:
                    raise FatalError(f"the watcher's stored spool position is unreadable: {error}") from None
        if self.start_seq is not None:
            return SpoolPosition(self.start_seq)
        reader = AsyncSpoolReader(target)
        try:
            return SpoolPosition(await _last_seq(reader))
        finally:
            await reader.aclose()

    async def _catch_up(self, target: str, position: SpoolPosition) -> list[SpoolBatch]:
        """The spool's matching rows after `position`, up to its end as it is now."""
        reader = AsyncSpoolReader(target)
        batches = []
        try:
            async for delivery in reader.deliveries(
                position.seq, self.project_ids, self.event_filter, live=False
            ):
                batches.append(SpoolBatch(0, tuple(delivery.events), delivery.through_seq))
        finally:
            await reader.aclose()
        return batches


class SpoolStreamProducer(AcknowledgedProducer[SpoolPosition, SpoolBatch]):
    """Reads one spool for every subscriber, from the earliest of their seqs, and writes watchers'
    positions once Airflow has stored what they fired."""

    def __init__(self, config: DisruptiveSpoolTrigger, private: bool = False) -> None:
        """`private`: a reader for one trigger alone (run on its own), which waits for nobody."""
        super().__init__(config.shared_stream_key(), private)
        self.config = config

    def __repr__(self) -> str:
        return f"SpoolStreamProducer({self.key!r})"

    def failure(self, message: str) -> SpoolBatch:
        return SpoolBatch(0, (), 0, failure=message)

    async def follow(self) -> AsyncGenerator[SpoolBatch, None]:
        """The spool's deliveries, after the earliest seq among the subscribers (else its newest row)."""
        config = self.config
        target = await aspool_target(config.spool, config.spool_conn_id)
        reader = AsyncSpoolReader(target)
        try:
            # The earliest seq of the subscribers there now; those that come later catch up themselves.
            positions = [s.position.seq for s in self.cohort.subscribers.values()]
            self.cohort.started = True
            start = min(positions) if positions else await _last_seq(reader)
            logger.info(
                "spool %s opens for %d trigger(s), after seq %d", shown_target(target), len(positions), start
            )
            async for delivery in reader.deliveries(start, config.project_ids, config.event_filter):
                yield SpoolBatch(0, tuple(delivery.events), delivery.through_seq)
        finally:
            await reader.aclose()


async def _last_seq(reader: AsyncSpoolReader) -> int:
    """The spool's newest seq, retried as the reader retries its reads (a locked file, a restarting
    database); FatalError (GaveUp) for a spool that is missing or stays unavailable."""
    retry = Backoff(reader.settings)
    while True:
        try:
            return await reader.last_seq()
        except SpoolUnavailable as error:
            await asyncio.sleep(retry.next_wait(error))
