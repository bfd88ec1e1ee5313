"""Column names: snake_case for every key of every record, DT's camelCase payload keys included.

One rule, `snake_case`, names the schemas' properties and renames the keys of DT's payloads, in both ways
records are made: `snake_data` on a decoded payload, `snake_data_json` on its JSON text as it came. Label
keys are user data, not column names: they are kept as they are.
"""

from __future__ import annotations

import functools
import json
import operator
import re
import string
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from tap_disruptive.model.event_types import EVENT_TYPES, LABELS_CHANGED

SCHEMAS = Path(__file__).parent / "schemas"

# A word starts at a capital after a small letter or digit (`updateTime`), or at the last capital of a
# run followed by a small letter (`HTTPStatus`). ASCII only: the JSON text check below sees only ASCII.
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@functools.lru_cache(maxsize=4096)
def snake_case(name: str) -> str:
    """`updateTime` -> `update_time`, `co2` -> `co2`, `deviceID` -> `device_id`; snake_case stays as it is."""
    return _WORD_START.sub("_", name).translate(_ASCII_LOWER)


def snake_keys(value: Any, kept: Collection[str] = ()) -> Any:
    """A JSON value with the keys of its objects in snake_case, at every depth; the objects under the
    top-level keys in `kept` keep their keys (they hold user data)."""
    if isinstance(value, dict):
        return {
            snake_case(key): dict(item) if key in kept and isinstance(item, dict) else snake_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [snake_keys(item) for item in value]
    return value


def _load_schema(stream: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{stream}.json").read_text())
    return schema


def _property_names(schema: dict[str, Any]) -> set[str]:
    """Every property named anywhere in a schema."""
    names: set[str] = set()
    for name, inner in (schema.get("properties") or {}).items():
        names.add(name)
        names |= _property_names(inner)
    if isinstance(schema.get("items"), dict):
        names |= _property_names(schema["items"])
    return names


_DATA = _load_schema("events")["properties"]["data"]["properties"]
# labelsChanged's fields whose keys are label keys: the objects of user-named keys (`added`, `modified`).
LABEL_MAPS = frozenset(
    name
    for name, schema in _DATA.items()
    if "properties" not in schema and isinstance(schema.get("additionalProperties"), dict)
)


def snake_data(event_type: str, data: Any) -> Any:
    """An event's decoded `data` with its keys in snake_case (a labelsChanged's label keys as they are)."""
    return snake_keys(data, LABEL_MAPS if event_type == LABELS_CHANGED else ())


def _camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _json_renames(event_type: str) -> tuple[tuple[bytes, bytes], ...]:
    """(`"camelKey":`, `"snake_key":`) for the type's key and every key its payload schema names: DT's
    camelCase spelling of each snake_case name (a name it does not give back is left to the check)."""
    schema = _DATA.get(snake_case(event_type)) or {}
    camel = {_camel_case(name) for name in _property_names(schema)} | {event_type}
    return tuple(
        (f'"{name}":'.encode(), f'"{snake_case(name)}":'.encode())
        for name in sorted(camel)
        if snake_case(name) != name and not any(c.isdigit() for c in name)
    )


# A JSON text's skeleton: its quotes, colons and backslashes, and its ASCII capitals as `A`. A text
# without a backslash has a key with a capital exactly where its skeleton has `A":` or `:":` (the key's
# last kept character, then its closing quote and colon; spaces are gone), and a value never does, its
# closing quote being followed by `,`, `]`, `}` or the next string's opening quote.
_SKELETON_TABLE = bytes.maketrans(string.ascii_uppercase.encode(), b"A" * 26)
_SKELETON_DELETE = bytes(set(range(256)) - set(b'":\\' + string.ascii_uppercase.encode()))
# A text's layout: the text with its digits as 0. Texts of one layout differ in digits only, at the same
# places, so a rename (whose old keys have no digits) and the check above come out the same on each.
_DIGITS_AS_ZERO = bytes.maketrans(string.digits.encode(), b"0" * 10)
# Layouts kept per event type. Readings make a few layouts (their numbers' lengths vary a little); a
# layout seen twice is kept, and the lot is dropped when full rather than grown.
MAX_LAYOUTS = 256
# What cuts a text of a layout into the parts around its keys (a tuple of them, or the one part).
_Parts = Callable[[bytes], tuple[bytes, ...] | bytes]


class PayloadKeys:
    """Renames the keys of one event type's payloads in their JSON text, as `snake_data` does.

    In valid JSON a string followed by `:` is a key and a `"` inside a string is escaped, so replacing
    `"updateTime":` with `"update_time":` renames that key and never touches a value. A text that this
    does not wholly rename (an escape, a key the schema does not name, a space before a colon) is left to
    `snake_data`. Once a layout (below) has been seen twice, where its keys are is kept: a text of it is
    then cut around them and joined with the new names, at a fraction of the cost of the replacements.
    """

    __slots__ = ("_last", "_last_cut", "_layouts", "_renames", "_seen_once")

    def __init__(self, renames: tuple[tuple[bytes, bytes], ...]) -> None:
        self._renames = renames
        # Each layout kept: a %-template with the new names, and what cuts a text into its other parts.
        self._layouts: dict[bytes, tuple[bytes, _Parts]] = {}
        self._seen_once: set[bytes] = set()
        # The layout last used: the next text is most often of it, and comparing costs less than hashing.
        self._last: bytes | None = None
        self._last_cut: tuple[bytes, _Parts] = (b"", bytes)

    def rename(self, text: bytes) -> bytes | None:
        """The text with its keys renamed, or None where only decoding it will do."""
        layout = text.translate(_DIGITS_AS_ZERO)
        if layout == self._last:
            template, parts = self._last_cut
            return template % parts(text)
        cut = self._layouts.get(layout)
        if cut is not None:
            self._last, self._last_cut = layout, cut
            template, parts = cut
            return template % parts(text)
        renamed = self._replace(text)
        if renamed is not None:
            if layout in self._seen_once:
                if len(self._layouts) >= MAX_LAYOUTS:
                    self._layouts.clear()
                self._layouts[layout] = self._cut(text)
            else:
                if len(self._seen_once) >= MAX_LAYOUTS:
                    self._seen_once.clear()
                self._seen_once.add(layout)
        return renamed

    def _replace(self, text: bytes) -> bytes | None:
        for camel, snake in self._renames:
            text = text.replace(camel, snake)
        skeleton = text.translate(_SKELETON_TABLE, _SKELETON_DELETE)
        if b"\\" in skeleton or b'A":' in skeleton or b':":' in skeleton:
            return None
        return text

    def _cut(self, text: bytes) -> tuple[bytes, _Parts]:
        """(template, parts) such that `template % parts(text)` is `_replace(text)` for every text of the
        layout of `text`.

        The parts between keys that hold no digit are the same in every text of the layout: they go into
        the template, and only the others are cut out of each text (fewer pieces, less to copy).
        """
        keys = sorted(
            (at, at + len(camel), snake) for camel, snake in self._renames for at in _occurrences(text, camel)
        )
        layout = text.translate(_DIGITS_AS_ZERO)
        template, slices, start = [], [], 0
        for begin, end, snake in [*keys, (len(text), len(text), b"")]:  # the part after the last key too
            if b"0" not in layout[start:begin]:  # no digit: the same in every text
                template.append(text[start:begin].replace(b"%", b"%%"))
            else:
                template.append(b"%b")
                slices.append(slice(start, begin))
            template.append(snake.replace(b"%", b"%%"))
            start = end
        # One slice makes itemgetter give the part itself, not a tuple: `%` takes either.
        return b"".join(template), operator.itemgetter(*slices) if slices else _no_parts


def _no_parts(_text: bytes) -> tuple[bytes, ...]:
    return ()


def _occurrences(text: bytes, part: bytes) -> list[int]:
    found, at = [], text.find(part)
    while at >= 0:
        found.append(at)
        at = text.find(part, at + len(part))
    return found


_PAYLOAD_KEYS: dict[str, PayloadKeys | None] = {
    # labelsChanged: a text replacement could touch its label keys.
    name: PayloadKeys(_json_renames(name)) if spec.nested else None
    for name, spec in EVENT_TYPES.items()
}
# A type newer than the model: its keys are checked all the same, and renamed through `snake_data`.
_OTHER_TYPES = PayloadKeys(())


def payload_keys(event_type: str) -> PayloadKeys | None:
    """What renames the keys of the type's payload texts; None for labelsChanged (decode it)."""
    return _PAYLOAD_KEYS.get(event_type, _OTHER_TYPES)


def snake_data_json(event_type: str, data_json: bytes) -> bytes | None:
    """`snake_data` on an event's `data` as JSON text: the text with its keys renamed, or None where only
    decoding it will do."""
    keys = payload_keys(event_type)
    return None if keys is None else keys.rename(data_json)
