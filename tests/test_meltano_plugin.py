"""tap-disruptive as a Meltano plugin. Its Hub definition (plugin/extractors/) is valid by Meltano Hub's
schema and the project's meltano.yml by Meltano's; both list exactly the tap's settings, kinds, defaults and
capabilities; and Meltano adds the definition without the Hub, configures it from the environment, installs
it from the wheel (its `pip_url` as published) and lists its streams without credentials."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml  # type: ignore[import-untyped]  # the dev venv has no types-PyYAML
from referencing import Registry, Resource

from tap_disruptive.emulator.process import EmulatorProcess
from tap_disruptive.tap import TapDisruptive
from tap_disruptive.tap.inputs import check_settings
from tap_disruptive.tap.settings import TapConfig
from tap_disruptive.testing import tap_config
from tests.support.tap_runs import TAP, write_json
from tests.test_distribution import VERSION, built_distribution

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
DEFINITION = ROOT / "plugin" / "extractors" / "tap-disruptive--tap-disruptive.yml"
MELTANO = ROOT / ".meltano-venv" / "bin" / "meltano"
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Keys only Meltano Hub reads; the project's meltano.yml cannot hold them (Meltano's schema refuses them).
HUB_ONLY = {
    "definition",
    "domain_url",
    "keywords",
    "maintenance_status",
    "quality",
    "supported_python_versions",
}
# Numbers to the tap declared `integer`: Meltano 4.4 cannot pass on a `decimal` setting that comes from the
# environment (see the comment in the definition, and test_meltano_still_fails_on_decimal_settings_from_env).
NUMBERS_AS_INTEGERS = {"max_duration", "idle_timeout", "max_request_rate"}
# The fields Meltano's log parser for the Singer SDK needs in a line to take it as a structured record
# (meltano 4.4.1, meltano/core/logging/parsers.py, SingerSDKLogParser.required_fields).
STRUCTURED_LOG_FIELDS = {"level", "pid", "logger_name", "ts", "thread_name", "app_name", "message"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def definition() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(DEFINITION)
    return loaded


def project_extractor() -> dict[str, Any]:
    (extractor,) = [
        plugin
        for plugin in load_yaml(ROOT / "meltano.yml")["plugins"]["extractors"]
        if plugin["name"] == "tap-disruptive"
    ]
    return dict(extractor)


def tap_settings() -> dict[str, dict[str, Any]]:
    """Every setting the tap takes, as `--about` lists them: its own and the SDK's for its capabilities."""
    schema = copy.deepcopy(TapDisruptive.config_jsonschema)
    TapDisruptive.append_builtin_config(schema)
    properties: dict[str, dict[str, Any]] = schema["properties"]
    return properties


def expected_kind(name: str, schema: dict[str, Any]) -> str:
    declared = schema["type"]
    (json_type,) = {declared} - {"null"} if isinstance(declared, str) else set(declared) - {"null"}
    if json_type == "number":
        return "integer" if name in NUMBERS_AS_INTEGERS else "decimal"
    if json_type == "string":
        return "date_iso8601" if schema.get("format") == "date-time" else "string"
    assert json_type in {"array", "object", "boolean", "integer"}, (name, json_type)
    return str(json_type)


def hub_validator() -> jsonschema.Draft7Validator:
    """The Hub's extractor schema, its references resolved among the vendored files by their `$id`."""
    schemas = [json.loads(path.read_text()) for path in (DATA / "meltano_hub").rglob("*.schema.json")]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    (extractors,) = [schema for schema in schemas if schema["$id"] == "extractors.schema.json"]
    return jsonschema.Draft7Validator(extractors, registry=registry)


def test_the_definition_is_valid_by_meltano_hubs_schema() -> None:
    validator = hub_validator()
    plugin = definition()
    assert [error.message for error in validator.iter_errors(plugin)] == []
    # The references resolve and bite: a setting of an unknown kind, or a key the Hub does not know, fails.
    broken = {**plugin, "settings": [{**plugin["settings"][0], "kind": "number"}], "maintainer": "x"}
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any("'number' is not one of" in message for message in messages), messages
    assert any("'maintainer' was unexpected" in message for message in messages), messages


