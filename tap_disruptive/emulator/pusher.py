"""Data Connector delivery: every recorded event a connector forwards is POSTed to its URL.

Each connector has one queue and one worker, so its events go one request at a time, in the order they
were recorded. An attempt fails on a non-2xx answer, a connection error or no answer within the timeout
(10 s, as DT); a failed event is retried with exponential backoff and holds back the events behind it,
until it is acknowledged or older than the retention (12 h, as DT), when it is dropped. Delivery is
therefore at least once: a receiver that processed an event but answered too late gets it again.

While a connector is not ACTIVE nothing is queued for it, and what was queued is dropped: DT sends
neither the undelivered events nor those of the disabled period once it is enabled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass, fields

import aiohttp

from tap_disruptive.emulator.config import EmulatorConfig
from tap_disruptive.emulator.dataconnectors import ConnectorRegistry, DataConnector
from tap_disruptive.emulator.logs import LOG
from tap_disruptive.emulator.push_faults import (
    BURST,
    DUPLICATE,
    PUSH_FAULT_KINDS,
    REORDER,
    SLOW,
    PendingPushFault,
    PushFault,
)
from tap_disruptive.emulator.push_message import SIGNATURE_HEADER, push_body, signature
from tap_disruptive.emulator.push_metrics import PushMetrics
from tap_disruptive.emulator.store import EventStore, RecordedEvent
from tap_disruptive.model.ids import IdFactory

MAX_BACKOFF = 300.0
# A dead receiver must not exhaust memory: past this, a connector's oldest queued events are dropped.
MAX_QUEUED = 100_000
# Headers the push itself sets; a connector's custom headers cannot replace them.
_OWN_HEADERS = frozenset({"content-type", SIGNATURE_HEADER.lower()})


@dataclass
class Delivery:
    body: bytes
    queued_at: float  # monotonic seconds


@dataclass
class PushCounters:
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    # Attempts that repeated an event after a failure.
    retried: int = 0
    # Events dropped unacknowledged: older than the retention, or queued when the connector was disabled.
    expired: int = 0
    discarded: int = 0

    def as_json(self, queued: int) -> dict[str, int]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "queued": queued}


class ConnectorLane:
    """One connector's queue, the worker that empties it in order, its counters, metrics and faults."""

    def __init__(self, pusher: Pusher, connector: DataConnector) -> None:
        self.pusher = pusher
        self.connector = connector
        self.queue: deque[Delivery] = deque()
        self.faults: deque[PendingPushFault] = deque()
        self.counters = PushCounters()
        self.metrics = PushMetrics()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, delivery: Delivery) -> None:
        if len(self.queue) >= MAX_QUEUED:
            self.queue.popleft()
            self.counters.discarded += 1
        self.queue.append(delivery)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard_queued(self) -> None:
        self.counters.discarded += len(self.queue)
        self.queue.clear()

    def add_fault(self, fault: PushFault) -> None:
        self.faults.append(PendingPushFault(fault))
        self._wake.set()

    def stop(self) -> None:
        self.discard_queued()
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await self._await_queued(1, None)
            pending = self.faults[0] if self.faults else None
            kind = pending.fault.kind if pending else None
            if pending is not None and kind in (BURST, REORDER):
                wanted = pending.remaining if kind == BURST else 2
                await self._await_queued(wanted, pending.fault.seconds)
                batch = [self.queue.popleft() for _ in range(min(wanted, len(self.queue)))]
                if not batch:
                    continue  # the connector was disabled while the fault held its events
                if kind == REORDER:
                    batch.reverse()
                self._spend(pending, wanted if kind == BURST else 1)
            else:
                batch = [self.queue.popleft()]
            for delivery in batch:
                await self._deliver_with_faults(delivery)

    async def _await_queued(self, count: int, within: float | None) -> None:
        """Wait until `count` events are queued, or `within` seconds passed (None: however long)."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while len(self.queue) < count:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    def _spend(self, pending: PendingPushFault, events: int) -> None:
        pending.remaining -= events
        if pending.remaining <= 0 and self.faults and self.faults[0] is pending:
            self.faults.popleft()

    def _head(self, kind: str) -> PendingPushFault | None:
        pending = self.faults[0] if self.faults else None
        return pending if pending is not None and pending.fault.kind == kind else None

    async def _deliver_with_faults(self, delivery: Delivery) -> None:
        slow = self._head(SLOW)
        if slow is not None:
            self._spend(slow, 1)
            await asyncio.sleep(slow.fault.seconds)
        if await self._deliver(delivery):
            duplicate = self._head(DUPLICATE)
            if duplicate is not None:
                self._spend(duplicate, 1)
                await self._deliver(delivery)

    async def _deliver(self, delivery: Delivery) -> bool:
        """Push one event until acknowledged (True), or until dropped (False)."""
        settings = self.pusher.config
        backoff = settings.connector_backoff
        counters = self.counters
        first = True
        while True:
            if not self.connector.active:
                counters.discarded += 1
                return False
            age = time.monotonic() - delivery.queued_at
            if age > settings.connector_retention:
                counters.expired += 1
                LOG.warning(
                    "data connector %s: an event unacknowledged for %.0f s was dropped",
                    self.connector.connector_id,
                    age,
                )
                return False
            counters.attempted += 1
            if not first:
                counters.retried += 1
            first = False
            if await self._post(delivery.body):
                counters.succeeded += 1
                return True
            counters.failed += 1
            await asyncio.sleep(min(backoff, max(0.0, settings.connector_retention - age) + 0.001))
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _post(self, body: bytes) -> bool:
        """One attempt: True if the receiver answered 2xx in time."""
        http = self.connector.http
        headers = {name: value for name, value in http.headers.items() if name.lower() not in _OWN_HEADERS}
        headers["Content-Type"] = "application/json"
        if http.signature_secret:
            now = time.time()
            headers[SIGNATURE_HEADER] = signature(
                body, http.signature_secret, now, self.pusher.ids.new_id(now)
            )
        loop = asyncio.get_running_loop()
        started = loop.time()
        timeout = aiohttp.ClientTimeout(total=self.pusher.config.connector_timeout)
        try:
            session = self.pusher.session()
            async with session.post(
                http.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                await response.read()
                acknowledged = 200 <= response.status < 300
                outcome = f"status {response.status}"
        except TimeoutError:
            acknowledged, outcome = False, "no answer in time"
        except (aiohttp.ClientError, ValueError) as error:  # ValueError: a URL or header aiohttp refuses
            acknowledged, outcome = False, type(error).__name__
        self.metrics.record(loop.time() - started, acknowledged)
        if not acknowledged:
            # The URL and headers stay out of the log: either may carry a receiver's credentials.
            LOG.info("data connector %s: push failed (%s)", self.connector.connector_id, outcome)
        return acknowledged


class Pusher:
    """Feeds recorded events to each ACTIVE connector's lane; a store listener."""

    def __init__(
        self, registry: ConnectorRegistry, config: EmulatorConfig, ids: IdFactory | None = None
    ) -> None:
        self.registry = registry
        self.config = config
        self.ids = ids or IdFactory()
        self.lanes: dict[str, ConnectorLane] = {}
        self.faults_injected: Counter[str] = Counter(dict.fromkeys(sorted(PUSH_FAULT_KINDS), 0))
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def stop(self) -> None:
        for lane in self.lanes.values():
            lane.stop()
        if self._session is not None:
            await self._session.close()

    def lane(self, connector: DataConnector) -> ConnectorLane:
        lane = self.lanes.get(connector.connector_id)
        if lane is None:
            lane = self.lanes[connector.connector_id] = ConnectorLane(self, connector)
        lane.connector = connector
        return lane

    def on_events(self, events: list[RecordedEvent]) -> None:
        if not self.registry:
            return
        now = time.monotonic()
        by_project: dict[str, list[DataConnector]] = {}
        for device, event_type, text in events:
            connectors = by_project.get(device.project_id)
            if connectors is None:
                connectors = by_project[device.project_id] = [
                    c for c in self.registry.in_project(device.project_id) if c.active
                ]
            for connector in connectors:
                if connector.forwards(event_type):
                    body = push_body(text, device, connector.labels)
                    self.lane(connector).enqueue(Delivery(body, now))

    def sync(self, connector: DataConnector, store: EventStore) -> int:
        """Queue the newest event of each type of every device in the project; returns how many."""
        if not connector.active:
            return 0
        now = time.monotonic()
        found = []
        for device in store.projects.get(connector.project_id, {}).values():
            for position, event_type, text in store.latest_events(device):
                if connector.forwards(event_type):
                    found.append((position, push_body(text, device, connector.labels)))
        found.sort(key=lambda item: item[0])
        lane = self.lane(connector)
        for _position, body in found:
            lane.enqueue(Delivery(body, now))
        return len(found)

    def connector_changed(self, connector: DataConnector) -> None:
        if not connector.active and connector.connector_id in self.lanes:
            self.lanes[connector.connector_id].discard_queued()

    def connector_removed(self, connector: DataConnector) -> None:
        lane = self.lanes.get(connector.connector_id)
        if lane is not None:
            lane.stop()

    def metrics(self, connector: DataConnector) -> dict[str, object]:
        return self.lane(connector).metrics.resource()

    def inject(self, fault: PushFault) -> int:
        """Schedule `fault` on its connector, or on every connector; returns how many it reached."""
        targets = [c for c in self.registry if fault.connector in (None, c.connector_id)]
        for connector in targets:
            self.lane(connector).add_fault(fault)
        if targets:
            self.faults_injected[fault.kind] += 1
        return len(targets)

    def clear_faults(self) -> None:
        for lane in self.lanes.values():
            lane.faults.clear()

    def status(self) -> dict[str, object]:
        """Push counters over every connector there ever was, and by connector id."""
        by_connector = {
            connector_id: lane.counters.as_json(len(lane.queue)) for connector_id, lane in self.lanes.items()
        }
        totals: Counter[str] = Counter(dict.fromkeys(PushCounters().as_json(0), 0))
        for counts in by_connector.values():
            totals.update(counts)
        return {**totals, "by_connector": by_connector, "faults_injected": dict(self.faults_injected)}
