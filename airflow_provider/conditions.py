"""Conditions on DT events that serialise: declarative predicates, combined with all/any, and as an
escape hatch a dotted path to a function. Nothing is ever evaluated as code from a string.

JSON forms (what triggers store):
    {"field": "data.temperature.value", "op": ">", "value": 8}
    {"field": "data.contact.state", "op": "==", "value": "OPEN"}
    {"field": "device_id", "op": "in", "value": ["d1", "d2"]}
    {"all": [<condition>, ...]}   {"any": [<condition>, ...]}   {"not": <condition>}
    {"function": "my_package.rules.is_hot"}   (called with the event dict, returns a bool)
Fields are dotted paths into the event as DT sends it, with `device_id` and `project_id` added.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Mapping
from typing import Any

from tap_disruptive.client.protocol.errors import FatalError

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "in": lambda left, right: left in right,
    "not in": lambda left, right: left not in right,
    "exists": lambda left, _right: left is not None,
}
_MISSING = object()


class ConditionError(FatalError):
    """A condition that cannot be understood."""


def field(path: str, op: str, value: Any = None) -> dict[str, Any]:
    """A field test, e.g. `field("data.temperature.value", ">", 8)`."""
    return check({"field": path, "op": op, "value": value})


def all_of(*conditions: Mapping[str, Any]) -> dict[str, Any]:
    return check({"all": [dict(condition) for condition in conditions]})


def any_of(*conditions: Mapping[str, Any]) -> dict[str, Any]:
    return check({"any": [dict(condition) for condition in conditions]})


def not_(condition: Mapping[str, Any]) -> dict[str, Any]:
    return check({"not": dict(condition)})


def function(dotted_path: str) -> dict[str, Any]:
    return check({"function": dotted_path})


def check(condition: Any) -> dict[str, Any]:
    """Validate a condition's JSON form; raises ConditionError naming what is wrong."""
    if not isinstance(condition, Mapping) or len(condition) == 0:
        raise ConditionError(
            f"a condition is an object such as {{'field': ..., 'op': ..., 'value': ...}}: {condition!r}"
        )
    if "field" in condition:
        if not isinstance(condition["field"], str) or not condition["field"]:
            raise ConditionError("a condition's field is a dotted path such as data.temperature.value")
        if condition.get("op") not in _OPERATORS:
            raise ConditionError(
                f"unknown condition op {condition.get('op')!r}; one of {', '.join(_OPERATORS)}"
            )
    elif "all" in condition or "any" in condition:
        parts = condition.get("all", condition.get("any"))
        if not isinstance(parts, list) or not parts:
            raise ConditionError("all/any take a non-empty list of conditions")
        for part in parts:
            check(part)
    elif "not" in condition:
        check(condition["not"])
    elif "function" in condition:
        if not isinstance(condition["function"], str) or "." not in condition["function"]:
            raise ConditionError("function takes a dotted path such as my_package.rules.is_hot")
    else:
        raise ConditionError(f"a condition has field, all, any, not or function: {dict(condition)!r}")
    return dict(condition)


def evaluate(condition: Mapping[str, Any] | None, event: Mapping[str, Any]) -> bool:
    """Whether an event (DT's JSON, plus device_id and project_id) meets the condition (None: always)."""
    if condition is None:
        return True
    if "field" in condition:
        value = _lookup(event, condition["field"])
        if value is _MISSING:
            return bool(condition["op"] == "not in")  # nothing is in a list it is missing from
        try:
            return bool(_OPERATORS[condition["op"]](value, condition.get("value")))
        except TypeError:  # e.g. a string compared with a number: not a match
            return False
    if "all" in condition:
        return all(evaluate(part, event) for part in condition["all"])
    if "any" in condition:
        return any(evaluate(part, event) for part in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], event)
    return bool(import_function(condition["function"])(dict(event)))


def import_function(dotted_path: str) -> Callable[[dict[str, Any]], Any]:
    module_name, _, name = dotted_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise ConditionError(f"cannot import condition function {dotted_path}: {error}") from None
    if not callable(found):
        raise ConditionError(f"condition function {dotted_path} is not callable")
    return found  # type: ignore[no-any-return]


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value
