"""The provider's parts on their own: conditions, trigger serialisation, the hook's connection, and
Airflow's discovery of the provider and its connection type."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk._shared.secrets_masker.secrets_masker import DEFAULT_SENSITIVE_FIELDS

from airflow_provider import get_provider_info
from airflow_provider.conditions import ConditionError, all_of, any_of, check, evaluate, field, function, not_
from airflow_provider.hooks.disruptive import DisruptiveHook
from airflow_provider.triggers.disruptive import DisruptiveEventTrigger
from tap_disruptive import __version__
from tap_disruptive.client.protocol.errors import FatalError

EVENT: dict[str, Any] = {
    "eventId": "e1",
    "targetName": "projects/p1/devices/d1",
    "eventType": "temperature",
    "data": {"temperature": {"value": 8.5, "samples": [{"value": 8.5}]}},
    "timestamp": "2026-01-01T00:00:00.000000Z",
    "device_id": "d1",
    "project_id": "p1",
}


def is_warm(event: dict[str, Any]) -> bool:
    return bool(event["data"]["temperature"]["value"] > 5)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (field("data.temperature.value", ">", 8), True),
        (field("data.temperature.value", "<=", 8), False),
        (field("data.temperature.samples.0.value", "==", 8.5), True),
        (field("data.contact.state", "==", "OPEN"), False),  # a missing field never matches
        (field("data.contact.state", "exists"), False),
        (field("device_id", "in", ["d1", "d2"]), True),
        (field("device_id", "not in", ["d1"]), False),
        (field("data.temperature.value", ">", "a string"), False),  # incomparable: no match, no error
        (all_of(field("eventType", "==", "temperature"), field("device_id", "==", "d1")), True),
        (all_of(field("eventType", "==", "temperature"), field("device_id", "==", "d2")), False),
        (any_of(field("device_id", "==", "d2"), field("data.temperature.value", ">", 8)), True),
        (not_(field("device_id", "==", "d1")), False),
        (function("tests.test_airflow_provider.is_warm"), True),
        (None, True),
    ],
)
def test_conditions(condition: dict[str, Any] | None, expected: bool) -> None:
    assert evaluate(condition, EVENT) is expected
    if condition is not None:
        assert json.loads(json.dumps(condition)) == condition  # plain JSON, so it serialises


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"field": "x", "op": "~="},
        {"field": "", "op": "=="},
        {"all": []},
        {"function": "no_dots"},
        {"eval": "1 + 1"},
        "data.temperature.value > 8",
    ],
)
def test_bad_conditions_are_refused_and_never_evaluated_as_code(bad: Any) -> None:
    with pytest.raises(ConditionError):
        check(bad)


def test_a_missing_condition_function_is_a_clear_error() -> None:
    with pytest.raises(ConditionError, match=r"cannot import condition function tests\.nowhere\.fn"):
        evaluate(function("tests.nowhere.fn"), EVENT)


def trigger(**kwargs: Any) -> DisruptiveEventTrigger:
    return DisruptiveEventTrigger(**kwargs)


def test_trigger_serialises_deterministically_and_round_trips() -> None:
    one = trigger(
        project_id="p1",
        device_ids=["b", "a"],
        label_filters={"z": None, "room": "lab"},
        event_types=["touch", "temperature"],
        condition=field("data.temperature.value", ">", 8),
        start_time="2026-01-01T00:00:00Z",
        max_events=5,
        window_seconds=60,
    )
    two = trigger(
        project_id="p1",
        device_ids=["a", "b"],
        label_filters={"room": "lab", "z": None},
        event_types=["temperature", "touch"],
        condition=field("data.temperature.value", ">", 8),
        start_time="2026-01-01T00:00:00Z",
        max_events=5,
        window_seconds=60,
    )
    classpath, kwargs = one.serialize()
    assert classpath == "airflow_provider.triggers.disruptive.DisruptiveEventTrigger"
    assert (classpath, kwargs) == two.serialize()
    assert kwargs["device_ids"] == ["a", "b"] and kwargs["label_filters"] == {"room": "lab", "z": None}
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = DisruptiveEventTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert DisruptiveEventTrigger.hash(classpath, kwargs) == DisruptiveEventTrigger.hash(*two.serialize())


def test_trigger_refuses_bad_filters_at_once() -> None:
    with pytest.raises(FatalError, match="event_types: unknown value 'smell'"):
        trigger(event_types=["smell"])
    with pytest.raises(ConditionError):
        trigger(condition={"field": "x", "op": "??"})


def test_hook_maps_a_connection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = {
        "conn_type": "disruptive",
        "login": "c0key000000000000000",
        "password": "the-secret-value-of-this-key-0123456",
        "extra": {
            "email": "sa@p1.serviceaccount.d21s.com",
            "project_id": "p1",
            "api_url": "http://127.0.0.1:1/v2",
            "identity_url": "http://127.0.0.1:1/oauth2/token",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", json.dumps(connection))
    hook = DisruptiveHook()
    settings = hook.settings()
    assert settings.credentials.key_id == "c0key000000000000000"
    assert settings.credentials.key_secret == "the-secret-value-of-this-key-0123456"
    assert settings.credentials.email == "sa@p1.serviceaccount.d21s.com"
    assert (
        settings.api_url == "http://127.0.0.1:1/v2"
        and settings.token_url == "http://127.0.0.1:1/oauth2/token"
    )
    assert hook.default_project_id() == "p1"
    assert "the-secret-value" not in repr(settings)


def test_provider_info_names_the_distribution_and_every_part() -> None:
    info = get_provider_info()
    assert info["package-name"] == "tap-disruptive"
    assert info["versions"] == [__version__]
    (connection_type,) = info["connection-types"]
    assert connection_type["connection-type"] == "disruptive"
    assert set(connection_type["conn-fields"]) == {
        "email",
        "project_id",
        "api_url",
        "identity_url",
        "basic_auth",
    }
    # Airflow masks a field whose name holds a sensitive word; only the secret (password) may be one.
    for name in connection_type["conn-fields"]:
        assert not any(word in name.lower() for word in DEFAULT_SENSITIVE_FIELDS), name
    modules = {
        module
        for kind in ("hooks", "triggers", "sensors", "operators")
        for group in info[kind]
        for module in group["python-modules"]
    }
    for module in modules:
        __import__(module)
    assert info["queues"] == [
        "airflow_provider.queues.disruptive.DisruptiveMessageQueueProvider",
        "airflow_provider.queues.spool.DisruptiveSpoolMessageQueueProvider",
    ]


def test_airflow_discovers_the_provider_and_connection_type(tmp_path: Path) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    environment = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    providers = subprocess.run(
        [str(airflow), "providers", "list", "--output", "json"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert any(row["package_name"] == "tap-disruptive" for row in json.loads(providers.stdout))
    hooks = subprocess.run(
        [str(airflow), "providers", "hooks", "--output", "json"],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert any(row.get("connection_type") == "disruptive" for row in json.loads(hooks.stdout))


def test_message_queue_trigger_builds_our_trigger() -> None:
    queue_trigger = MessageQueueTrigger(scheme="disruptive", project_id="p1", event_types=["touch"])
    built = queue_trigger.trigger
    assert isinstance(built, DisruptiveEventTrigger)
    assert built.serialize()[1]["event_types"] == ["touch"]


def test_the_project_comes_from_the_trigger_else_the_connection_else_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def connection(extra: dict[str, str]) -> str:
        return json.dumps({"conn_type": "disruptive", "login": "k", "password": "s", "extra": extra})

    hook = DisruptiveHook()
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", connection({"project_id": "p1"}))
    assert asyncio.run(hook.aproject_id("p2")) == "p2"
    assert asyncio.run(hook.aproject_id(None)) == "p1"
    monkeypatch.setenv("AIRFLOW_CONN_DISRUPTIVE_DEFAULT", connection({}))
    with pytest.raises(FatalError, match="connection disruptive_default has none"):
        asyncio.run(hook.aproject_id(None))
