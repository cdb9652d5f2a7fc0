"""Wire-neutral chat types shared by every provider (no I/O here).

Agents build conversations from these types and persist them in checkpoints,
so each type converts to and from plain JSON dicts and ``from_dict`` checks
its input strictly: a damaged checkpoint is reported naming the bad field
instead of surfacing later as a confusing provider error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from kaizen.core.values import check_int, checked_json_copy

if TYPE_CHECKING:
    from .toolchoice import ToolChoice

_T = TypeVar("_T")

ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


def _json_copy(value: Any, where: str) -> Any:
    """Deep-copy ``value`` if it is made of JSON types only, else raise naming ``where``.

    Tool arguments end up in checkpoints and in request bodies; refusing
    NaN, tuples-as-keys and arbitrary objects here keeps both lossless.
    """
    return checked_json_copy(value, where, mappings=Mapping)


def _check_keys(data: Any, cls_name: str, allowed: frozenset[str], required: frozenset[str]) -> None:
    """Reject non-dicts, unknown keys and missing keys, naming the key."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls_name}.from_dict expects a dict, got {type(data).__name__}")
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        raise ValueError(f"{cls_name}: unknown field {unknown[0]!r} (known fields: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(data))
    if missing:
        raise ValueError(f"{cls_name}: missing required field {missing[0]!r}")


def _as_value_error(cls_name: str, build: Callable[[], _T]) -> _T:
    """Run a constructor and report type problems as ValueError (from_dict's contract)."""
    try:
        return build()
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


def _require_str(value: Any, where: str, *, non_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str, got {type(value).__name__}")
    if non_empty and not value:
        raise ValueError(f"{where} must not be empty")


def _require_count(value: Any, where: str) -> None:
    check_int(value, where, minimum=0)


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_str(self.name, "ToolSpec.name", non_empty=True)
        _require_str(self.description, "ToolSpec.description")
        if not isinstance(self.parameters, Mapping):
            raise TypeError(f"ToolSpec.parameters of {self.name!r} must be a JSON Schema dict")
        object.__setattr__(self, "parameters", _json_copy(self.parameters, f"ToolSpec({self.name!r}).parameters"))

    def input_schema(self) -> dict[str, Any]:
        """The schema to send; an empty one becomes ``{"type": "object", "properties": {}}``.

        Anthropic rejects a missing ``type`` and OpenAI a schema-less object, so
        a tool without parameters must still say "an object with no fields".
        """
        if not self.parameters:
            return {"type": "object", "properties": {}}
        schema: dict[str, Any] = _json_copy(self.parameters, "parameters")
        return schema


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for. ``id`` links the later tool result to it."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    _FIELDS = frozenset({"id", "name", "arguments"})

    def __post_init__(self) -> None:
        _require_str(self.id, "ToolCall.id", non_empty=True)
        _require_str(self.name, "ToolCall.name", non_empty=True)
        if not isinstance(self.arguments, Mapping):
            raise TypeError(f"ToolCall.arguments of {self.name!r} must be a dict, got {type(self.arguments).__name__}")
        object.__setattr__(self, "arguments", _json_copy(self.arguments, f"ToolCall({self.name!r}).arguments"))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (a copy: mutating it does not change this call)."""
        return {"id": self.id, "name": self.name, "arguments": _json_copy(self.arguments, "arguments")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """Inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        _check_keys(data, "ToolCall", cls._FIELDS, cls._FIELDS)
        return _as_value_error("ToolCall", lambda: cls(id=data["id"], name=data["name"], arguments=data["arguments"]))


@dataclass(frozen=True)
class Message:
    """One conversation turn.

    ``tool_calls`` only on assistant messages; ``tool_call_id`` (required) only
    on tool messages, naming the call the result answers; ``name`` is an
    optional participant or tool name.
    """

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    _FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id", "name"})

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Message.role {self.role!r} is not valid; use one of {', '.join(ROLES)}")
        _require_str(self.content, "Message.content")
        if not isinstance(self.tool_calls, (list, tuple)):
            raise TypeError(
                f"Message.tool_calls must be a list or tuple of ToolCall, got {type(self.tool_calls).__name__}"
            )
        calls = tuple(self.tool_calls)
        for i, call in enumerate(calls):
            if not isinstance(call, ToolCall):
                raise TypeError(f"Message.tool_calls[{i}] must be a ToolCall, got {type(call).__name__}")
        if calls and self.role != "assistant":
            raise ValueError(f"Message.tool_calls is only allowed on assistant messages, not {self.role!r}")
        object.__setattr__(self, "tool_calls", calls)
        if self.role == "tool":
            if self.tool_call_id is None:
                raise ValueError("Message.tool_call_id is required on tool messages (the id of the call answered)")
            _require_str(self.tool_call_id, "Message.tool_call_id", non_empty=True)
        elif self.tool_call_id is not None:
            raise ValueError(f"Message.tool_call_id is only allowed on tool messages, not {self.role!r}")
        if self.name is not None:
            _require_str(self.name, "Message.name", non_empty=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; empty optional fields are left out."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        _check_keys(data, "Message", cls._FIELDS, frozenset({"role"}))
        raw_calls = data.get("tool_calls", [])
        if not isinstance(raw_calls, (list, tuple)):
            raise ValueError(f"Message.tool_calls must be a list, got {type(raw_calls).__name__}")
        calls: list[ToolCall] = []
        for i, raw in enumerate(raw_calls):
            try:
                calls.append(ToolCall.from_dict(raw))
            except ValueError as exc:
                raise ValueError(f"Message.tool_calls[{i}]: {exc}") from exc
        return _as_value_error(
            "Message",
            lambda: cls(
                role=data["role"],
                content=data.get("content", ""),
                tool_calls=tuple(calls),
                tool_call_id=data.get("tool_call_id"),
                name=data.get("name"),
            ),
        )


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more calls; ``+`` sums them for run totals."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __post_init__(self) -> None:
        _require_count(self.input_tokens, "Usage.input_tokens")
        _require_count(self.output_tokens, "Usage.output_tokens")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: object) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        fields = frozenset({"input_tokens", "output_tokens"})
        _check_keys(data, "Usage", fields, frozenset())
        return _as_value_error("Usage", lambda: cls(**dict(data)))


@dataclass(frozen=True)
class LLMResponse:
    """What one chat call returned, independent of the wire format."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str
    finish_reason: str | None = None

    _FIELDS = frozenset({"content", "tool_calls", "usage", "model", "finish_reason"})

    def __post_init__(self) -> None:
        _require_str(self.content, "LLMResponse.content")
        if not isinstance(self.tool_calls, (list, tuple)):
            raise TypeError("LLMResponse.tool_calls must be a list or tuple of ToolCall")
        calls = tuple(self.tool_calls)
        for i, call in enumerate(calls):
            if not isinstance(call, ToolCall):
                raise TypeError(f"LLMResponse.tool_calls[{i}] must be a ToolCall, got {type(call).__name__}")
        object.__setattr__(self, "tool_calls", calls)
        if not isinstance(self.usage, Usage):
            raise TypeError(f"LLMResponse.usage must be a Usage, got {type(self.usage).__name__}")
        _require_str(self.model, "LLMResponse.model")
        if self.finish_reason is not None:
            _require_str(self.finish_reason, "LLMResponse.finish_reason")

    def to_message(self) -> Message:
        """The assistant turn to append to the conversation before running tools."""
        return Message(role="assistant", content=self.content, tool_calls=self.tool_calls)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "content": self.content,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "usage": self.usage.to_dict(),
            "model": self.model,
        }
        if self.finish_reason is not None:
            out["finish_reason"] = self.finish_reason
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMResponse:
        _check_keys(data, "LLMResponse", cls._FIELDS, frozenset({"content", "model"}))
        raw_calls = data.get("tool_calls", [])
        if not isinstance(raw_calls, (list, tuple)):
            raise ValueError(f"LLMResponse.tool_calls must be a list, got {type(raw_calls).__name__}")
        calls = tuple(ToolCall.from_dict(raw) for raw in raw_calls)
        usage = Usage.from_dict(data.get("usage", {}))
        return _as_value_error(
            "LLMResponse",
            lambda: cls(
                content=data["content"],
                tool_calls=calls,
                usage=usage,
                model=data["model"],
                finish_reason=data.get("finish_reason"),
            ),
        )


@runtime_checkable
class LLMProvider(Protocol):
    """What agents need from a model backend: one blocking call and its async twin.

    ``tool_choice`` None leaves the server's default (the model decides); callers pass
    it only when set, so a provider written before it existed keeps working.
    """

    name: str

    def chat(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        temperature: float | None = None,
        tool_choice: ToolChoice | None = None,
    ) -> LLMResponse: ...

    async def achat(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        temperature: float | None = None,
        tool_choice: ToolChoice | None = None,
    ) -> LLMResponse: ...


__all__ = ["ROLES", "LLMProvider", "LLMResponse", "Message", "ToolCall", "ToolSpec", "Usage"]
