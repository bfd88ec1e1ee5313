"""The tap's inputs (config files, TAP_DISRUPTIVE_* variables, the state and catalog files), each read
and checked before anything else happens: a problem is one line naming the file or setting, never a
traceback, never a secret's value."""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from jsonschema import ValidationError, validators

from tap_disruptive.model.times import canonical_timestamp
from tap_disruptive.tap.settings import ConfigError

# The key of a project's state that holds, ahead of its bookmark, how far single devices are complete.
DEVICE_FRONTIERS = "device_frontiers"

logger = logging.getLogger(__name__)

ENV_PREFIX = "TAP_DISRUPTIVE_"
TRUTHY = ("true", "1", "yes", "on")
FALSY = ("false", "0", "no", "off", "")


def read_json_object(path: str, option: str) -> dict[str, Any]:
    """A JSON file that must hold an object, e.g. `read_json_object("config.json", "--config")`."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"{option} {path}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{option} {path}: cannot be read ({error.strerror})") from None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{option} {path}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} {path}: must hold a JSON object, not {type(value).__name__}")
    return value


def read_config(paths: Iterable[str], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of every `--config` file in turn (later ones win), with `ENV` standing for the
    TAP_DISRUPTIVE_* environment variables."""
    config: dict[str, Any] = {}
    for path in paths:
        config |= environment_settings(schema) if path == "ENV" else read_json_object(path, "--config")
    return config


def environment_settings(
    schema: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Settings from TAP_DISRUPTIVE_<NAME> variables, typed as the settings' schema says (numbers as
    numbers, lists as JSON or comma-separated, objects as JSON)."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for name, definition in schema.get("properties", {}).items():
        variable = ENV_PREFIX + name.upper().replace("-", "_")
        if variable in environ:
            settings[name] = _typed(variable, environ[variable], _types(definition))
    return settings


def _types(definition: Mapping[str, Any]) -> set[str]:
    kinds = definition.get("type", [])
    found = {kinds} if isinstance(kinds, str) else set(kinds)
    for option in definition.get("anyOf", []):
        found |= _types(option)
    return found


def _typed(variable: str, text: str, types: set[str]) -> Any:
    if "boolean" in types:
        if text.strip().lower() in TRUTHY:
            return True
        if text.strip().lower() in FALSY:
            return False
        raise ConfigError(f"{variable} must be true or false, got {text!r}")
    if types & {"integer", "number"}:
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{variable} must be a number, got {text!r}") from None
        return int(number) if number.is_integer() else number
    if types & {"array", "object"}:
        if text.lstrip().startswith(("[", "{")):
            try:
                return json.loads(text)
            except ValueError as error:
                raise ConfigError(f"{variable} is not JSON ({error})") from None
        if "array" in types:
            return [part.strip() for part in text.split(",") if part.strip()]
        raise ConfigError(f"{variable} must be a JSON object")
    return text


def check_settings(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Every setting known and of its schema's type; an unknown one names the closest known one. Secret
    values are never repeated in a message."""
    known = schema.get("properties", {})
    for name in config:
        if name not in known:
            closest = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f" (did you mean {closest[0]!r}?)" if closest else ""
            raise ConfigError(f"unknown setting {name!r}{hint}")
    validator_class = validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda error: list(error.path))
    if errors:
        raise ConfigError(_message(errors[0], config, known))


def _message(error: ValidationError, config: Mapping[str, Any], known: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.path) or "config"
    if error.validator == "required":
        missing = [name for name in cast(list[str], error.validator_value) if name not in config]
        return f"{', '.join(missing)}: required, and not set"
    if error.path and known.get(str(error.path[0]), {}).get("secret", False):
        # The message would repeat the value.
        expected = f"of type {error.validator_value}" if error.validator == "type" else "valid"
        return f"{where} must be {expected}"
    return f"{where}: {error.message}"


def read_state(path: str) -> dict[str, Any]:
    """The `--state` file as the tap's state: a STATE message or Meltano's `singer_state` wrapper is
    unwrapped (said in the log), and every bookmark must be a time."""
    state = read_json_object(path, "--state")
    if state.get("type") == "STATE" and isinstance(state.get("value"), dict):
        logger.info("--state %s holds a whole STATE message: reading its value", path)
        state = state["value"]
    elif set(state) == {"singer_state"} and isinstance(state["singer_state"], dict):
        state = state["singer_state"]
    check_state(state, f"--state {path}")
    return state


def check_state(state: Mapping[str, Any], where: str) -> None:
    """The shape the tap's bookmarks need: {"bookmarks": {stream: {...}}} with times for values."""
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict) or (state and "bookmarks" not in state):
        raise ConfigError(f'{where}: not a Singer state (expected {{"bookmarks": {{...}}}})')
    for stream, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            raise ConfigError(f"{where}: bookmarks.{stream} must be an object")
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list) or not all(isinstance(p, dict) for p in partitions):
            raise ConfigError(f"{where}: bookmarks.{stream}.partitions must be a list of objects")
        for entry in [stream_state, *partitions]:
            context = entry.get("context") or {}
            label = f"bookmarks.{stream}" + (
                f" (project {context['project_id']})" if "project_id" in context else ""
            )
            seq = entry.get("spool_seq")
            if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
                raise ConfigError(f"{where}: {label}: spool_seq is not a spool position: {seq!r}")
            frontiers = entry.get(DEVICE_FRONTIERS)
            if frontiers is not None and not (
                isinstance(frontiers, dict) and all(isinstance(v, str) for v in frontiers.values())
            ):
                raise ConfigError(
                    f"{where}: {label}: {DEVICE_FRONTIERS} is not an object of device ids to times"
                )
            for device_id, stamp in (frontiers or {}).items():
                _check_time(stamp, f"{where}: {label}: {DEVICE_FRONTIERS}.{device_id}")
            value = entry.get("replication_key_value")
            if value is not None:
                _check_time(value, f"{where}: {label}")


def _check_time(value: Any, what: str) -> None:
    try:
        canonical_timestamp(str(value))
    except ValueError:
        raise ConfigError(f"{what} is not a time: {value!r}") from None
