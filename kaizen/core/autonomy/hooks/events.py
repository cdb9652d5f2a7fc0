"""Lifecycle events hooks can attach to, and hook priorities.

The string values are the names users migrating from Kailash Kaizen already
use, so every API that takes an event also takes its string form.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any

from .errors import InvalidHookArgumentError, InvalidHookEventError


class HookEvent(str, Enum):
    """A point in the agent lifecycle at which hooks run."""

    PRE_TOOL_USE = "pre_tool_use"
    POST_TOOL_USE = "post_tool_use"
    PRE_AGENT_LOOP = "pre_agent_loop"
    POST_AGENT_LOOP = "post_agent_loop"
    PRE_CYCLE = "pre_cycle"
    POST_CYCLE = "post_cycle"
    PRE_PERMISSION_CHECK = "pre_permission_check"
    POST_PERMISSION_CHECK = "post_permission_check"
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_REQUESTED = "approval_requested"  # a call waits for a deferred decision (approval_mode="defer")
    PRE_CHECKPOINT_SAVE = "pre_checkpoint_save"
    POST_CHECKPOINT_SAVE = "post_checkpoint_save"
    PRE_INTERRUPT = "pre_interrupt"
    POST_INTERRUPT = "post_interrupt"
    ERROR = "error"
    PRE_MODEL_CALL = "pre_model_call"
    POST_MODEL_CALL = "post_model_call"
    # Kept for code migrating from Kailash Kaizen; the autonomous loop itself does not fire these.
    PRE_SPECIALIST_INVOKE = "pre_specialist_invoke"
    POST_SPECIALIST_INVOKE = "post_specialist_invoke"
    PRE_PLAN_GENERATION = "pre_plan_generation"
    POST_PLAN_GENERATION = "post_plan_generation"
    PRE_MEMORY_SAVE = "pre_memory_save"
    POST_MEMORY_SAVE = "post_memory_save"
    PRE_MEMORY_LOAD = "pre_memory_load"
    POST_MEMORY_LOAD = "post_memory_load"

    def __str__(self) -> str:  # f"{event}" reads "pre_tool_use", not "HookEvent.PRE_TOOL_USE"
        return self.value

    @classmethod
    def coerce(cls, value: Any) -> HookEvent:
        """Return the event for ``value`` (a member, its value or its name), else raise.

        Accepting ``"pre_tool_use"`` and ``"PRE_TOOL_USE"`` lets configuration
        files and migrated code name events without importing the enum.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                member = cls.__members__.get(value.upper())
                if member is not None:
                    return member
        valid = ", ".join(event.value for event in cls)
        raise InvalidHookEventError(f"Invalid event type {value!r} (unknown hook event); valid events: {valid}")


class HookPriority(IntEnum):
    """Run order of hooks on one event: lower runs first, ties in registration order."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @classmethod
    def coerce(cls, value: Any) -> HookPriority:
        """Return the priority for a member, its int value or its name, else raise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls.__members__[value.upper()]
        valid = ", ".join(f"{p.name}={p.value}" for p in cls)
        raise InvalidHookArgumentError(f"invalid hook priority {value!r}; valid priorities: {valid}")
