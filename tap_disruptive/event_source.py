"""Where the tap's events come from: each project followed live (history first), or history only.

Yields (project id, events, complete-until) batches; an empty batch is a heartbeat, so the tap can
end a quiet run on time. Several projects are followed at once, each in a thread of its own.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tap_disruptive.drivers.sync import DisruptiveClient, EventStream
from tap_disruptive.model.times import format_timestamp
from tap_disruptive.protocol.events import Event
from tap_disruptive.protocol.filters import EventFilter

# How often a thread following a quiet project still reports, so the tap can check its bounds.
_HEARTBEAT = 1.0


@dataclass
class Batch:
    project_id: str
    events: list[Event]
    # Every matching event up to this time has been delivered (None: nothing is known yet).
    complete_until: str | None


class _Done:
    pass


def history_batches(
    client: DisruptiveClient,
    project_ids: list[str],
    event_filter: EventFilter,
    starts: dict[str, str],
    lag: float,
) -> Iterator[Batch]:
    """Each project's history since its start, up to now; complete until `lag` seconds ago, since DT
    indexes events into history with a delay."""
    for project_id in project_ids:
        end = time.time()
        devices = client.devices(project_id, event_filter)
        selected = event_filter.selected_device_ids(devices)
        events = client.history(project_id, selected, starts[project_id], event_filter.event_types)
        events = [event for event in events if event_filter.matches(event, None)]
        yield Batch(project_id, events, format_timestamp(max(end - lag, 0)))


def live_batches(
    client: DisruptiveClient, project_ids: list[str], event_filter: EventFilter, starts: dict[str, str | None]
) -> Iterator[Batch]:
    """Each project followed: history since its start first, then the live stream."""
    streams = {
        project_id: client.follow(project_id, event_filter, starts[project_id]) for project_id in project_ids
    }
    if len(streams) > 1:
        yield from _merged(streams)
        return
    ((project_id, stream),) = streams.items()
    try:
        for events in stream.batches():
            yield Batch(project_id, events, stream.follower.complete_until())
    finally:
        stream.close()


def _merged(streams: dict[str, EventStream]) -> Iterator[Batch]:
    merged: queue.Queue[Batch | BaseException | _Done] = queue.Queue(maxsize=64)
    stop = threading.Event()

    def pump(project_id: str, stream: EventStream) -> None:
        # Each thread runs, and closes, its own stream; it stops at its next batch once told to.
        try:
            for events in stream.batches():
                if stop.is_set():
                    break
                merged.put(Batch(project_id, events, stream.follower.complete_until()))
        except BaseException as error:  # handed to the consuming thread
            merged.put(error)
        finally:
            stream.close()
            merged.put(_Done())

    threads = [
        threading.Thread(target=pump, args=item, name=f"follow-{item[0]}", daemon=True)
        for item in streams.items()
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            try:
                item = merged.get(timeout=_HEARTBEAT)
            except queue.Empty:
                yield Batch("", [], None)
                continue
            if isinstance(item, _Done):
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
