"""Lifecycle hooks for autonomous agents (``kaizen.core.autonomy.hooks``).

Names match Kailash Kaizen's hooks module so migrating code keeps working::

    from kaizen.core.autonomy.hooks import HookManager, HookEvent, HookResult

    hooks = HookManager()

    @hooks.on(HookEvent.PRE_TOOL_USE)
    def no_rm(context):
        if "rm -rf" in context.data.get("arguments", {}).get("command", ""):
            return HookResult.block("rm -rf is not allowed")

    outcome = hooks.trigger_sync("pre_tool_use", {"tool_name": "Bash", "arguments": {...}})
    if outcome.blocked:
        ...

``await hooks.trigger(event, agent_id, data)`` is the original's async form (a list of
``HookResult``); ``await hooks.atrigger(...)`` returns a ``HookOutcome`` like ``trigger_sync``.
"""

from __future__ import annotations

from . import errors
from .errors import (
    HookError,
    InvalidHookArgumentError,
    InvalidHookEventError,
    InvalidHookHandlerError,
    UnknownHookHandleError,
)
from .events import HookEvent, HookPriority
from .manager import HookManager
from .protocol import BaseHook, HookHandler
from .types import HookContext, HookOutcome, HookResult

__all__ = [
    "BaseHook",
    "HookContext",
    "HookError",
    "HookEvent",
    "HookHandler",
    "HookManager",
    "HookOutcome",
    "HookPriority",
    "HookResult",
    "InvalidHookArgumentError",
    "InvalidHookEventError",
    "InvalidHookHandlerError",
    "UnknownHookHandleError",
    "errors",
]
