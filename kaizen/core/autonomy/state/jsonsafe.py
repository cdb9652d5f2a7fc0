"""Strict JSON values: checked when they enter the state, copied when they leave.

Persisted data is JSON only. Checking at the call that stores a value means a
bad value is reported where it was made (naming the field), not at a later save.
The rules themselves live in ``kaizen.core.values``; this module reports them as
state errors.
"""

from __future__ import annotations

from typing import Any

from kaizen.core.values import MAX_DEPTH, JSONValue, json_copy
from kaizen.core.values import checked_json_copy as _checked_json_copy

from .errors import InvalidStateTypeError, InvalidStateValueError

__all__ = ["MAX_DEPTH", "JSONValue", "checked_json_copy", "json_copy"]


def checked_json_copy(value: Any, where: str) -> JSONValue:
    """Return a deep copy of ``value`` made only of JSON types, or raise a state error naming the path.

    Tuples become lists (JSON has no tuples). NaN and infinities are refused:
    JSON cannot carry them and silently turning them into null would change data.
    """
    return _checked_json_copy(
        value, where, type_error=InvalidStateTypeError, value_error=InvalidStateValueError
    )