def test_the_project_is_valid_by_meltanos_schema() -> None:
    schema = json.loads((DATA / "meltano.schema.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [error.message for error in validator.iter_errors(load_yaml(ROOT / "meltano.yml"))] == []


def test_the_definition_lists_the_taps_settings_exactly() -> None:
    taps = tap_settings()
    settings = {setting["name"]: setting for setting in definition()["settings"]}
    assert len(settings) == len(definition()["settings"])  # no name twice
    assert set(settings) == set(taps)
    for name, schema in taps.items():
        setting = settings[name]
        assert setting["kind"] == expected_kind(name, schema), name
        assert setting["label"] == schema["title"], name
        assert setting["description"] == schema["description"], name
        assert setting.get("sensitive", False) == schema.get("secret", False), name
        assert ("value" in setting) == ("default" in schema), name
        assert setting.get("value") == schema.get("default"), name
    assert [name for name, setting in settings.items() if setting.get("sensitive")] == ["key_secret", "spool"]


def test_every_setting_of_the_tap_has_a_title_and_a_description() -> None:
    # Meltano's `config list`, the Hub's page and `--about --format=markdown` show them.
    for name, schema in TapDisruptive.config_jsonschema["properties"].items():
        assert schema.get("title") and schema.get("description"), name


def test_the_definition_describes_the_package_and_the_taps_capabilities() -> None:
    plugin = definition()
    assert set(plugin["capabilities"]) == {capability.value for capability in TapDisruptive.capabilities}
    assert "structured-logging" in plugin["capabilities"]
    required = set(TapDisruptive.config_jsonschema.get("required", []))
    names = {setting["name"] for setting in plugin["settings"]}
    for group in plugin["settings_group_validation"]:
        assert required <= set(group) <= names, group
    # Installed from the registry by the distribution's name, run by its console script.
    assert plugin["pip_url"] == PROJECT["name"] == plugin["name"] == plugin["executable"]
    assert plugin["executable"] in PROJECT["scripts"]
    assert plugin["namespace"] == PROJECT["name"].replace("-", "_")
    assert (plugin["docs"], plugin["repo"]) == (
        PROJECT["urls"]["Documentation"],
        PROJECT["urls"]["Repository"],
    )
    pythons = [
        classifier.rsplit("::", 1)[-1].strip()
        for classifier in PROJECT["classifiers"]
        if classifier.startswith("Programming Language :: Python :: 3.")
    ]
    assert plugin["supported_python_versions"] == pythons


def test_the_projects_extractor_is_the_definition_installing_this_checkout() -> None:
    plugin = definition()
    extractor = project_extractor()
    # meltano.yml installs the tree (for `make demo` and the tests) and names no variant (which would
    # send Meltano to the Hub); everything else is the same.
    assert extractor.pop("pip_url") == "-e ${MELTANO_PROJECT_ROOT}"
    assert "variant" not in extractor
    shared = {key: value for key, value in plugin.items() if key not in HUB_ONLY | {"pip_url", "variant"}}
    assert extractor == shared


def meltano(project: Path, *args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MELTANO_", "TAP_DISRUPTIVE_", "VIRTUAL_ENV"))
    }
    return subprocess.run(
        [str(MELTANO), *args],
        cwd=project,
        env={
            **inherited,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            **environment,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def new_project(directory: Path, plugins: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    project = {"project_id": "tap-disruptive-plugin-test", "send_anonymous_usage_stats": False}
    (directory / "meltano.yml").write_text(yaml.safe_dump({**project, "plugins": plugins or {}}))
    return directory


def project_from_definition(directory: Path) -> Path:
    """A Meltano project with tap-disruptive added from the definition file, as a user adds it."""
    project = new_project(directory)
    added = meltano(
        project,
        "add",
        "--plugin-type",
        "extractor",
        "tap-disruptive",
        "--from-ref",
        str(DEFINITION),
        "--no-install",
    )
    assert added.returncode == 0, added.stderr[-3000:]
    return project


@pytest.mark.e2e
def test_meltano_configures_the_definition_from_the_environment(tmp_path: Path) -> None:
    project = project_from_definition(tmp_path / "project")
    dumped = meltano(
        project,
        "invoke",
        "--no-install",
        "--dump=config",
        "tap-disruptive",
        TAP_DISRUPTIVE_PROJECT_IDS='["p1"]',
        TAP_DISRUPTIVE_KEY_SECRET="s3cret",
        TAP_DISRUPTIVE_LIVE="false",
        TAP_DISRUPTIVE_MAX_DURATION="600",
        TAP_DISRUPTIVE_IDLE_TIMEOUT="30",
        TAP_DISRUPTIVE_MAX_EVENTS="1000",
        TAP_DISRUPTIVE_LABEL_FILTERS='{"room": null}',
        TAP_DISRUPTIVE_START_DATE="2026-01-01T00:00:00Z",
    )
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    config = json.loads(dumped.stdout)
    assert config == {
        "project_ids": ["p1"],
        "key_secret": "s3cret",
        "basic_auth": False,
        "api_url": "https://api.disruptive-technologies.com/v2",
        "token_url": "https://identity.disruptive-technologies.com/oauth2/token",
        "source": "stream",
        "label_filters": {"room": None},
        "start_date": "2026-01-01T00:00:00Z",
        "live": False,
        "max_events": 1000,
        "max_duration": 600,
        "idle_timeout": 30,
    }
    # The config Meltano writes is one the tap takes (its own check; the SDK's schema, once a tap has
    # been made in this process, also holds the SDK's built-in settings).
    check_settings(config, TapDisruptive.settings_schema())
    credentials = {"key_id": "k1", "email": "sa@p1.serviceaccount.d21s.com"}
    assert TapConfig.from_config({**config, **credentials}).bounds.max_duration == 600


@pytest.mark.e2e
def test_meltano_still_fails_on_decimal_settings_from_env(tmp_path: Path) -> None:
    """Why max_duration and idle_timeout are `integer` to Meltano. When this fails, Meltano has learnt to
    write a `decimal` setting given by an environment variable: declare both `kind: decimal` (in the
    definition and in meltano.yml) and drop NUMBERS_AS_INTEGERS."""
    settings = [{"name": "max_duration", "kind": "decimal"}]
    plugin = {"name": "tap-probe", "namespace": "tap_probe", "pip_url": "tap-probe", "settings": settings}
    project = new_project(tmp_path / "project", {"extractors": [plugin]})
    dumped = meltano(
        project, "invoke", "--no-install", "--dump=config", "tap-probe", TAP_PROBE_MAX_DURATION="2.5"
    )
    if dumped.returncode == 0:
        pytest.fail(f"Meltano now passes on decimal settings from the environment: {dumped.stdout}")
    assert "Object of type Decimal is not JSON serializable" in dumped.stderr, dumped.stderr[-3000:]


@pytest.mark.e2e
def test_the_published_definition_installs_the_wheel_and_lists_streams_without_credentials(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    distribution = built_distribution(tmp_path_factory)
    project = project_from_definition(tmp_path / "project")
    # `pip_url: tap-disruptive` as on the registry, the wheel standing in for the published one (uv is
    # Meltano's installer; pip reads the other variable).
    wheels = str(distribution.wheel.parent)
    installed = meltano(project, "install", UV_FIND_LINKS=wheels, PIP_FIND_LINKS=wheels)
    assert installed.returncode == 0, installed.stderr[-3000:]
    version = meltano(project, "invoke", "--no-install", "tap-disruptive", "--version")
    assert version.returncode == 0, version.stderr[-3000:]
    assert f"tap-disruptive v{VERSION}," in version.stdout
    # Discovery needs no settings: the schemas are data in the package.
    listed = meltano(project, "select", "tap-disruptive", "--list", "--all")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "devices.device_id" in listed.stdout and "events.event_id" in listed.stdout


@pytest.mark.e2e
def test_the_tap_logs_structured_records_when_asked(
    shared_quiet_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """`structured-logging`: given the logging config Meltano writes for such a plugin, every line the tap
    logs is a JSON record that Meltano's parser takes, the tap's own messages among them."""
    formatter = {"()": "singer_sdk.logging.StructuredFormatter"}
    handler = {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stderr"}
    logging_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": formatter},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": "INFO"},
    }
    config = write_json(tmp_path / "config.json", tap_config(shared_quiet_emulator, live=False))
    run = subprocess.run(
        [str(TAP), "--config", str(config)],
        env={
            **os.environ,
            "SINGER_SDK_LOG_CONFIG": str(write_json(tmp_path / "logging.json", logging_config)),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert records
    for record in records:
        assert set(record) >= STRUCTURED_LOG_FIELDS, record
    assert any(record["logger_name"] == "tap-disruptive.events" for record in records)
