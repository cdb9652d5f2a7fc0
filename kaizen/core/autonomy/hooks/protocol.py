"""Hook objects in the original Kailash Kaizen's shape: ``BaseHook`` and the ``HookHandler`` protocol.

A hook object has a ``name`` (used in logs and ``HookManager.get_stats``) and a ``handle(context)``
method; ``on_error(error, context)`` is called when ``handle`` raises. Plain functions work as
hooks too; a class is only needed for hooks that keep state or are found by
``HookManager.discover_filesystem_hooks``, which registers ``BaseHook`` subclasses.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .errors import InvalidHookArgumentError
from .types import HookContext, HookResult


@runtime_checkable
class HookHandler(Protocol):
    """Anything with a ``handle(context)`` method (sync or async) returning ``HookResult | None``."""

    def handle(self, context: HookContext) -> Any: ...


class BaseHook:
    """Base class of hook objects; subclasses override ``handle`` (and may set ``events``, the
    events ``register_hook`` and filesystem discovery register them on)."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidHookArgumentError(f"{type(self).__name__}: a hook name must be a non-empty str, got {name!r}")
        self.name = name

    async def handle(self, context: HookContext) -> HookResult:
        raise NotImplementedError(f"{type(self).__name__}.handle(context) must be implemented")

    async def on_error(self, error: Exception, context: HookContext) -> None:
        """Called with the exception when ``handle`` raises; the default does nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


__all__ = ["BaseHook", "HookHandler"]
