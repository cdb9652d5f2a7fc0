"""Tool definitions, the registry, argument validation and safe execution."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.tools import (
    DuplicateToolError,
    InvalidToolError,
    Tool,
    ToolRegistry,
    ToolResult,
    UnknownToolError,
    errors,
)


def make_registry() -> ToolRegistry:
    registry = ToolRegistry(max_output_chars=200)

    @registry.tool
    def add(a: int, b: int = 1) -> int:
        """Add two integers."""
        return a + b

    @registry.tool(name="greet", description="Say hello.", danger="safe")
    def greet_function(name: str, loud: bool = False, times: float | None = None, tags: list[str] | None = None) -> str:
        text = f"hello {name}"
        return text.upper() if loud else text

    @registry.tool(danger="dangerous")
    async def fail(message: str) -> None:
        """Always raise."""
        await asyncio.sleep(0)
        raise ValueError(message)

    return registry


def test_tool_definition_is_validated():
    ok = dict(name="t", description="", parameters={"type": "object"}, danger="safe", func=lambda: None)
    Tool(**ok)
    for field, value, fragment in [
        ("name", "1abc", "invalid tool name '1abc'"),
        ("name", "a" * 65, "invalid tool name"),
        ("name", "has space", "invalid tool name"),
        ("danger", "risky", "danger of tool 't' must be one of read_only, idempotent, side_effect"),
        ("func", 3, "func of tool 't'"),
        ("parameters", {"type": "string"}, "type 'object'"),
        ("parameters", {"type": "object", "properties": {"x": 1}}, "properties"),
        ("parameters", {"type": "object", "properties": {}, "required": ["y"]}, "'y'"),
        ("parameters", {"type": "object", "default": math.nan}, "not JSON"),
    ]:
        with pytest.raises(InvalidToolError, match=fragment.replace("(", r"\(")):
            Tool(**{**ok, field: value})


def test_registry_basics():
    registry = make_registry()
    assert registry.names() == ["add", "greet", "fail"]
    assert "add" in registry and "nope" not in registry and 3 not in registry
    assert registry.get("fail").danger == "side_effect"
    assert len(registry) == 3 and [tool.name for tool in registry] == registry.names()


def test_duplicate_names_are_rejected():
    registry = make_registry()
    with pytest.raises(DuplicateToolError, match="'add'"):
        registry.register(Tool("add", "", {"type": "object"}, "safe", lambda: 0))


def test_unknown_tool_lists_known_names():
    registry = make_registry()
    with pytest.raises(UnknownToolError) as info:
        registry.get("subtract")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "unknown tool 'subtract'; known tools: add, greet, fail"
    result = registry.execute("subtract", {})
    assert not result.ok and result.error.startswith("UnknownToolError: unknown tool 'subtract'")


def test_spec_dicts_and_specs():
    registry = make_registry()
    spec = registry.get("add").spec_dict()
    assert spec == {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "default": 1}},
            "required": ["a"],
            "additionalProperties": False,
        },
    }
    spec["parameters"]["properties"].clear()  # a copy: the tool is unaffected
    assert registry.get("add").parameters["properties"]
    assert [s["name"] for s in registry.spec_dicts()] == ["add", "greet", "fail"]
    types = pytest.importorskip("kaizen.providers.types")
    specs = registry.specs()
    assert all(isinstance(s, types.ToolSpec) for s in specs)
    assert specs[1].name == "greet" and specs[1].description == "Say hello."


def test_execute_success_sync_and_async():
    registry = make_registry()
    assert registry.execute("add", {"a": 2, "b": 3}) == ToolResult(ok=True, output=5, error=None)
    assert registry.execute("greet", {"name": "ada", "loud": True}).output == "HELLO ADA"

    async def main():
        return await registry.aexecute("add", {"a": 40, "b": 2})

    assert asyncio.run(main()).output == 42


def test_execute_inside_a_running_loop():
    registry = make_registry()

    async def main():
        return registry.execute("add", {"a": 1})

    assert asyncio.run(main()).output == 2


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        ({}, "missing required argument 'a'"),
        ({"a": 1, "c": 2}, "unknown argument 'c' (known: a, b)"),
        ({"a": "1"}, "argument 'a' must be integer, got string"),
        ({"a": True}, "argument 'a' must be integer, got boolean"),
        ({"a": 1.5}, "argument 'a' must be integer, got number"),
        (["a"], "arguments must be a JSON object (dict), got array"),
    ],
)
def test_argument_validation_names_the_argument(arguments, fragment):
    result = make_registry().execute("add", arguments)
    assert not result.ok and result.output is None
    assert result.error.startswith("ToolArgumentError: invalid arguments for tool 'add': ")
    assert fragment in result.error


def test_validation_of_nested_and_nullable_arguments():
    registry = make_registry()
    assert registry.execute("greet", {"name": "x", "times": None, "tags": ["a"]}).ok
    result = registry.execute("greet", {"name": "x", "tags": ["a", 2]})
    assert "argument 'tags[1]' must be string, got integer" in result.error
    assert registry.execute("add", {"a": 2.0}).output == 3  # JSON integral float accepted as int


def test_raising_tool_becomes_error_result():
    result = make_registry().execute("fail", {"message": "bad input"})
    assert result == ToolResult(ok=False, output=None, error="ValueError: bad input")


def test_tool_with_a_signature_mismatch_is_an_error_result():
    registry = ToolRegistry()
    registry.register(Tool("odd", "", {"type": "object", "properties": {"x": {}}}, "safe", lambda: None))
    result = registry.execute("odd", {"x": 1})
    assert not result.ok and result.error.startswith("TypeError:")


@dataclasses.dataclass
class Point:
    x: int
    where: Path


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


def test_output_is_made_json_safe():
    registry = ToolRegistry()
    value = {
        "point": Point(1, Path("/a/b")),
        "when": datetime(2024, 1, 2, tzinfo=timezone.utc),
        1: {3, 4} and [3, 4],
        "t": (1, "two"),
        "bytes": b"\xffok",
        "nan": math.nan,
        "obj": Opaque(),
    }
    registry.register(Tool("thing", "", {"type": "object"}, "safe", lambda: value))
    result = registry.execute("thing", {})
    assert result.ok
    json.dumps(result.output, allow_nan=False)  # strictly JSON
    assert result.output["point"] == {"x": 1, "where": "/a/b"}
    assert result.output["when"] == "2024-01-02T00:00:00+00:00"
    assert result.output["1"] == [3, 4] and result.output["t"] == [1, "two"]
    assert result.output["bytes"] == "\ufffdok" and result.output["nan"] == "nan" and result.output["obj"] == "opaque!"


def test_large_text_output_is_truncated_with_a_note():
    registry = ToolRegistry(max_output_chars=100)
    registry.register(Tool("big", "", {"type": "object"}, "safe", lambda: "x" * 1000))
    registry.register(Tool("many", "", {"type": "object"}, "safe", lambda: ["y" * 50] * 10))
    text = registry.execute("big", {}).output
    assert text.startswith("x" * 100) and "900 of 1000 characters cut" in text and len(text) < 200
    many = registry.execute("many", {}).output
    assert isinstance(many, str) and "characters cut" in many and len(many) < 200


def test_result_to_text():
    assert ToolResult(ok=True, output={"a": 1}).to_text() == '{"a": 1}'
    assert ToolResult(ok=True, output="plain").to_text() == "plain"
    assert ToolResult(ok=False, error="ValueError: x").to_text() == "Error: ValueError: x"
    with pytest.raises(ValueError):
        ToolResult(ok=False)


def test_errors_module_is_exported():
    assert errors.UnknownToolError is UnknownToolError
    assert issubclass(errors.PathOutsideWorkdirError, PermissionError)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=st.dictionaries(st.sampled_from(["name", "loud", "times", "tags", "x", ""]) | st.text(max_size=6), json_values, max_size=5))
def test_arbitrary_arguments_never_raise_out_of_execute(arguments):
    registry = HYPOTHESIS_REGISTRY
    result = registry.execute("greet", arguments)
    assert isinstance(result, ToolResult)
    if result.ok:
        assert isinstance(arguments["name"], str)
        assert set(arguments) <= {"name", "loud", "times", "tags"}
        assert result.output.lower().startswith("hello")
    else:
        assert result.error.startswith("ToolArgumentError: invalid arguments for tool 'greet'")


@settings(max_examples=100, deadline=None)
@given(arguments=st.one_of(json_values, st.dictionaries(st.integers(), st.integers(), max_size=2)))
def test_any_argument_value_never_raises(arguments):
    result = HYPOTHESIS_REGISTRY.execute("add", arguments)
    assert isinstance(result, ToolResult)
    assert result.ok == (
        isinstance(arguments, dict)
        and set(arguments) <= {"a", "b"}
        and "a" in arguments
        and all(
            not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v.is_integer()))
            for v in arguments.values()
        )
    )


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=70))
def test_tool_names_follow_the_provider_pattern(name):
    import re

    valid = re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", name) is not None
    try:
        Tool(name, "", {"type": "object"}, "safe", lambda: None)
    except InvalidToolError as exc:
        assert not valid and repr(name) in str(exc)
    else:
        assert valid


HYPOTHESIS_REGISTRY = make_registry()
