"""JSON values and integer bounds: the checks every layer shares.

Everything we persist or send is JSON, written and read by orjson, so what a
value may be is decided once, here: made of dict/list/str/int/float/bool/None,
integers within 64 bits, finite numbers, str keys, bounded nesting. Each layer
passes its own exception classes, so a bad value is reported in that layer's
terms and names the field. This module imports nothing of the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard, cast

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1  # orjson (and most JSON parsers) cannot carry wider integers
MAX_DEPTH = 200

JSONValue = Any  # dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None


def is_int(value: object) -> TypeGuard[int]:
    """True for an ``int`` that is not a ``bool`` (``True`` is an int to Python, not to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """True for an ``int`` or ``float`` that is not a ``bool`` (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fits_json_int(value: int) -> bool:
    """True if JSON (orjson) can carry ``value`` without turning it into text or losing digits."""
    return INT_MIN <= value <= INT_MAX


def check_int(
    value: object,
    name: str,
    *,
    minimum: int | None = None,
    type_error: type[Exception] = TypeError,
    value_error: type[Exception] = ValueError,
) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``, else raise naming ``name``."""
    if not is_int(value):
        raise type_error(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise value_error(f"{name} must be >= {minimum}, got {value}")
    return value


def checked_json_copy(
    value: Any,
    where: str,
    *,
    type_error: type[Exception] = TypeError,
    value_error: type[Exception] = ValueError,
    mappings: type | tuple[type, ...] = dict,
    _depth: int = 0,
) -> JSONValue:
    """Return a deep copy of ``value`` made only of JSON types, or raise naming the path.

    Tuples become lists (JSON has no tuples); ``mappings`` says which mapping types
    are taken as objects. NaN and infinities are refused: JSON cannot carry them and
    silently turning them into null would change data.
    """
    try:
        return _copy(value, mappings, _depth)
    except _Refused as refused:
        path = where + "".join(reversed(refused.path))
        raise (type_error if refused.is_type else value_error)(f"{path}: {refused.detail}") from None


class _Refused(Exception):
    """A value ``checked_json_copy`` refuses; the path to it is collected on the way out, so a
    value that is fine (nearly all of them) costs no path text."""

    def __init__(self, is_type: bool, detail: str) -> None:
        self.is_type = is_type
        self.detail = detail
        self.path: list[str] = []


def _copy(value: Any, mappings: type | tuple[type, ...], depth: int) -> JSONValue:
    if depth > MAX_DEPTH:
        raise _Refused(False, f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise _Refused(False, f"integer {value} does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(False, f"{value!r} is not a JSON number")
        return float(value)
    inner = depth + 1
    if isinstance(value, mappings):
        out: dict[str, JSONValue] = {}
        for key, item in cast(Mapping[Any, Any], value).items():
            if not isinstance(key, str):
                raise _Refused(True, f"key {key!r} is a {type(key).__name__}; JSON object keys must be str")
            if type(item) is str and inner <= MAX_DEPTH:  # the usual leaf, without a call
                out[key] = item
                continue
            try:
                out[key] = _copy(item, mappings, inner)
            except _Refused as refused:
                refused.path.append(f"[{key!r}]")
                raise
        return out
    if isinstance(value, (list, tuple)):
        items: list[JSONValue] = []
        for index, item in enumerate(value):
            if type(item) is str and inner <= MAX_DEPTH:
                items.append(item)
                continue
            try:
                items.append(_copy(item, mappings, inner))
            except _Refused as refused:
                refused.path.append(f"[{index}]")
                raise
        return items
    raise _Refused(
        True,
        f"value of type {type(value).__name__} is not JSON-serializable (use dict, list, str, int, float, bool or None)",
    )


def json_copy(value: JSONValue) -> JSONValue:
    """Deep-copy a value already known to be JSON (cheaper than copy.deepcopy)."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value


def map_strings(
    value: JSONValue,
    change: Callable[[str], Any],
    on_item: Callable[[Any, Any], Any] | None = None,
) -> JSONValue:
    """A copy of a JSON value with every string passed through ``change``.

    Mappings become dicts and tuples lists. ``on_item(key, item)``, if given, may return a
    replacement for a mapping's item (anything but ``None``) instead of walking into it.
    """
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        out: dict[Any, JSONValue] = {}
        for key, item in value.items():
            replaced = None if on_item is None else on_item(key, item)
            out[key] = map_strings(item, change, on_item) if replaced is None else replaced
        return out
    if isinstance(value, (list, tuple)):
        return [map_strings(item, change, on_item) for item in value]
    return value
