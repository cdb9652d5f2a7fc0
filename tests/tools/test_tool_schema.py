"""JSON Schema generation from type hints and docstrings."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

import pytest

from kaizen.tools import Tool, ToolSchemaError, schema_from_function
from kaizen.tools.schema import description_from_doc, parameter_docs


def search(
    query: str,
    limit: int = 10,
    threshold: float = 0.5,
    exact: bool = False,
    tags: list[str] | None = None,
    filters: dict[str, int] = None,  # type: ignore[assignment]
    owner: Optional[str] = None,
    mode: Literal["fast", "deep"] = "fast",
    note: Annotated[str, "a free-form note"] = "",
    anything: Any = None,
    raw=None,
) -> list[str]:
    """Search the index
    for documents.

    Returns matching ids, best first.

    Args:
        query: Words to look for.
        limit: How many results
            to return at most.
    """
    return []


def test_schema_from_type_hints():
    schema = schema_from_function(search)
    props = schema["properties"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["query"]
    assert props["query"] == {"type": "string", "description": "Words to look for."}
    assert props["limit"] == {"type": "integer", "default": 10, "description": "How many results to return at most."}
    assert props["threshold"] == {"type": "number", "default": 0.5}
    assert props["exact"] == {"type": "boolean", "default": False}
    assert props["tags"] == {"type": ["array", "null"], "items": {"type": "string"}, "default": None}
    assert props["filters"] == {"type": ["object", "null"], "additionalProperties": {"type": "integer"}, "default": None}
    assert props["owner"] == {"type": ["string", "null"], "default": None}
    assert props["mode"] == {"enum": ["fast", "deep"], "type": "string", "default": "fast"}
    assert props["note"] == {"type": "string", "description": "a free-form note", "default": ""}
    assert props["anything"] == {"default": None}
    assert props["raw"] == {"default": None}


def test_description_is_first_docstring_paragraph():
    tool = Tool.from_function(search)
    assert tool.description == "Search the index for documents."
    assert tool.name == "search" and tool.danger == "side_effect"  # undeclared: the safe default
    assert description_from_doc(None) == ""


def test_sphinx_param_docs():
    doc = """Do it.

    :param path: where to look
        (relative).
    :param int depth: how deep
    :returns: nothing
    """
    assert parameter_docs(doc) == {"path": "where to look (relative).", "depth": "how deep"}


def test_union_without_none_becomes_any_of():
    def f(value: int | str) -> None: ...

    assert schema_from_function(f)["properties"]["value"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def test_function_without_parameters():
    def ping() -> str:
        """Ping."""
        return "pong"

    assert schema_from_function(ping) == {"type": "object", "properties": {}, "additionalProperties": False}


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("def f(*args): pass", "*args"),
        ("def f(**kw): pass", "*args/**kwargs"),
        ("def f(a, /): pass", "positional-only"),
        ("def f(a: set): pass", "set"),
        ("def f(a: dict[int, str]): pass", "keys are strings"),
        ("def f(a: tuple[int, int]): pass", "no JSON Schema equivalent"),
    ],
)
def test_unsupported_signatures_name_the_parameter(source, fragment):
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(ToolSchemaError) as info:
        schema_from_function(namespace["f"])
    assert fragment in str(info.value)
    if "(a" in source:
        assert "parameter 'a' of tool function f" in str(info.value)
