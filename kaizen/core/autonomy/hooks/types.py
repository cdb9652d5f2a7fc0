"""Values passed to hooks (``HookContext``) and returned by them (``HookResult``).

The original Kailash Kaizen's ``hooks.types`` module: ``HookEvent`` and ``HookPriority`` are
importable from here too.

``HookOutcome`` is what a trigger hands back to the agent loop: every hook's
result plus the first block, so a loop can write ``if outcome.blocked: ...``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidHookArgumentError
from .events import HookEvent, HookPriority


def new_trace_id() -> str:
    """A random id that ties together the hooks (and logs) of one trigger."""
    return uuid.uuid4().hex


@dataclass
class HookContext:
    """What a hook sees: the event, the agent, and event-specific ``data``.

    The hooks of one trigger share one context, so an earlier hook may add
    to ``data`` or ``metadata`` for later ones. ``data`` and ``metadata`` are
    shallow copies of what the trigger was given. ``timestamp`` is seconds since
    the epoch, as in Kailash Kaizen (None means now); ``timestamp_iso`` gives it as
    ISO 8601 text in UTC.
    """

    event_type: HookEvent
    agent_id: str = ""
    timestamp: float = field(default_factory=time.time)
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    trace_id: str = field(default_factory=new_trace_id)

    def __post_init__(self) -> None:
        self.event_type = HookEvent.coerce(self.event_type)
        if self.timestamp is None:
            self.timestamp = time.time()
        elif isinstance(self.timestamp, bool) or not isinstance(self.timestamp, (int, float)):
            raise InvalidHookArgumentError(
                f"HookContext.timestamp must be seconds since the epoch (a float), got {type(self.timestamp).__name__}"
            )
        if self.trace_id is None:
            self.trace_id = new_trace_id()
        if not isinstance(self.agent_id, str):
            raise InvalidHookArgumentError(
                f"HookContext.agent_id must be a str, got {type(self.agent_id).__name__}"
            )
        for label in ("data", "metadata"):
            value = getattr(self, label)
            if value is None:
                setattr(self, label, {})
            elif not isinstance(value, Mapping):
                raise InvalidHookArgumentError(
                    f"HookContext.{label} for event {self.event_type.value!r} must be a dict, "
                    f"got {type(value).__name__}"
                )
            elif not isinstance(value, dict):
                setattr(self, label, dict(value))

    @classmethod
    def quiet(cls, event: HookEvent, agent_id: str, data: dict[str, Any] | None, trace_id: str | None) -> HookContext:
        """The context of a trigger no hook listens to: built without checks (the caller made
        them) and without a trace id unless one was given, since nothing will see it."""
        context = cls.__new__(cls)
        context.event_type = event
        context.agent_id = agent_id
        context.timestamp = time.time()
        context.data = dict(data) if data else {}
        context.metadata = {}
        context.trace_id = trace_id or ""
        return context

    @property
    def event(self) -> HookEvent:
        """Alias of ``event_type``."""
        return self.event_type

    @property
    def timestamp_iso(self) -> str:
        """``timestamp`` as ISO 8601 text with an explicit UTC offset."""
        return datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat()


@dataclass
class HookResult:
    """What a hook reports. Returning ``None`` from a hook means ``HookResult.ok()``.

    ``blocked=True`` (use ``HookResult.block(reason)``) asks the caller not to
    go on with the action, e.g. a ``pre_tool_use`` hook vetoing a tool call.
    """

    success: bool = True
    data: dict[str, Any] | None = None
    error: str | None = None
    duration_ms: float = 0.0
    blocked: bool = False
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.success and not self.error:
            raise InvalidHookArgumentError(
                "an unsuccessful HookResult must include error message: HookResult(success=False, error=...)"
            )
        if self.blocked and not (isinstance(self.reason, str) and self.reason.strip()):
            raise InvalidHookArgumentError(
                "a blocking HookResult needs a non-empty reason (use HookResult.block(reason))"
            )

    @classmethod
    def ok(cls, data: dict[str, Any] | None = None) -> HookResult:
        """A successful, non-blocking result, optionally carrying ``data``."""
        return cls(success=True, data=data)

    @classmethod
    def block(cls, reason: str) -> HookResult:
        """A successful result that vetoes the action; ``reason`` is shown to the caller."""
        return cls(success=True, blocked=True, reason=reason)

    @classmethod
    def fail(cls, error: str, *, duration_ms: float = 0.0) -> HookResult:
        """An unsuccessful result; the manager uses it for hooks that raised or timed out."""
        return cls(success=False, error=error, duration_ms=duration_ms)


__all__ = ["HookContext", "HookEvent", "HookOutcome", "HookPriority", "HookResult"]


@dataclass(frozen=True)
class HookOutcome:
    """All results of one trigger, in the order the hooks ran.

    Every hook runs even after one blocks (audit hooks still see the event);
    ``blocked``/``reason`` report the first block.
    """

    context: HookContext
    results: list[HookResult] = field(default_factory=list)
    hook_names: list[str] = field(default_factory=list)

    @property
    def event(self) -> HookEvent:
        return self.context.event_type

    @property
    def blocked(self) -> bool:
        return any(result.blocked for result in self.results)

    @property
    def reason(self) -> str | None:
        """Reason of the first blocking result, or ``None`` if nothing blocked."""
        first = self._first_block()
        return None if first is None else self.results[first].reason

    @property
    def blocked_by(self) -> str | None:
        """Name of the first hook that blocked, or ``None``."""
        first = self._first_block()
        return None if first is None else self.hook_names[first]

    @property
    def success(self) -> bool:
        """True when no hook failed (raised, timed out or returned a bad value)."""
        return all(result.success for result in self.results)

    @property
    def errors(self) -> list[str]:
        """Error messages of the hooks that failed, in run order."""
        return [result.error for result in self.results if not result.success and result.error]

    def _first_block(self) -> int | None:
        for index, result in enumerate(self.results):
            if result.blocked:
                return index
        return None
