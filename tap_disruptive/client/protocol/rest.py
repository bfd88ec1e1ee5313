"""DT's REST calls as protocol steps: authorised, retried, paged. Each is a generator of commands
(see `commands`) whose return value is the result, so drivers and the follower can compose them."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tap_disruptive.client.protocol.auth import TokenCache
from tap_disruptive.client.protocol.clock import ServerClock
from tap_disruptive.client.protocol.commands import (
    Answer,
    CollectSend,
    Command,
    OpenStream,
    Send,
    Sleep,
    StartSend,
)
from tap_disruptive.client.protocol.errors import (
    AuthenticationError,
    ConnectionFailed,
    DisruptiveError,
    TransientError,
)
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.http import HttpRequest, HttpResponse, failure
from tap_disruptive.client.protocol.retry import Backoff
from tap_disruptive.client.protocol.settings import ClientSettings
from tap_disruptive.client.protocol.stats import ClientStats
from tap_disruptive.model.devices import Device


class Rest:
    """Authorised, retried REST requests, and DT's paged resources built on them."""

    def __init__(
        self, settings: ClientSettings, tokens: TokenCache, stats: ClientStats, clock: ServerClock
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.stats = stats
        # Every answer's Date header tells DT's time.
        self.clock = clock

    def __repr__(self) -> str:
        return f"Rest(api_url={self.settings.api_url!r})"

    # --- single and batched requests -----------------------------------------------------------------

    def authorization(self) -> Generator[Command, Answer, str]:
        """The Authorization header, fetching a token first when the cached one is missing or due."""
        header = self.tokens.header()
        retry = Backoff(self.settings)
        while header is None:
            (answer,) = yield from self._send([self.tokens.token_request()], 1)
            try:
                if isinstance(answer, ConnectionFailed):
                    raise answer
                self.tokens.accept(answer)
            except TransientError as error:
                self.stats.faults[error.kind] += 1
                yield Sleep(retry.next_wait(error))
            header = self.tokens.header()
        return header

    def send(self, request: HttpRequest, what: str) -> Generator[Command, Answer, HttpResponse]:
        """One request, answered 200; raises the fatal error an answer means, after retrying the rest."""
        (response,) = yield from self.send_all([request], what=[what])
        return response

    def send_all(
        self, requests: Sequence[HttpRequest], what: Sequence[str], concurrency: int = 1
    ) -> Generator[Command, Answer, list[HttpResponse]]:
        """Many requests, each answered 200, sent `concurrency` at a time; transient failures are retried
        in rounds with backoff, a 401 once with a fresh token, and anything fatal raises."""
        started = yield from self.start_all(requests, what, concurrency)
        return (yield from self.finish_all(started))

    def start_all(
        self, requests: Sequence[HttpRequest], what: Sequence[str], concurrency: int = 1
    ) -> Generator[Command, Answer, InFlight]:
        """Start `send_all`'s requests and return at once; `finish_all` waits for them."""
        header = yield from self.authorization()
        handle = yield StartSend(_authorized(requests, header), concurrency)
        assert isinstance(handle, int), "a driver answers StartSend with a handle"
        return InFlight(handle, tuple(requests), tuple(what), concurrency)

    def finish_all(self, started: InFlight) -> Generator[Command, Answer, list[HttpResponse]]:
        """The answers of requests started with `start_all`, as `send_all` gives them."""
        requests, what = started.requests, started.what
        answers = self._observed((yield CollectSend(started.handle)), len(requests))
        done: dict[int, HttpResponse] = {}
        pending = list(range(len(requests)))
        retry = Backoff(self.settings)
        refreshed = False
        while True:
            again: list[int] = []
            worst: TransientError | None = None
            unauthorized = False
            for index, answer in zip(pending, answers, strict=True):
                if isinstance(answer, HttpResponse) and answer.status == 200:
                    done[index] = answer
                    continue
                error = answer if isinstance(answer, ConnectionFailed) else failure(answer, what[index])
                if self._may_renew_token(error, refreshed):
                    unauthorized = True
                elif not isinstance(error, TransientError):
                    raise error
                else:
                    self.stats.faults[error.kind] += 1
                    if worst is None or (error.retry_after or 0) > (worst.retry_after or 0):
                        worst = error
                again.append(index)
            if not again:
                return [done[i] for i in range(len(requests))]
            if unauthorized:  # the token was refused: fetch a new one, once
                self.tokens.invalidate()
                refreshed = True
            if worst is not None:
                yield Sleep(retry.next_wait(worst))
            pending = again
            header = yield from self.authorization()
            answers = yield from self._send(
                _authorized([requests[i] for i in pending], header), started.concurrency
            )

    def _send(
        self, requests: Sequence[HttpRequest], concurrency: int
    ) -> Generator[Command, Answer, list[HttpResponse | ConnectionFailed]]:
        answer = yield Send(tuple(requests), concurrency)
        return self._observed(answer, len(requests))

    def _observed(self, answer: Answer, count: int) -> list[HttpResponse | ConnectionFailed]:
        assert isinstance(answer, list) and len(answer) == count, "a driver answers with one result each"
        for response in answer:
            if isinstance(response, HttpResponse):
                self.clock.observe_date(response.headers.get("date"))
        return answer

    def open_stream(
        self, project_id: str, params: Sequence[tuple[str, str]]
    ) -> Generator[Command, Answer, HttpResponse]:
        """Open the project's event stream; raises what a refusal means (transient ones included: the
        follower reconnects with a backoff of its own). A refused token is renewed once."""
        refreshed = False
        while True:
            header = yield from self.authorization()
            request = self.build(f"/projects/{project_id}/devices:stream", params, "stream")
            (authorized,) = _authorized([request], header)
            answer = yield OpenStream(authorized)
            if isinstance(answer, ConnectionFailed):
                raise answer
            assert isinstance(answer, HttpResponse)
            self.clock.observe_date(answer.headers.get("date"))
            if answer.status == 200:
                return answer
            error = failure(answer, f"project {project_id}")
            if not self._may_renew_token(error, refreshed):
                raise error
            self.tokens.invalidate()
            refreshed = True

    def _may_renew_token(self, error: DisruptiveError, renewed: bool) -> bool:
        """A 401 may mean a token revoked or expired early: worth one new token per call, no more."""
        return (
            isinstance(error, AuthenticationError)
            and not renewed
            and not self.settings.credentials.basic_auth
        )

    def build(
        self, path: str, params: Sequence[tuple[str, str]] = (), purpose: str = "request"
    ) -> HttpRequest:
        """A GET of DT's API (not sent: the caller yields it in a command); `purpose` names it in messages."""
        settings = self.settings
        return HttpRequest(
            "GET",
            settings.api_base + path,
            params=tuple(params),
            headers={"User-Agent": settings.user_agent, "Accept": "application/json"},
            timeout=settings.request_timeout,
            purpose=purpose,
        )

    # --- DT's resources ------------------------------------------------------------------------------

    def project(self, project_id: str) -> Generator[Command, Answer, dict[str, Any]]:
        """The project resource: proof that the credentials work and the project exists."""
        response = yield from self.send(
            self.build(f"/projects/{project_id}", purpose="project"), f"project {project_id}"
        )
        return json_object(response, "project")

    def projects(self) -> Generator[Command, Answer, list[dict[str, Any]]]:
        """The first page of projects the service account can see: proof that the credentials work."""
        response = yield from self.send(self.build("/projects", purpose="projects"), "the project list")
        projects, _ = page(json_object(response, "project list"), "projects")
        return [project for project in projects if isinstance(project, dict)]

    def devices(self, project_id: str, event_filter: EventFilter) -> Generator[Command, Answer, list[Device]]:
        """Every device of the project that the filter selects, over all pages."""
        found: list[Device] = []
        params = [*event_filter.device_query(), ("page_size", str(self.settings.device_page_size))]
        token = ""
        while True:
            page_params = [*params, ("page_token", token)] if token else params
            request = self.build(f"/projects/{project_id}/devices", page_params, purpose="devices")
            body = json_object((yield from self.send(request, f"project {project_id}")), "device list")
            devices, token = page(body, "devices")
            for resource in devices:
                try:
                    found.append(Device.from_resource(resource))
                except ValueError:
                    self.stats.faults["malformed_device"] += 1
            if not token:
                return found


@dataclass(frozen=True)
class InFlight:
    """Requests started by `Rest.start_all`, to be finished by `Rest.finish_all`."""

    handle: int
    requests: tuple[HttpRequest, ...]
    what: tuple[str, ...]
    concurrency: int


def _authorized(requests: Sequence[HttpRequest], header: str) -> tuple[HttpRequest, ...]:
    return tuple(
        replace(request, headers={**request.headers, "Authorization": header}) for request in requests
    )


def json_object(response: HttpResponse, what: str) -> dict[str, Any]:
    """A 200 answer's body as a JSON object; a body that is not one (a proxy's page, a cut body) is a
    fault worth retrying."""
    try:
        body = response.json()
    except ValueError:
        raise TransientError(f"the {what} answer is not JSON", kind="bad_answer") from None
    if not isinstance(body, dict):
        raise TransientError(f"the {what} answer is not a JSON object", kind="bad_answer")
    return body


def page(body: dict[str, Any], key: str) -> tuple[list[Any], str]:
    """A page of DT's paged resources: its items under `key`, and the token of the next page ("" if last)."""
    items, token = body.get(key, []), body.get("nextPageToken", "")
    if not isinstance(items, list) or not isinstance(token, str):
        raise TransientError(f"a page without a {key} list or nextPageToken", kind="bad_answer")
    return items, token
