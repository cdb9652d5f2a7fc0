"""``AgentState``: one checkpoint's worth of an agent, and its JSON form.

The JSON form carries ``schema_version``; older versions are read through the
explicit migrations in ``migrations.py``. Reading validates every field and
names the first bad one, so a foreign or damaged document is never half-loaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from kaizen.core.values import is_int, is_number

from .errors import InvalidStateTypeError, InvalidStateValueError, StateError, StateFormatError
from .frozen import FrozenDict, freeze, thaw
from .ids import check_id, check_timestamp, new_checkpoint_id
from .jsonsafe import checked_json_copy
from .records import check_approval_record, check_tool_name

SCHEMA_VERSION = 1
STATUSES = ("running", "completed", "failed", "interrupted", "max_cycles", "denied", "budget_exceeded",
            "awaiting_approval")
# Append-only histories: stored once per entry, shared by every later checkpoint.
STREAM_FIELDS = ("approval_history", "conversation_history", "completed_actions")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class AgentState:
    """Everything needed to resume an agent exactly where it stopped.

    Fields are in the original Kailash Kaizen's order, so ``AgentState("ckpt_x", "a1")`` reads
    as there (``token_usage``, ours, comes last). ``timestamp``/``updated_at`` are ``datetime``
    (ISO 8601 text is accepted and parsed). ``approval_history``, ``conversation_history`` and
    ``completed_actions`` hold immutable entries (``FrozenDict``): a captured state shares them
    with the live agent, which never changes an entry once written.
    """

    checkpoint_id: str = field(default_factory=new_checkpoint_id)
    agent_id: str = ""
    model: str = ""
    timestamp: datetime = field(default_factory=_now)
    updated_at: datetime | None = field(default_factory=_now)
    step_number: int = 0
    conversation_history: list[dict[str, Any]] = field(default_factory=list)
    memory_contents: dict[str, Any] = field(default_factory=dict)
    pending_actions: list[Any] = field(default_factory=list)
    completed_actions: list[dict[str, Any]] = field(default_factory=list)
    budget_spent_usd: float = 0.0
    approval_history: list[dict[str, Any]] = field(default_factory=list)
    tool_usage_counts: dict[str, int] = field(default_factory=dict)
    tool_results_cache: dict[str, Any] = field(default_factory=dict)
    active_specialists: list[str] = field(default_factory=list)
    specialist_invocations: list[dict[str, Any]] = field(default_factory=list)
    workflow_run_id: str | None = None
    workflow_state: dict[str, Any] = field(default_factory=dict)
    control_protocol_state: dict[str, Any] = field(default_factory=dict)
    registered_hooks: list[dict[str, Any]] = field(default_factory=list)
    hook_event_history: list[dict[str, Any]] = field(default_factory=list)
    parent_checkpoint_id: str | None = None
    status: str = "running"
    metadata: dict[str, Any] = field(default_factory=dict)
    token_usage: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Stored states carry ISO text; callers of the original pass datetimes: hold datetimes.
        self.timestamp = _as_datetime(self.timestamp)  # type: ignore[assignment]
        if self.updated_at is not None:
            self.updated_at = _as_datetime(self.updated_at)  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (mutable copies; timestamps as ISO 8601 text), with ``schema_version``."""
        data: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for name in _DOCUMENT_ORDER:
            value = getattr(self, name)
            data[name] = value.isoformat() if isinstance(value, datetime) else thaw(value)
        return data

    @classmethod
    def from_dict(cls, data: object) -> AgentState:
        """Validate and read a document written by ``to_dict`` (any known schema version).

        Raises ``StateFormatError`` naming the field for anything foreign or damaged.
        """
        from .migrations import upgrade

        document = upgrade(data)
        try:
            return cls(**_check_document(document))
        except StateFormatError:
            raise
        except (StateError, TypeError, ValueError) as exc:
            raise StateFormatError(f"not a valid agent state: {exc}") from None

    def validated(self) -> AgentState:
        """A checked copy of this state (used before restoring a hand-built state)."""
        return AgentState.from_dict(self.to_dict())


# Fields a live agent hands out as copies made by ``check_field`` itself (``CapturedState``).
CONTAINER_FIELDS = (
    "memory_contents", "pending_actions", "tool_results_cache", "metadata", "tool_usage_counts", "token_usage",
    "workflow_state", "active_specialists", "specialist_invocations", "control_protocol_state",
    "registered_hooks", "hook_event_history",
)


