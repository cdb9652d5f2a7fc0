"""Build a tool's JSON Schema and description from a plain Python function.

Type hints become parameter types, defaults make parameters optional, the
docstring's first paragraph becomes the description and its ``Args:``
section (or ``:param x:`` lines) the parameter descriptions, so a function
is documented once, for humans and models alike.
"""

from __future__ import annotations

import enum
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ToolSchemaError

_SIMPLE: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}
_ARGS_HEADERS = {"args:", "arguments:", "parameters:", "params:"}
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")
_GOOGLE_PARAM = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def schema_from_function(func: Callable[..., Any]) -> dict[str, Any]:
    """JSON Schema (type ``object``) for the keyword arguments of ``func``."""
    where = getattr(func, "__qualname__", None) or repr(func)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolSchemaError(f"tool function {where}: cannot read its signature ({exc})") from exc
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # unresolvable forward reference, bad annotation
        raise ToolSchemaError(f"tool function {where}: cannot resolve its type hints ({exc})") from exc

    param_docs = parameter_docs(inspect.getdoc(func))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        label = f"parameter {param.name!r} of tool function {where}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolSchemaError(f"{label}: *args/**kwargs cannot be described by a JSON schema")
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolSchemaError(f"{label}: positional-only parameters cannot be passed by name")
        schema = type_schema(hints.get(param.name, Any), label)
        if param.default is param.empty:
            required.append(param.name)
        else:
            if param.default is None:  # "x: int = None": the model may send null for it
                schema = _nullable(schema)
            if _is_json_value(param.default):
                schema["default"] = param.default
        if param.name in param_docs and "description" not in schema:
            schema["description"] = param_docs[param.name]
        properties[param.name] = schema

    result: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        result["required"] = required
    return result


def type_schema(hint: Any, where: str) -> dict[str, Any]:
    """JSON Schema for one type hint; raises ``ToolSchemaError`` naming ``where`` if impossible."""
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint is None or hint is type(None):
        return {"type": "null"}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        schema = type_schema(args[0], where)
        text = next((meta for meta in args[1:] if isinstance(meta, str)), None)
        if text:
            schema["description"] = text
        return schema
    if origin is typing.Union or origin is types.UnionType:
        return _union_schema(args, where)
    if origin is typing.Literal:
        return _literal_schema(args, where)
    if hint is list or origin is list or origin is Sequence or hint is Sequence:
        schema = {"type": "array"}
        if args and args[0] is not Any:
            schema["items"] = type_schema(args[0], f"{where} (list item)")
        return schema
    if hint is dict or origin is dict or origin is Mapping or hint is Mapping:
        schema = {"type": "object"}
        if len(args) == 2:
            if args[0] is not str:
                raise ToolSchemaError(f"{where}: JSON object keys are strings, not {_type_name(args[0])}")
            if args[1] is not Any:
                schema["additionalProperties"] = type_schema(args[1], f"{where} (dict value)")
        return schema
    raise ToolSchemaError(
        f"{where}: type {_type_name(hint)} has no JSON Schema equivalent "
        "(use str, int, float, bool, list, dict, Literal, Optional or Any)"
    )


def _union_schema(args: tuple[Any, ...], where: str) -> dict[str, Any]:
    options = [type_schema(arg, where) for arg in args if arg is not type(None)]
    nullable = any(arg is type(None) for arg in args)
    if any(option == {} for option in options):
        return {}
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return _nullable(schema) if nullable else schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if not schema or kind == "null" or (isinstance(kind, list) and "null" in kind):
        return schema
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


def _literal_schema(values: tuple[Any, ...], where: str) -> dict[str, Any]:
    values = tuple(v.value if isinstance(v, enum.Enum) else v for v in values)
    if not all(_is_json_value(v) and not isinstance(v, (list, dict)) for v in values):
        raise ToolSchemaError(f"{where}: Literal values must be str, int, float, bool or None")
    kinds = {_SIMPLE.get(type(v), "null") for v in values}
    schema: dict[str, Any] = {"enum": list(values)}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    return schema


def description_from_doc(doc: str | None) -> str:
    """The first paragraph of a (cleaned) docstring, as one line."""
    if not doc:
        return ""
    paragraph = inspect.cleandoc(doc).strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines() if line.strip())


def parameter_docs(doc: str | None) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section or ``:param x:`` lines."""
    if not doc:
        return {}
    found: dict[str, str] = {}
    current: str | None = None  # parameter whose description continues on the next line
    section_indent: int | None = None  # indent of the "Args:" header while inside that section
    param_indent = 0
    for raw in inspect.cleandoc(doc).splitlines():
        line = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if not line:
            if section_indent is None:
                current = None  # a blank line ends a :param: description
            continue
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            current, section_indent = sphinx.group(1), None
            found[current] = sphinx.group(2).strip()
            continue
        if line.startswith(":"):  # :returns:, :raises: ...
            current = None
            continue
        if line.lower() in _ARGS_HEADERS:
            section_indent, current = indent, None
            continue
        if section_indent is not None:
            if indent <= section_indent:  # "Returns:" or other text ends the Args section
                section_indent = current = None
                continue
            google = _GOOGLE_PARAM.match(line)
            if google and (current is None or indent <= param_indent):
                current, param_indent = google.group(1).lstrip("*"), indent
                found[current] = google.group(2).strip()
                continue
        if current is not None:
            found[current] = f"{found[current]} {line}".strip()
    return {name: text for name, text in found.items() if text}


def _is_json_value(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint)
