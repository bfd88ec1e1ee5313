"""Pieces of the protocol core on their own: filters, retry policy, dedupe, token cache, HTTP errors."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import backoff
import pytest

from tap_disruptive.client.protocol.auth import TokenCache
from tap_disruptive.client.protocol.clock import ServerClock
from tap_disruptive.client.protocol.dedupe import RecentIds
from tap_disruptive.client.protocol.errors import (
    AuthenticationError,
    BadRequest,
    FatalError,
    GaveUp,
    NotFound,
    PermissionDenied,
    TransientError,
)
from tap_disruptive.client.protocol.events import Event
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.http import HttpRequest, HttpResponse, failure
from tap_disruptive.client.protocol.retry import Backoff, wait_generator
from tap_disruptive.client.protocol.settings import ClientSettings, Credentials
from tap_disruptive.model.devices import Device

SECRET = "a-very-secret-value-0123456789-abcdef"


def settings(**overrides: Any) -> ClientSettings:
    return ClientSettings(
        Credentials("c0key000000000000000", SECRET, "sa@p.serviceaccount.d21s.com"), **overrides
    )


def event(device_id: str = "d1", event_type: str = "touch", event_id: str = "e1") -> Event:
    return Event.from_mapping(
        {
            "eventId": event_id,
            "targetName": f"projects/p1/devices/{device_id}",
            "eventType": event_type,
            "data": {event_type: {}},
            "timestamp": "2026-01-01T00:00:00.000000Z",
        }
    )


# --- filters --------------------------------------------------------------------------------------------


def test_filter_query_is_dt_parameters_in_dt_order() -> None:
    event_filter = EventFilter.of(
        device_ids=["b", "a"],
        label_filters={"room": "lab", "alarm": None},
        device_types=["temperature"],
        event_types=["touch", "temperature"],
    )
    assert event_filter.query() == [
        ("device_ids", "a"),
        ("device_ids", "b"),
        ("device_types", "temperature"),
        ("label_filters", "alarm"),
        ("label_filters", "room=lab"),
        ("event_types", "temperature"),
        ("event_types", "touch"),
    ]
    assert ("event_types", "touch") not in event_filter.device_query()


def test_filter_matches_events_and_devices() -> None:
    event_filter = EventFilter.of(
        label_filters={"room": "lab", "alarm": None}, device_types=["contact"], event_types=["contact"]
    )
    lab_contact = Device("p1", "d1", "contact", {"room": "lab", "alarm": "x"})
    assert event_filter.matches(event(event_type="contact"), lab_contact)
    assert not event_filter.matches(event(event_type="touch"), lab_contact)
    assert not event_filter.matches(
        event(event_type="contact"), Device("p1", "d1", "contact", {"room": "lab"})
    )
    assert not event_filter.matches(
        event(event_type="contact"), Device("p1", "d1", "motion", lab_contact.labels)
    )
    # Without the device, only what the event itself shows is judged; the server applied the rest.
    assert event_filter.matches(event(event_type="contact"))
    assert not EventFilter.of(device_ids=["d2"]).matches(event())
    assert not EventFilter().matches(event(event_type="ping"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device_types": ["toaster"]}, "device_types: unknown value 'toaster'"),
        ({"event_types": ["smell"]}, "event_types: unknown value 'smell'"),
        ({"event_types": "touch"}, "event_types must be a list"),
        ({"label_filters": ["room=lab"]}, "label_filters must be an object"),
        ({"label_filters": {"room": 3}}, "label_filters: the value of 'room' must be a string or null"),
        ({"label_filters": {"bad key": "x"}}, "label_filters: bad label key"),
        ({"device_ids": [""]}, "device_ids holds an empty"),
    ],
)
def test_bad_filters_get_one_clear_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FatalError, match=message) as caught:
        EventFilter.of(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_filter_json_is_deterministic() -> None:
    one = EventFilter.of(device_ids=["b", "a"], label_filters={"z": None, "a": "1"})
    two = EventFilter.of(device_ids=["a", "b"], label_filters={"a": "1", "z": None})
    assert one == two and one.to_json() == two.to_json()


# --- retry policy -----------------------------------------------------------------------------------------


def test_waits_grow_exponentially_to_the_cap_with_full_jitter() -> None:
    waits = wait_generator(initial=0.5, cap=8.0, max_retry_after=60.0, jitter=False)
    next(waits)
    plain = [waits.send(TransientError("x")) for _ in range(7)]
    assert plain == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    jittered = wait_generator(initial=0.5, cap=8.0, max_retry_after=60.0)
    next(jittered)
    values = [jittered.send(TransientError("x")) for _ in range(200)]
    assert all(0 <= value <= 8.0 for value in values)
    assert len(set(values)) > 100  # really random


def test_retry_after_is_honoured_within_a_limit() -> None:
    waits = wait_generator(initial=0.5, cap=8.0, max_retry_after=60.0)
    next(waits)
    assert waits.send(TransientError("busy", retry_after=7)) >= 7
    assert waits.send(TransientError("busy", retry_after=10_000)) == 60.0


def test_backoff_gives_up_after_the_budget_and_resets_on_success() -> None:
    policy = Backoff(settings(max_attempts=3))
    policy.next_wait(TransientError("one"))
    policy.next_wait(TransientError("two"))
    with pytest.raises(GaveUp, match="gave up after 3 failed attempts in a row; last: three"):
        policy.next_wait(TransientError("three"))
    policy.reset()
    assert policy.next_wait(TransientError("again")) >= 0


def test_wait_generator_works_with_backoff_on_exception() -> None:
    calls = itertools.count(1)

    @backoff.on_exception(
        wait_generator,
        TransientError,
        max_tries=4,
        jitter=None,
        initial=0.001,
        cap=0.002,
        max_retry_after=1.0,
    )
    def flaky() -> int:
        attempt = next(calls)
        if attempt < 3:
            raise TransientError("not yet")
        return attempt

    assert flaky() == 3


# --- dedupe -----------------------------------------------------------------------------------------------


def test_recent_ids_drop_repeats_and_stay_bounded() -> None:
    now = ["2026-01-01T00:00:00.000000Z"]
    recent = RecentIds(retention=10.0, capacity=5000, now_stamp=lambda: now[0])
    assert recent.add("a", "2026-01-01T00:00:00.000000Z")
    assert not recent.add("a", "2026-01-01T00:00:00.000000Z")
    # A day of one event a second, with DT's clock going along: only the last `retention` seconds (plus
    # one eviction batch) remain.
    for second in range(86_400):
        stamp = f"2026-01-02T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000000Z"
        now[0] = stamp
        recent.add(f"id{second}", stamp)
    assert len(recent) <= 10 + 1024 + 1
    assert not recent.add("id86399", "2026-01-02T23:59:59.000000Z")


def test_recent_ids_forget_by_dts_clock_not_by_an_event_stamped_ahead() -> None:
    now = "2026-01-01T12:00:00.000000Z"
    recent = RecentIds(retention=60.0, capacity=100_000, now_stamp=lambda: now)
    for index in range(2048):
        recent.add(f"id{index}", "2026-01-01T11:59:59.000000Z")
        if index == 100:
            recent.add("ahead", "2026-01-02T12:00:00.000000Z")  # a day ahead of DT's clock
    # Still remembered: a stamp a day ahead does not make the others look old.
    assert not recent.add("id5", "2026-01-01T11:59:59.000000Z")


def test_recent_ids_capacity_caps_memory_whatever_the_timestamps() -> None:
    recent = RecentIds(retention=10**9, capacity=100, now_stamp=lambda: "2026-01-01T00:00:00.000000Z")
    for index in range(10_000):
        recent.add(f"id{index}", "2026-01-01T00:00:00.000000Z")
    assert len(recent) <= 100


@pytest.mark.parametrize("capacity", [1, 10, 100, 5000])
def test_recent_ids_past_capacity_forget_the_oldest_first(capacity: int) -> None:
    stamp = "2026-01-01T00:00:00.000000Z"
    recent = RecentIds(retention=10**9, capacity=capacity, now_stamp=lambda: stamp)
    for index in range(3 * capacity + 2000):
        assert recent.add(f"id{index}", stamp)
        assert len(recent) <= capacity
        # The latest ids, all but a 64th of capacity at most, are remembered.
        kept = capacity - capacity // 64
        assert not recent.add(f"id{index}", stamp)
        assert not recent.add(f"id{max(0, index - kept + 1)}", stamp)


# --- auth and secrets ---------------------------------------------------------------------------------


def test_a_ping_stamped_beyond_the_tolerance_vouches_only_for_dts_time_as_estimated() -> None:
    elapsed = [0.0]
    clock = ServerClock(lambda: elapsed[0], lambda: 0.0, ping_tolerance=30.0)
    clock.observe(1_800_000_000.0)  # a Date header
    elapsed[0] = 5.0
    assert clock.observe_ping(1_800_000_000.0 + 86_400) == 1_800_000_005.0
    assert clock.now() == 1_800_000_005.0, "the estimate moved to the bad ping"
    # Within the tolerance a ping is believed, and moves the estimate on.
    assert clock.observe_ping(1_800_000_020.0) == 1_800_000_020.0
    assert clock.now() == 1_800_000_020.0


def test_token_cache_refreshes_before_expiry() -> None:
    now = [1000.0]
    cache = TokenCache(settings(token_margin=60.0), clock=lambda: now[0])
    assert cache.header() is None
    request = cache.token_request()
    assert request.method == "POST" and b"grant_type=urn" in (request.body or b"")
    cache.accept(HttpResponse(200, {}, b'{"access_token":"tok","expires_in":3600}'))
    assert cache.header() == "Bearer tok"
    now[0] += 3600 - 61
    assert cache.header() == "Bearer tok"
    now[0] += 2  # within the margin: fetch anew before it expires
    assert cache.header() is None
    # A short-lived token refreshes a quarter of its life early.
    cache.accept(HttpResponse(200, {}, b'{"access_token":"t2","expires_in":4}'))
    now[0] += 2.9
    assert cache.header() == "Bearer t2"
    now[0] += 0.2
    assert cache.header() is None


def test_token_endpoint_refusal_is_fatal_and_names_the_key_not_the_secret() -> None:
    cache = TokenCache(settings())
    with pytest.raises(AuthenticationError) as caught:
        cache.accept(HttpResponse(400, {}, b'{"error":"invalid_grant","error_description":"bad signature"}'))
    message = str(caught.value)
    assert "c0key000000000000000" in message and "invalid_grant: bad signature" in message
    assert SECRET not in message
    with pytest.raises(TransientError):
        cache.accept(HttpResponse(503, {}, b"<html>busy</html>"))


def test_a_token_endpoint_that_is_not_one_fails_at_once() -> None:
    # A wrong path or a web page answers 404 or 405: no retry will change that.
    with pytest.raises(FatalError, match="check token_url"):
        TokenCache(settings()).accept(HttpResponse(404, {}, b"<html>not found</html>"))


def test_a_short_secret_signs_without_a_warning() -> None:
    # The emulator's and some DT secrets are shorter than PyJWT's advice; that warning is noise to a user.
    short = ClientSettings(Credentials("c0key000000000000000", "short", "sa@p.serviceaccount.d21s.com"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        request = TokenCache(short).token_request()
    assert b"assertion=" in (request.body or b"")


def test_secrets_stay_out_of_reprs() -> None:
    the_settings = settings()
    cache = TokenCache(the_settings)
    cache.accept(HttpResponse(200, {}, b'{"access_token":"secret-token-xyz","expires_in":3600}'))
    request = HttpRequest("GET", "http://x/v2", headers={"Authorization": "Bearer secret-token-xyz"})
    for text in (repr(the_settings), repr(the_settings.credentials), repr(cache), repr(request)):
        assert SECRET not in text and "secret-token-xyz" not in text


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, AuthenticationError),
        (403, PermissionDenied),
        (404, NotFound),
        (409, BadRequest),
        (408, TransientError),
        (429, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
    ],
)
def test_http_answers_map_to_fatal_or_transient(status: int, kind: type[Exception]) -> None:
    body = b'{"error":"nope","code":%d}' % status
    error = failure(HttpResponse(status, {"retry-after": "3"}, body), "project p1")
    assert type(error) is kind
    assert "project p1" in str(error) and "nope" in str(error) and "\n" not in str(error)
    if status == 429:
        assert isinstance(error, TransientError) and error.retry_after == 3.0


def test_html_error_pages_are_described_not_dumped() -> None:
    error = failure(HttpResponse(502, {"content-type": "text/html"}, b"<html>" + b"x" * 5000), "project p1")
    assert "non-JSON body (text/html)" in str(error) and len(str(error)) < 200


def test_settings_refuse_bad_values_clearly() -> None:
    with pytest.raises(FatalError, match="missing service account secret"):
        Credentials("key", "")
    with pytest.raises(FatalError, match="api_url must be an http"):
        settings(api_url="ftp://x")
    with pytest.raises(FatalError, match="ping_interval must be positive"):
        settings(ping_interval=0)
