"""Tools an agent can call: definitions, a registry that executes calls safely, and built-ins.

    from kaizen.tools import ToolRegistry, builtin_tools

    registry = ToolRegistry(builtin_tools("/path/to/project"))

    @registry.tool(danger="read_only")
    def add(a: int, b: int = 1) -> int:
        \"\"\"Add two integers.\"\"\"
        return a + b

    registry.specs()                     # -> list[ToolSpec] for the provider
    registry.execute("add", {"a": 2})    # -> ToolResult(ok=True, output=3, error=None)
"""

from __future__ import annotations

from . import errors
from .builtin import builtin_tools
from .errors import (
    DuplicateToolError,
    InvalidToolError,
    PathOutsideWorkdirError,
    ToolArgumentError,
    ToolError,
    ToolSchemaError,
    UnknownToolError,
)
from .registry import ToolRegistry
from .result import ToolResult
from .schema import schema_from_function
from .tool import Tool

__all__ = [
    "DuplicateToolError",
    "InvalidToolError",
    "PathOutsideWorkdirError",
    "Tool",
    "ToolArgumentError",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSchemaError",
    "UnknownToolError",
    "builtin_tools",
    "errors",
    "schema_from_function",
]
