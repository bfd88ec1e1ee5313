"""The client against the emulator: REST calls, fatal errors that end at once with one clear line,
token refresh, and secrets that stay out of logs and messages. Sync and async drivers alike."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from tap_disruptive import __version__
from tap_disruptive.client.drivers.aio import AsyncDisruptiveClient
from tap_disruptive.client.drivers.sync import DisruptiveClient
from tap_disruptive.client.protocol.errors import (
    AuthenticationError,
    BadRequest,
    FatalError,
    GaveUp,
    NotFound,
    PermissionDenied,
)
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.settings import ClientSettings, Credentials
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.testing import wait_until
from tests.support.emulators import QUIET, StartEmulator
from tests.support.follow import FAST, FollowThread, now_stamp, settings_for

pytestmark = pytest.mark.e2e


def first_of(
    settings: ClientSettings, follow: Callable[[Any], Any], use_async: bool, timeout: float = 30
) -> Any:
    """With a client of these settings, follow until the first delivery with events, or until the
    follower raises; returns the events. The client is closed at the end."""
    if not use_async:
        with DisruptiveClient(settings) as client, follow(client) as stream:
            for delivery in stream.deliveries():
                if delivery.events:
                    return delivery.events

    async def run() -> Any:
        async with AsyncDisruptiveClient(settings) as client:
            stream = follow(client)
            try:
                async for delivery in stream.deliveries():
                    if delivery.events:
                        return delivery.events
            finally:
                await stream.aclose()

    return asyncio.run(asyncio.wait_for(run(), timeout))


def rest(emulator: EmulatorProcess, use_async: bool, call: str, *args: Any, **settings: Any) -> Any:
    the_settings = settings_for(emulator, **settings)
    if not use_async:
        with DisruptiveClient(the_settings) as client:
            return getattr(client, call)(*args)

    async def run() -> Any:
        async with AsyncDisruptiveClient(the_settings) as client:
            return await getattr(client, call)(*args)

    return asyncio.run(run())


MODES = pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])


@MODES
def test_devices_paged_and_filtered(shared_quiet_emulator: EmulatorProcess, use_async: bool) -> None:
    emulator = shared_quiet_emulator
    everything = rest(emulator, use_async, "devices", emulator.project_id, None, device_page_size=5)
    assert len(everything) == 24
    room = everything[0].labels["room"]
    in_room = rest(
        emulator, use_async, "devices", emulator.project_id, EventFilter.of(label_filters={"room": room})
    )
    assert [d.name for d in in_room] == [d.name for d in everything if d.labels["room"] == room]
    project = rest(emulator, use_async, "project", emulator.project_id)
    assert project["name"] == f"projects/{emulator.project_id}"
    agents = emulator.status()["user_agents"]
    assert f"tap-disruptive/{__version__}" in agents


@MODES
def test_history_of_many_devices_over_pages(start_emulator: StartEmulator, use_async: bool) -> None:
    emulator = start_emulator(
        "--rate", "0", "--history-span", "3000", "--history-interval", "60", "--devices", "30"
    )
    events = rest(
        emulator,
        use_async,
        "history",
        emulator.project_id,
        "2000-01-01T00:00:00Z",
        None,
        None,
        history_page_size=7,
        history_concurrency=4,
        slice_events=200,
    )
    ledger, _ = emulator.ledger()
    assert sorted(e.event_id for e in events) == sorted(e["eventId"] for e in ledger)
    assert [(e.timestamp, e.event_id) for e in events] == sorted((e.timestamp, e.event_id) for e in events)
    touches = rest(
        emulator,
        use_async,
        "history",
        emulator.project_id,
        "2000-01-01T00:00:00Z",
        None,
        EventFilter.of(event_types=["touch"]),
    )
    assert touches and {e.event_type for e in touches} == {"touch"}


@MODES
def test_rest_retries_transient_answers(quiet_emulator: EmulatorProcess, use_async: bool) -> None:
    quiet_emulator.inject("http", status=503, scope="rest", count=2)
    quiet_emulator.inject("http", status=429, scope="rest", count=1, retry_after=1)
    devices = rest(quiet_emulator, use_async, "devices", quiet_emulator.project_id)
    assert len(devices) == 24


@MODES
def test_rest_gives_up_on_endless_trouble(quiet_emulator: EmulatorProcess, use_async: bool) -> None:
    quiet_emulator.inject("http", status=503, scope="rest", count=100)
    with pytest.raises(GaveUp, match=r"gave up after 3 failed attempts in a row; last: .*HTTP 503") as caught:
        rest(quiet_emulator, use_async, "devices", quiet_emulator.project_id, max_attempts=3)
    assert "\n" not in str(caught.value)


# --- fatal errors end at once, in one line ---------------------------------------------------------------


def follow_settings(emulator: EmulatorProcess, **changes: Any) -> ClientSettings:
    return settings_for(emulator, **changes)


@MODES
@pytest.mark.parametrize("basic_auth", [False, True], ids=["oauth", "basic"])
def test_wrong_credentials_fail_fast(
    quiet_emulator: EmulatorProcess, use_async: bool, basic_auth: bool
) -> None:
    emulator = quiet_emulator
    wrong = "a-wrong-secret-of-proper-length-0000000"
    settings = ClientSettings(
        Credentials(emulator.key_id, wrong, emulator.email, basic_auth=basic_auth),
        api_url=emulator.api_url,
        token_url=emulator.token_url,
        **FAST,  # type: ignore[arg-type]
    )
    with pytest.raises(AuthenticationError) as caught:
        first_of(settings, lambda client: client.follow(emulator.project_id), use_async)
    message = str(caught.value)
    assert "\n" not in message and wrong not in message
    assert emulator.key_id in message or "credentials" in message
    # No stream was served, and the token endpoint was asked at most once: nothing was retried.
    assert emulator.status()["connections_served"] == 0


@MODES
def test_unknown_project_fails_fast(quiet_emulator: EmulatorProcess, use_async: bool) -> None:
    with pytest.raises(NotFound, match="project c0nosuchproject00000 not found") as caught:
        first_of(
            follow_settings(quiet_emulator), lambda client: client.follow("c0nosuchproject00000"), use_async
        )
    assert "\n" not in str(caught.value)
    assert quiet_emulator.status()["connections_served"] == 0


@MODES
@pytest.mark.parametrize(("status", "error"), [(403, PermissionDenied), (400, BadRequest), (404, NotFound)])
def test_refusals_on_connect_are_fatal(
    quiet_emulator: EmulatorProcess, use_async: bool, status: int, error: type[FatalError]
) -> None:
    quiet_emulator.inject("http", status=status, count=5)
    with pytest.raises(error):
        first_of(
            follow_settings(quiet_emulator),
            lambda client: client.follow(quiet_emulator.project_id),
            use_async,
        )
    # Refused once, not retried: four of the five answers are still queued, so the next connect is refused.
    answer = quiet_emulator.http.get(
        f"{quiet_emulator.api_url}/projects/{quiet_emulator.project_id}/devices:stream",
        stream=True,
        timeout=10,
    )
    assert answer.status_code == status
    answer.close()


@MODES
def test_a_refused_token_is_refreshed_once_and_the_stream_goes_on(
    quiet_emulator: EmulatorProcess, use_async: bool
) -> None:
    device_id = quiet_emulator.create_device("touch")
    quiet_emulator.inject("http", status=401, count=1)
    follower = FollowThread(follow_settings(quiet_emulator), quiet_emulator.project_id, use_async=use_async)
    assert wait_until(lambda: quiet_emulator.status()["open_streams"] == 1, timeout=20)
    quiet_emulator.publish(device_id, "touch")
    (event,), _ = quiet_emulator.ledger(device_ids=device_id)
    assert not follower.wait_for({event["eventId"]}, timeout=20)
    follower.stop()
    assert follower.failure is None
    assert quiet_emulator.status()["tokens_issued"] == 2


@MODES
def test_tokens_are_refreshed_across_a_short_lifetime(start_emulator: StartEmulator, use_async: bool) -> None:
    emulator = start_emulator(*QUIET, "--token-lifetime", "2")
    device_id = emulator.create_device("touch")
    follower = FollowThread(
        follow_settings(emulator), emulator.project_id, start_time=now_stamp(), use_async=use_async
    )
    expected = set()
    for _ in range(4):
        assert wait_until(lambda: emulator.status()["open_streams"] == 1, timeout=20)
        emulator.publish(device_id, "touch")
        time.sleep(1.5)
        emulator.inject("end")  # each reconnect needs a live token, and so does each gap fill
    time.sleep(1)
    events, _ = emulator.ledger(device_ids=device_id)
    expected = {event["eventId"] for event in events}
    assert not follower.wait_for(expected, timeout=30)
    follower.stop()
    assert follower.failure is None
    assert follower.stats is not None
    assert not any(kind.startswith("http_401") for kind in follower.stats.faults)
    assert emulator.status()["tokens_issued"] >= 3


def test_secrets_never_reach_logs(quiet_emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    device_id = quiet_emulator.create_device("touch")
    follower = FollowThread(
        follow_settings(quiet_emulator), quiet_emulator.project_id, start_time=now_stamp()
    )
    assert wait_until(lambda: quiet_emulator.status()["open_streams"] == 1, timeout=20)
    quiet_emulator.publish(device_id, "touch")
    quiet_emulator.inject("cut")
    time.sleep(2)
    follower.stop()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # urllib3 and the client did log at DEBUG
    assert quiet_emulator.key_secret not in logged
    assert "Bearer" not in logged and "Basic " not in logged
