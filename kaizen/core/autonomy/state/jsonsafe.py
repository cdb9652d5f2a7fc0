"""Strict JSON values: checked when they enter the state, copied when they leave.

Persisted data is JSON only. Checking at the call that stores a value means a
bad value is reported where it was made (naming the field), not at a later save.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidStateTypeError, InvalidStateValueError

MAX_DEPTH = 200
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

JSONValue = Any  # dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None


def checked_json_copy(value: Any, where: str, _depth: int = 0) -> JSONValue:
    """Return a deep copy of ``value`` made only of JSON types, or raise naming the path.

    Tuples become lists (JSON has no tuples). NaN and infinities are refused:
    JSON cannot carry them and silently turning them into null would change data.
    """
    if _depth > MAX_DEPTH:
        raise InvalidStateValueError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise InvalidStateValueError(f"{where}: integer {value} does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidStateValueError(f"{where}: {value!r} is not a JSON number")
        return float(value)
    if isinstance(value, dict):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidStateTypeError(
                    f"{where}: key {key!r} is a {type(key).__name__}; JSON object keys must be str"
                )
            out[key] = checked_json_copy(item, f"{where}[{key!r}]", _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [checked_json_copy(item, f"{where}[{i}]", _depth + 1) for i, item in enumerate(value)]
    raise InvalidStateTypeError(
        f"{where}: value of type {type(value).__name__} is not JSON-serializable "
        "(use dict, list, str, int, float, bool or None)"
    )


def json_copy(value: JSONValue) -> JSONValue:
    """Deep-copy a value already known to be JSON (cheaper than copy.deepcopy)."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value
