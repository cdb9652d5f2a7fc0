"""A deterministic offline provider that plays back a script of responses.

Tests, demos and crash/resume checks need an agent run to be exactly
repeatable without a model server. The script position is exposed and can be
restored (``start_at``), so an agent resumed from a checkpoint continues the
script where the crashed run stopped, with the same call ids.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kaizen.core.values import is_int

from .base import AsyncTwin, check_chat_args
from .errors import ScriptExhaustedError
from .toolchoice import ToolChoice, check_tool_choice
from .types import LLMResponse, Message, ToolCall, ToolSpec, Usage

_STEP_KEYS = frozenset({"content", "tool_calls", "usage", "model", "finish_reason"})
_CALL_KEYS = frozenset({"id", "name", "arguments"})


def estimate_tokens(text: str) -> int:
    """Rough, deterministic token count (~4 characters per token, at least 1)."""
    return max(1, len(text) // 4)


def _message_text(message: Message) -> str:
    calls = "".join(c.name + orjson.dumps(c.arguments).decode() for c in message.tool_calls)
    return message.content + calls


@dataclass(frozen=True)
class _Step:
    """One scripted response; usage and model are filled in at call time unless given."""

    response: LLMResponse
    usage_given: bool
    model_given: bool


def _step_from_dict(data: Mapping[str, Any], index: int, first_call: int) -> _Step:
    where = f"ScriptedProvider responses[{index}]"
    unknown = sorted(set(data) - _STEP_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_STEP_KEYS))})")
    content = data.get("content", "")
    if not isinstance(content, str):
        raise ValueError(f"{where}: 'content' must be a string, got {type(content).__name__}")
    raw_calls = data.get("tool_calls", [])
    if not isinstance(raw_calls, (list, tuple)):
        raise ValueError(f"{where}: 'tool_calls' must be a list, got {type(raw_calls).__name__}")
    calls: list[ToolCall] = []
    for j, raw in enumerate(raw_calls):
        if isinstance(raw, ToolCall):
            calls.append(raw)
            continue
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}.tool_calls[{j}] must be a dict like {{'name': ..., 'arguments': {{...}}}}")
        extra = sorted(set(raw) - _CALL_KEYS)
        if extra:
            raise ValueError(f"{where}.tool_calls[{j}]: unknown key {extra[0]!r} (allowed: arguments, id, name)")
        if "name" not in raw:
            raise ValueError(f"{where}.tool_calls[{j}]: missing 'name'")
        try:
            calls.append(
                ToolCall(
                    id=raw.get("id") or f"call_{first_call + j}",
                    name=raw["name"],
                    arguments=raw.get("arguments", {}),
                )
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}.tool_calls[{j}]: {exc}") from exc
    usage = data.get("usage")
    try:
        usage_value = Usage.from_dict(usage) if usage is not None else None
    except ValueError as exc:
        raise ValueError(f"{where}.usage: {exc}") from exc
    model = data.get("model")
    finish = data.get("finish_reason", "tool_calls" if calls else "stop")
    try:
        response = LLMResponse(
            content=content,
            tool_calls=tuple(calls),
            usage=usage_value or Usage(),
            model=model if model is not None else "scripted",
            finish_reason=finish,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return _Step(response, usage_given=usage_value is not None, model_given=model is not None)


def _compile(responses: Sequence[LLMResponse | str | Mapping[str, Any]]) -> tuple[_Step, ...]:
    """Normalize the script once, numbering generated call ids across the whole script."""
    if isinstance(responses, (str, bytes, Mapping)) or not isinstance(responses, Sequence):
        raise TypeError("ScriptedProvider responses must be a list of LLMResponse, str or dict")
    steps: list[_Step] = []
    next_call = 1
    seen: dict[str, int] = {}
    for i, item in enumerate(responses):
        if isinstance(item, LLMResponse):
            step = _Step(item, usage_given=True, model_given=True)
        elif isinstance(item, str):
            step = _step_from_dict({"content": item}, i, next_call)
        elif isinstance(item, Mapping):
            step = _step_from_dict(item, i, next_call)
        else:
            raise TypeError(f"ScriptedProvider responses[{i}] is a {type(item).__name__}; use LLMResponse, str or dict")
        for call in step.response.tool_calls:
            if call.id in seen:
                raise ValueError(
                    f"ScriptedProvider responses[{i}]: tool call id {call.id!r} is already used by "
                    f"responses[{seen[call.id]}]; ids must be unique across the script"
                )
            seen[call.id] = i
        next_call += len(step.response.tool_calls)
        steps.append(step)
    return tuple(steps)


class ScriptedProvider(AsyncTwin):
    """Plays ``responses`` in order: a str is a final answer, a dict may hold tool calls.

    Dict form: ``{"content": "...", "tool_calls": [{"name": "Read", "arguments": {...}}]}``
    with optional ``id`` per call (default ``call_<n>``, ``n`` counting calls from 1
    across the whole script), ``usage``, ``model`` and ``finish_reason``.
    Without explicit usage, tokens are estimated as ``len(text) // 4`` (at least 1).
    """

    name = "scripted"

    def __init__(
        self,
        responses: Sequence[LLMResponse | str | Mapping[str, Any]],
        *,
        start_at: int = 0,
    ) -> None:
        self._steps = _compile(responses)
        self._lock = threading.Lock()
        self._position = 0
        self.seek(start_at)
        self.requests: list[tuple[Message, ...]] = []
        self.tool_choices: list[ToolChoice | None] = []  # what each call asked for, in order

    def seek(self, position: int) -> None:
        """Continue the script at ``position`` (what an agent restored from a checkpoint does)."""
        if not is_int(position) or not 0 <= position <= len(self._steps):
            raise ValueError(
                f"ScriptedProvider start_at must be an int between 0 and {len(self._steps)} "
                f"(the script length), got {position!r}"
            )
        with self._lock:
            self._position = position

    def __repr__(self) -> str:
        return f"ScriptedProvider(position={self._position}, length={len(self._steps)})"

    @property
    def position(self) -> int:
        """How many responses have been played; pass it back as ``start_at`` to resume."""
        return self._position

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def remaining(self) -> int:
        return len(self._steps) - self._position

    def chat(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        temperature: float | None = None,
        tool_choice: ToolChoice | None = None,
    ) -> LLMResponse:
        """Return the next scripted response (or raise ScriptExhaustedError).

        ``tool_choice`` is checked like a real provider checks it and kept in
        ``tool_choices``, but the script alone decides what is answered.
        """
        msgs, specs = check_chat_args(self.name, messages, tools, model, temperature)
        choice = check_tool_choice(self.name, tool_choice, specs)
        with self._lock:
            if self._position >= len(self._steps):
                raise ScriptExhaustedError(
                    self.name,
                    "",
                    f"script exhausted: all {len(self._steps)} scripted response(s) were used and call "
                    f"{self._position + 1} asked for another; add responses to the script or let the "
                    "agent stop earlier",
                )
            step = self._steps[self._position]
            self._position += 1
            self.requests.append(msgs)
            self.tool_choices.append(choice)
        out = step.response
        if step.usage_given and step.model_given:
            return out
        usage = out.usage
        if not step.usage_given:
            usage = Usage(
                input_tokens=estimate_tokens("".join(_message_text(m) for m in msgs)),
                output_tokens=estimate_tokens(_message_text(out.to_message())),
            )
        return LLMResponse(
            content=out.content,
            tool_calls=out.tool_calls,
            usage=usage,
            model=out.model if step.model_given else model,
            finish_reason=out.finish_reason,
        )

    def close(self) -> None:
        """Nothing to release; present so all providers can be closed alike."""
