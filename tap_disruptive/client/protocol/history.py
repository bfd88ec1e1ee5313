"""DT's event history of one project's devices, as requests and pages: what the time-slice scan (`scan`)
and the per-device plan (`plan`) both ask and read."""

from __future__ import annotations

from collections.abc import Generator, Sequence

from tap_disruptive.client.protocol.commands import Answer, Command
from tap_disruptive.client.protocol.errors import TransientError
from tap_disruptive.client.protocol.events import Event, history_page
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.http import HttpRequest
from tap_disruptive.client.protocol.rest import InFlight, Rest
from tap_disruptive.client.protocol.settings import ClientSettings
from tap_disruptive.client.protocol.stats import ClientStats
from tap_disruptive.model.times import shift

# History is asked for from slightly before a read's start and cut locally, so that a server treating
# start_time as exclusive loses no event stamped exactly at it.
_START_ALLOWANCE = 0.001

# A page: its events (or why one is not an event), and the next page's token ("" on the last).
Page = tuple[list[Event | ValueError], str]


class ProjectHistory:
    """Requests for the history of a project's devices, and their pages read and cut to a span."""

    def __init__(
        self,
        settings: ClientSettings,
        rest: Rest,
        project_id: str,
        event_filter: EventFilter,
        stats: ClientStats,
    ) -> None:
        self.settings = settings
        self.rest = rest
        self.project_id = project_id
        self.filter = event_filter
        self.stats = stats

    def __repr__(self) -> str:
        return f"ProjectHistory(project {self.project_id})"

    def request(self, device_id: str, start: str, end: str | None, token: str = "") -> HttpRequest:
        """A page of the device's events stamped from `start` to before `end` (None: up to now)."""
        params = [
            ("start_time", shift(start, -_START_ALLOWANCE)),
            ("page_size", str(self.settings.history_page_size)),
        ]
        if end is not None:
            params.append(("end_time", end))
        params += [("event_types", name) for name in sorted(self.filter.event_types or ())]
        if token:
            params.append(("page_token", token))
        return self.rest.build(f"/projects/{self.project_id}/devices/{device_id}/events", params, "history")

    def pages(
        self, device_ids: Sequence[str], requests: Sequence[HttpRequest]
    ) -> Generator[Command, Answer, list[Page]]:
        """Send the devices' requests, `history_concurrency` at a time; their pages, in order."""
        started = yield from self.start(device_ids, requests)
        return (yield from self.finish(started))

    def start(
        self, device_ids: Sequence[str], requests: Sequence[HttpRequest]
    ) -> Generator[Command, Answer, InFlight]:
        """Start the devices' requests; `finish` waits for their pages."""
        self.stats.history_requests += len(requests)
        return (
            yield from self.rest.start_all(
                requests,
                [f"history of device {device_id}" for device_id in device_ids],
                self.settings.history_concurrency,
            )
        )

    def finish(self, started: InFlight) -> Generator[Command, Answer, list[Page]]:
        """The pages of requests begun with `start`, in order."""
        responses = yield from self.rest.finish_all(started)
        pages: list[Page] = []
        for response in responses:
            try:
                pages.append(history_page(response.body))
            except ValueError as error:
                raise TransientError(str(error), kind="bad_answer") from None
        return pages

    def collect(
        self, items: list[Event | ValueError], start: str, end: str | None, found: dict[str, Event]
    ) -> None:
        """Add a page's events stamped within [start, end) to `found`, once each by id."""
        for event in items:
            if isinstance(event, ValueError):
                self.stats.faults["malformed_history_event"] += 1
                continue
            # Within the span only: the allowance before its start, and a server whose end_time is
            # inclusive, would otherwise bring events of the neighbouring spans.
            if event.timestamp >= start and (end is None or event.timestamp < end):
                found.setdefault(event.event_id, event)
