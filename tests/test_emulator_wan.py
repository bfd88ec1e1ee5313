"""The emulator answering as a remote DT would: `--latency` before each API and token request, and a
`--rate-limit` token bucket over them answered with DT's 429 and `Retry-After`, counted in the status."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import disruptive
import disruptive.requests
import pytest
import requests

from benchmarks.official import use_official_client
from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.emulator.throttle import TokenBucket, retry_after
from tests.support.emulators import QUIET, StartEmulator
from tests.test_emulator_api import assert_dt_error, assertion, devices_url, exchange
from tests.test_emulator_cli import logged, logging_emulator

TOO_MANY = {"error": "too many requests", "code": 429, "help": "https://docs.d21s.com/error/#429"}


def get(emulator: EmulatorProcess, url: str, **options: Any) -> requests.Response:
    """A request of our own, not the helper's session (which waits out 429s)."""
    return requests.get(url, auth=(emulator.key_id, emulator.key_secret), timeout=30, **options)


def stream_url(emulator: EmulatorProcess) -> str:
    return f"{devices_url(emulator)}:stream"


def open_stream(emulator: EmulatorProcess) -> requests.Response:
    """The stream's answer once its headers are in; the caller closes it."""
    return get(emulator, stream_url(emulator), params={"ping_interval": "1s"}, stream=True)


def assert_too_many(response: requests.Response) -> int:
    """DT's 429 body, and its Retry-After in whole seconds."""
    assert_dt_error(response, 429)
    assert response.json() == TOO_MANY
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    return seconds


# --- the token bucket, on a fake clock ------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_gives_its_capacity_then_says_when_the_next_token_is_free() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, capacity=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == pytest.approx(0.25)
    clock.now += 0.1
    assert bucket.take() == pytest.approx(0.15)  # a refused request takes nothing
    clock.now += 0.15
    assert bucket.take() == 0
    assert bucket.take() == pytest.approx(0.25)


def test_a_bucket_saves_up_no_more_than_its_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=2, clock=clock)
    clock.now += 3600
    assert [bucket.take() > 0 for _ in range(3)] == [False, False, True]


def test_a_bucket_needs_a_rate_and_a_capacity() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate=0, capacity=1)
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate=1, capacity=0)


@pytest.mark.parametrize(("wait", "seconds"), [(0.001, 1), (0.999, 1), (1.0, 1), (1.01, 2), (9.5, 10)])
def test_retry_after_is_whole_seconds_rounded_up_at_least_one(wait: float, seconds: int) -> None:
    assert retry_after(wait) == seconds


# --- the rate limit over HTTP ---------------------------------------------------------------------------


def test_a_burst_beyond_the_bucket_gets_dt_429s_counted_in_the_status(start_emulator: StartEmulator) -> None:
    # A token every 10 s: the burst is refused whatever the machine's load.
    emulator = start_emulator(*QUIET, rate_limit=0.1, rate_limit_burst=3)
    answers = [get(emulator, devices_url(emulator)) for _ in range(6)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429, 429]
    assert all(assert_too_many(answer) <= 10 for answer in answers[3:])
    status = emulator.status()
    assert status["throttled"] == {"devices": 3}
    assert status["requests"]["devices"] == 6  # the throttled ones too: every request that arrived
    assert (status["latency"], status["rate_limit"], status["rate_limit_burst"]) == (0, 0.1, 3)


def test_requests_within_the_rate_are_not_throttled(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(*QUIET, rate_limit=20, rate_limit_burst=2)
    for _ in range(8):
        assert get(emulator, devices_url(emulator)).status_code == 200
        time.sleep(0.1)  # half the rate; a slow machine only spaces them further
    status = emulator.status()
    assert status["throttled"] == {}
    assert status["requests"]["devices"] == 8


def test_the_token_endpoint_and_the_stream_are_limited_too(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(*QUIET, rate_limit=0.1, rate_limit_burst=2)
    assert exchange(emulator, assertion(emulator)).status_code == 200
    with open_stream(emulator) as stream:
        assert stream.status_code == 200  # its opening is one request, its lines none
    assert_too_many(exchange(emulator, assertion(emulator)))
    with open_stream(emulator) as refused:
        assert_too_many(refused)
    status = emulator.status()
    assert status["throttled"] == {"token": 1, "stream": 1}
    assert (status["requests"]["token"], status["requests"]["stream"]) == (2, 2)


def test_the_emulator_controls_are_not_limited(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(*QUIET, rate_limit=0.1, rate_limit_burst=1)
    for _ in range(5):
        assert requests.get(f"{emulator.base_url}/_emulator/status", timeout=30).status_code == 200
    assert emulator.ledger() == ([], 0)
    assert get(emulator, devices_url(emulator)).status_code == 200


def test_the_helper_waits_out_the_limit(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(*QUIET, rate_limit=0.5, rate_limit_burst=1)
    device_id = emulator.create_device("touch")
    emulator.publish(device_id, "touch")  # the bucket is empty: a 429 first, then the retry after 2 s
    assert len(emulator.ledger(device_ids=device_id)[0]) == 1
    assert emulator.status()["throttled"] == {"publish": 1}


class RecordedSleeps:
    """The `time` module as DT's client sees it, its sleeps recorded rather than slept."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_dt_official_client_reads_our_429_as_too_many_requests(
    start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One token, a new one every 100 s: the client's token request takes it, the rest is refused.
    emulator = start_emulator(*QUIET, rate_limit=0.01, rate_limit_burst=1)
    use_official_client(emulator)
    # The client sleeps `Retry-After` before each of its 3 retries; recorded instead, to keep this short.
    recorded = RecordedSleeps()
    monkeypatch.setattr(disruptive.requests, "time", recorded)
    with pytest.raises(disruptive.errors.TooManyRequests) as raised:
        disruptive.Device.list_devices(emulator.project_id)
    assert raised.value.args[0] == TOO_MANY
    slept = recorded.slept
    assert len(slept) == 3 and all(isinstance(seconds, int) and seconds >= 95 for seconds in slept)
    assert emulator.status()["throttled"] == {"devices": 4}


# --- latency --------------------------------------------------------------------------------------------


def test_each_api_and_token_request_and_a_stream_opening_wait_the_latency(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator(*QUIET, latency=0.3)
    sends: list[Callable[[], requests.Response]] = [
        lambda: get(emulator, devices_url(emulator)),
        lambda: exchange(emulator, assertion(emulator)),
        lambda: open_stream(emulator),
    ]
    for send in sends:
        started = time.monotonic()
        with send() as answer:
            assert answer.status_code == 200
        assert time.monotonic() - started >= 0.3
    status = emulator.status()
    assert (status["latency"], status["rate_limit"], status["rate_limit_burst"]) == (0.3, 0, None)


def test_a_refusal_also_comes_after_the_latency(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(*QUIET, latency=0.3, rate_limit=0.1, rate_limit_burst=1)
    assert get(emulator, devices_url(emulator)).status_code == 200
    started = time.monotonic()
    assert_too_many(get(emulator, devices_url(emulator)))
    assert time.monotonic() - started >= 0.3


def test_the_pace_is_logged_at_start_up(tmp_path: Path) -> None:
    log_path = tmp_path / "emulator.log"
    args = ("--log-level", "info", "--latency", "0.06", "--rate-limit", "40")
    with logging_emulator(log_path, *args):
        pace = r" INFO .*pace: 0\.06 s latency a request; at most 40 requests a second, 40 at once$"
        assert logged(log_path, pace)