class CapturedState(AgentState):
    """An ``AgentState`` captured from a live agent for a save, validated as it was captured.

    Its ``CONTAINER_FIELDS`` are fresh copies that passed ``check_field`` (or come from the
    tracker, which checks every value it accepts) and its history entries that are ``FrozenDict``
    were checked when they were frozen. A save checks the rest (ids, scalars, timestamps, any
    other entry) and does not walk those again: each value is validated once, where it enters.
    Only the agent makes these (``RunState.capture(for_save=True)``), right before its save.
    ``stamp`` is the capture's instant and its stored text, set by the capturer; a save uses the
    text only while ``timestamp`` is still that very ``datetime``.
    """

    stamp: tuple[datetime, str] | None = None  # not a field: a copy or a replace() leaves it None

    @classmethod
    def of(cls, values: dict[str, Any], stamp: tuple[datetime, str]) -> CapturedState:
        """The state holding ``values``: every field, in declaration order, with ``timestamp`` and
        ``updated_at`` already ``datetime``s. That is what the generated ``__init__`` would make
        of them (and ``__post_init__`` leave as is), at half the cost of passing 25 arguments.
        The dict itself becomes the state's (not copied): the caller hands over one of its own."""
        if len(values) != len(_FIELD_NAMES):
            raise TypeError(f"CapturedState.of needs every field: {sorted(set(_FIELD_NAMES) - set(values))} missing")
        state = cls.__new__(cls)
        state.__dict__ = values
        state.stamp = stamp
        return state


def _as_datetime(value: object) -> object:
    """ISO text becomes a ``datetime``; anything else is left for validation to name."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


_FIELD_NAMES = tuple(f.name for f in fields(AgentState))
# The JSON document reads identity first, then histories, then the rest (not the field order).
_DOCUMENT_ORDER = (
    "agent_id", "checkpoint_id", "model", "timestamp", "updated_at", "step_number", "status",
    "parent_checkpoint_id", "conversation_history", "memory_contents", "pending_actions", "completed_actions",
    "budget_spent_usd", "approval_history", "tool_usage_counts", "tool_results_cache", "token_usage",
    "workflow_run_id", "workflow_state", "metadata", "active_specialists", "specialist_invocations",
    "control_protocol_state", "registered_hooks", "hook_event_history",
)
assert sorted(_DOCUMENT_ORDER) == sorted(_FIELD_NAMES), "every AgentState field needs a place in the document"


def _check_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(str(key) for key in doc if key not in _FIELD_NAMES and key != "schema_version")
    if unknown:
        raise StateFormatError(f"not a valid agent state: unknown field(s) {', '.join(unknown)[:200]}")
    for required in ("agent_id", "checkpoint_id"):
        if required not in doc:
            raise StateFormatError(f"not a valid agent state: missing {required}")
    out: dict[str, Any] = {}
    for name in _FIELD_NAMES:
        if name in doc:
            try:
                out[name] = FIELD_CHECKS[name](doc[name], name)
            except (StateError, TypeError, ValueError) as exc:
                raise StateFormatError(f"not a valid agent state: field {name}: {exc}") from None
    return out


def check_field(name: str, value: object) -> Any:
    """Validate one ``AgentState`` field the way ``from_dict`` does; returns the clean value."""
    return FIELD_CHECKS[name](value, name)


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidStateTypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _optional_id(value: object, name: str) -> str | None:
    return None if value is None else check_id(value, name)


def _optional_str(value: object, name: str) -> str | None:
    return None if value is None else _str(value, name)


def _count(value: object, name: str) -> int:
    if not is_int(value):
        raise InvalidStateTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise InvalidStateValueError(f"{name} must not be negative, got {value}")
    return value


def _status(value: object, name: str) -> str:
    if value not in STATUSES:
        raise InvalidStateValueError(f"{name} {str(value)[:40]!r} is not one of {', '.join(STATUSES)}")
    return str(value)


def _money(value: object, name: str) -> float:
    if not is_number(value):
        raise InvalidStateTypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidStateValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def _json_object(value: object, name: str) -> dict[str, Any]:
    if type(value) is dict and not value:
        return {}  # the usual case of most fields: nothing to walk
    if not isinstance(value, Mapping):
        raise InvalidStateTypeError(f"{name} must be an object, got {type(value).__name__}")
    copied: dict[str, Any] = checked_json_copy(value if type(value) is dict else dict(value), name)  # copies it
    return copied


def _json_list(value: object, name: str) -> list[Any]:
    if type(value) is list and not value:
        return []
    if not isinstance(value, (list, tuple)):
        raise InvalidStateTypeError(f"{name} must be a list, got {type(value).__name__}")
    copied: list[Any] = checked_json_copy(value if type(value) is list else list(value), name)  # copies it
    return copied


def _entries(value: object, name: str) -> list[FrozenDict]:
    entries = _json_list(value, name)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidStateTypeError(f"{name}[{index}] must be an object, got {type(entry).__name__}")
    return [freeze(entry) for entry in entries]


def _approvals(value: object, name: str) -> list[FrozenDict]:
    if not isinstance(value, (list, tuple)):
        raise InvalidStateTypeError(f"{name} must be a list, got {type(value).__name__}")
    return [check_approval_record(item, f"{name}[{index}]") for index, item in enumerate(value)]


def _counts(value: object, name: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidStateTypeError(f"{name} must be an object, got {type(value).__name__}")
    return {check_tool_name(tool, f"{name} key"): _count(count, f"{name}[{tool!r}]") for tool, count in value.items()}


def _token_usage(value: object, name: str) -> dict[str, dict[str, int]]:
    if not isinstance(value, Mapping):
        raise InvalidStateTypeError(f"{name} must be an object, got {type(value).__name__}")
    out: dict[str, dict[str, int]] = {}
    for model, usage in value.items():
        where = f"{name}[{model!r}]"
        if not isinstance(model, str) or not isinstance(usage, Mapping):
            raise InvalidStateTypeError(f"{where} must map a model name to an object of token counts")
        out[model] = {_str(key, f"{where} key"): _count(count, f"{where}[{key!r}]") for key, count in usage.items()}
    return out


def _moment(value: object, name: str) -> str:
    """A timestamp as stored: ISO 8601 text (a ``datetime`` is written with ``isoformat``)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return check_timestamp(value, name)


