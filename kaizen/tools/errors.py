"""Errors of the tools package.

Messages name what failed (tool name, argument, path) so the caller, or a
model reading a failed ``ToolResult``, can correct the call. Input errors
subclass the matching built-in (``ValueError``, ``KeyError``...) so generic
handlers keep working.

``ToolRegistry.execute`` never raises these for a bad call: it reports them
as ``ToolResult(ok=False, error="<ErrorName>: <message>")``.
"""

from __future__ import annotations


class ToolError(Exception):
    """Base class of every error raised by the tools package."""


class InvalidToolError(ToolError, ValueError):
    """A tool definition is unusable (bad name, danger level, schema or function)."""


class DuplicateToolError(ToolError, ValueError):
    """A tool with the same name is already registered."""


class UnknownToolError(ToolError, KeyError):
    """No tool with the requested name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown tool"


class ToolSchemaError(ToolError, TypeError):
    """A function's signature cannot be described as a JSON Schema (e.g. ``*args``, ``set``)."""


class ToolArgumentError(ToolError, ValueError):
    """Arguments given to a tool do not match its parameter schema."""

    def __init__(self, tool_name: str, problems: list[str]) -> None:
        super().__init__(f"invalid arguments for tool {tool_name!r}: " + "; ".join(problems))
        self.tool_name = tool_name
        self.problems = problems


class PathOutsideWorkdirError(ToolError, PermissionError):
    """A file tool was asked for a path that resolves outside its working directory."""
