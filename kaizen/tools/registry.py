"""``ToolRegistry``: the tools an agent may call, and the one place calls are executed.

``execute`` is what the agent loop uses for every tool call a model makes,
so it never raises for anything a model can get wrong: unknown tool, bad
arguments and a raising tool all come back as ``ToolResult(ok=False)``.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from kaizen.core.bridge import in_thread, resolve, run_sync

from .errors import DuplicateToolError, InvalidToolError, ToolArgumentError, UnknownToolError
from .output import bound_output, safe_str, to_jsonable, truncate_head
from .result import ToolResult
from .tool import DEFAULT_DANGER, Danger, LegacyDanger, Tool
from .validation import validate_arguments

if TYPE_CHECKING:
    from kaizen.providers.types import ToolSpec

logger = logging.getLogger("kaizen.tools")

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_OUTPUT_CHARS = 100_000  # above the built-ins' own caps, so they are not cut twice


class ToolRegistry:
    """Named tools, their specs for the model, and safe execution of calls."""

    def __init__(self, tools: Iterable[Tool] = (), *, max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS) -> None:
        if isinstance(max_output_chars, bool) or not isinstance(max_output_chars, int) or max_output_chars < 1:
            raise InvalidToolError(f"max_output_chars must be a positive int, got {max_output_chars!r}")
        self.max_output_chars = max_output_chars
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()
        for tool in tools:
            self.register(tool)

    # -- registration -------------------------------------------------------

    def register(self, tool: Tool) -> Tool:
        """Add ``tool``; a second tool with the same name is an error."""
        if not isinstance(tool, Tool):
            raise InvalidToolError(f"register() expects a Tool, got {type(tool).__name__} (use @registry.tool for functions)")
        with self._lock:
            if tool.name in self._tools:
                raise DuplicateToolError(f"a tool named {tool.name!r} is already registered")
            self._tools[tool.name] = tool
        return tool

    @overload
    def tool(self, name: F, description: None = None, danger: Danger | LegacyDanger = DEFAULT_DANGER) -> F: ...

    @overload
    def tool(self, name: str | None = None, description: str | None = None,
             danger: Danger | LegacyDanger = DEFAULT_DANGER) -> Callable[[F], F]: ...

    def tool(self, name: Any = None, description: str | None = None,
             danger: Danger | LegacyDanger = DEFAULT_DANGER) -> Any:
        """Decorator registering a plain function as a tool; returns the function unchanged.

        Works bare (``@registry.tool``, a "side_effect" tool) or configured
        (``@registry.tool(name="grep", danger="read_only")``).
        """
        if callable(name):  # used bare: @registry.tool
            self.register(Tool.from_function(name))
            return name

        def decorator(func: F) -> F:
            self.register(Tool.from_function(func, name=name, description=description, danger=danger))
            return func

        return decorator

    # -- lookup -------------------------------------------------------------

    def get(self, name: str) -> Tool:
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownToolError(f"unknown tool {name!r}; known tools: {known}")
        return tool

    def names(self) -> list[str]:
        """Tool names in registration order."""
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        """Every tool as a ``kaizen.providers.types.ToolSpec``, to pass to a provider."""
        return [tool.spec() for tool in self]

    def spec_dicts(self) -> list[dict[str, Any]]:
        """Every tool's spec as a plain dict."""
        return [tool.spec_dict() for tool in self]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    # -- execution ----------------------------------------------------------

    async def aexecute(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """``execute`` for async callers: async tools are awaited here, sync ones run on a worker
        thread so they do not block the event loop."""
        prepared = self._prepare(name, arguments)
        if isinstance(prepared, ToolResult):
            return prepared
        tool, call_args = prepared
        try:
            if tool.is_async:
                value = await tool.func(**call_args)
            else:
                value = await in_thread(tool.func, **call_args)
                if inspect.isawaitable(value):  # a sync wrapper around a coroutine
                    value = await value
        except Exception as exc:
            return self._raised(tool, exc)
        return self._success(value)

    def execute(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Validate ``arguments``, call the tool and return its JSON-safe, size-bounded result.

        A sync tool is called directly in this thread; an async one runs on the one sync/async
        bridge (``kaizen.core.bridge``). Never raises for what a model can get wrong.
        """
        prepared = self._prepare(name, arguments)
        if isinstance(prepared, ToolResult):
            return prepared
        tool, call_args = prepared
        try:
            if tool.is_async:
                func = tool.func
                value = run_sync(lambda: func(**call_args))
            else:
                value = resolve(tool.func(**call_args))
        except Exception as exc:
            return self._raised(tool, exc)
        return self._success(value)

    def _prepare(self, name: str, arguments: Mapping[str, Any] | None) -> tuple[Tool, dict[str, Any]] | ToolResult:
        """The tool and its checked arguments, or the failure to report instead of calling it."""
        try:
            tool = self.get(name)
        except UnknownToolError as exc:
            return self._failure(exc)
        call_args, problems = validate_arguments(tool.parameters, {} if arguments is None else arguments)
        if problems:
            return self._failure(ToolArgumentError(tool.name, problems))
        return tool, call_args

    def _success(self, value: Any) -> ToolResult:
        return ToolResult.success(bound_output(to_jsonable(value), self.max_output_chars))

    def _raised(self, tool: Tool, exc: Exception) -> ToolResult:
        logger.info("tool %r failed: %s: %s", tool.name, type(exc).__name__, exc, exc_info=exc)
        return self._failure(exc)

    def _failure(self, exc: BaseException) -> ToolResult:
        return ToolResult.failure(truncate_head(f"{type(exc).__name__}: {safe_str(exc)}", self.max_output_chars))