def _optional_moment(value: object, name: str) -> str | None:
    return None if value is None else _moment(value, name)


def _names(value: object, name: str) -> list[str]:
    items = _json_list(value, name)
    for index, item in enumerate(items):
        _str(item, f"{name}[{index}]")
    return items


def _objects(value: object, name: str) -> list[dict[str, Any]]:
    items = _json_list(value, name)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidStateTypeError(f"{name}[{index}] must be an object, got {type(item).__name__}")
    return items


FIELD_CHECKS: dict[str, Any] = {  # field name -> check(value, name) returning the clean value
    "agent_id": check_id,
    "checkpoint_id": check_id,
    "model": _str,
    "timestamp": _moment,
    "updated_at": _optional_moment,
    "step_number": _count,
    "status": _status,
    "parent_checkpoint_id": _optional_id,
    "conversation_history": _entries,
    "memory_contents": _json_object,
    "pending_actions": _json_list,
    "completed_actions": _entries,
    "budget_spent_usd": _money,
    "approval_history": _approvals,
    "tool_usage_counts": _counts,
    "tool_results_cache": _json_object,
    "token_usage": _token_usage,
    "workflow_run_id": _optional_str,
    "workflow_state": _json_object,
    "metadata": _json_object,
    "active_specialists": _names,
    "specialist_invocations": _objects,
    "control_protocol_state": _json_object,
    "registered_hooks": _objects,
    "hook_event_history": _objects,
}
assert set(FIELD_CHECKS) == set(_FIELD_NAMES), "every AgentState field needs a check"


@dataclass(frozen=True)
class CheckpointMetadata:
    """A checkpoint's listing entry: what ``list_checkpoints`` returns, newest first.

    ``timestamp`` is a ``datetime`` (ISO text is accepted); ``lineage_id`` is ours (empty for
    entries built by hand or by a plug-in backend).
    """

    checkpoint_id: str
    agent_id: str
    timestamp: datetime
    step_number: int
    status: str
    size_bytes: int
    parent_checkpoint_id: str | None = None
    lineage_id: str = ""

    def __post_init__(self) -> None:
        moment = _as_datetime(self.timestamp)
        if not isinstance(moment, datetime):
            raise InvalidStateValueError(
                f"timestamp of checkpoint {self.checkpoint_id!r} must be a datetime or ISO 8601 text, "
                f"got {str(self.timestamp)[:60]!r}"
            )
        object.__setattr__(self, "timestamp", moment)

    def to_dict(self) -> dict[str, Any]:
        """JSON data; ``timestamp`` as ISO 8601 text."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["timestamp"] = self.timestamp.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointMetadata:
        """Read ``to_dict``'s output (or the original's, which has no ``lineage_id``)."""
        if not isinstance(data, Mapping):
            raise StateFormatError(f"checkpoint metadata must be an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in names)
        if unknown:
            raise StateFormatError(f"checkpoint metadata has unknown field(s) {', '.join(unknown)[:200]}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise StateFormatError(f"not valid checkpoint metadata: {exc}") from None


@dataclass
class StateSnapshot:
    """A copy of a state taken for inspection or debugging (``StateManager.create_snapshot``);
    changing the live state later does not change it."""

    state: AgentState
    created_at: datetime = field(default_factory=_now)
    snapshot_reason: str = "manual"

    def get_summary(self) -> dict[str, Any]:
        """The few numbers a person looks at first."""
        state = self.state
        return {
            "checkpoint_id": state.checkpoint_id,
            "agent_id": state.agent_id,
            "step_number": state.step_number,
            "status": state.status,
            "conversation_turns": len(state.conversation_history),
            "pending_actions": len(state.pending_actions),
            "completed_actions": len(state.completed_actions),
            "budget_spent_usd": state.budget_spent_usd,
            "snapshot_reason": self.snapshot_reason,
            "created_at": self.created_at.isoformat(),
        }
