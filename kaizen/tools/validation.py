"""Check tool arguments against the tool's JSON Schema before calling it.

Models produce wrong arguments routinely; a precise message naming the
argument lets the model fix its next call, where a Python ``TypeError`` from
deep inside the tool would not. Supports the JSON Schema subset tools use:
``type`` (string or list), ``properties``, ``required``,
``additionalProperties``, ``items``, ``enum``, ``anyOf``/``oneOf``,
``minimum``/``maximum``. Unknown keywords are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_PY_NAMES = {
    bool: "boolean", int: "integer", float: "number", str: "string",
    list: "array", tuple: "array", dict: "object", type(None): "null",
}


def validate_arguments(schema: Mapping[str, Any], arguments: Any) -> tuple[dict[str, Any], list[str]]:
    """Return ``(arguments to call with, problems)``; never raises.

    Integral floats (``3.0``) given for ``integer`` parameters are passed on as
    ints, since JSON does not distinguish them; nothing else is converted.
    """
    if not isinstance(arguments, Mapping):
        return {}, [f"arguments must be a JSON object (dict), got {_kind(arguments)}"]
    bad_keys = [key for key in arguments if not isinstance(key, str)]
    if bad_keys:
        return {}, [f"argument name {bad_keys[0]!r} is not a string"]
    root = dict(schema)
    root.setdefault("type", "object")
    value, problems = _check(dict(arguments), root, "")
    return (value if isinstance(value, dict) else {}), problems


def _check(value: Any, schema: Any, path: str) -> tuple[Any, list[str]]:
    if not isinstance(schema, Mapping) or not schema:
        return value, []
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            for option in options:
                converted, problems = _check(value, option, path)
                if not problems:
                    value = converted
                    break
            else:
                kinds = ", ".join(_describe(option) for option in options)
                return value, [f"{_name(path)} must be one of: {kinds}; got {_kind(value)}"]

    expected = schema.get("type")
    if expected is not None:
        allowed = expected if isinstance(expected, list) else [expected]
        matched = next((kind for kind in allowed if isinstance(kind, str) and _is_type(value, kind)), None)
        if matched is None:
            return value, [f"{_name(path)} must be {' or '.join(map(str, allowed))}, got {_kind(value)}"]
        if matched == "integer" and isinstance(value, float):
            value = int(value)

    enum = schema.get("enum")
    if isinstance(enum, list) and not any(_same(value, option) for option in enum):
        return value, [f"{_name(path)} must be one of {enum!r}, got {value!r}"]

    problems = []
    if _is_number(value):
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        if _is_number(minimum) and value < minimum:
            problems.append(f"{_name(path)} must be >= {minimum}, got {value!r}")
        if _is_number(maximum) and value > maximum:
            problems.append(f"{_name(path)} must be <= {maximum}, got {value!r}")
    if isinstance(value, (list, tuple)) and isinstance(schema.get("items"), Mapping):
        items = []
        for index, item in enumerate(value):
            converted, item_problems = _check(item, schema["items"], f"{path}[{index}]")
            items.append(converted)
            problems.extend(item_problems)
        value = items
    if isinstance(value, Mapping) and (schema.get("type") == "object" or "properties" in schema):
        value, object_problems = _check_object(value, schema, path)
        problems.extend(object_problems)
    return value, problems


def _check_object(value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> tuple[dict[str, Any], list[str]]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    extra = schema.get("additionalProperties")
    problems: list[str] = []
    required = schema.get("required")
    for key in required if isinstance(required, list) else ():
        if key not in value:
            problems.append(f"missing required {_name(_join(path, key))}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        child = _join(path, str(key))
        if key in properties:
            out[key], item_problems = _check(item, properties[key], child)
        elif extra is True or isinstance(extra, Mapping) or (extra is None and not properties):
            # Undeclared keys are rejected unless the schema opts in: the tool is
            # called with **arguments, so an unexpected one would fail anyway.
            out[key], item_problems = _check(item, extra if isinstance(extra, Mapping) else {}, child)
        else:
            known = ", ".join(map(str, properties)) or "none"
            item_problems = [f"unknown {_name(child)} (known: {known})"]
        problems.extend(item_problems)
    return out, problems


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer()
        )
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, (list, tuple))
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "null":
        return value is None
    return True  # a type name we do not know: do not block the call


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(value: Any, option: Any) -> bool:
    """Equality that keeps JSON's distinction between true and 1."""
    return isinstance(value, bool) == isinstance(option, bool) and value == option


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _name(path: str) -> str:
    return f"argument {path!r}" if path else "arguments"


def _kind(value: Any) -> str:
    return _PY_NAMES.get(type(value), type(value).__name__)


def _describe(schema: Any) -> str:
    if isinstance(schema, Mapping):
        if "type" in schema:
            kind = schema["type"]
            return " or ".join(map(str, kind)) if isinstance(kind, list) else str(kind)
        if "enum" in schema:
            return f"one of {schema['enum']!r}"
    return "a value matching the schema"
