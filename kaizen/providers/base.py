"""The shape every HTTP provider shares: build body, POST, parse; async = thread.

Subclasses supply only the wire format (``_build_request``/``_parse_response``),
so sync and async behaviour, argument checks and lifecycle are identical for all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import httpx

from kaizen.core.bridge import in_thread
from kaizen.core.values import is_number

from .httpclient import ErrorHints, JSONClient, RetryPolicy
from .toolchoice import ToolChoice, check_tool_choice
from .types import LLMResponse, Message, ToolSpec

_Item = TypeVar("_Item")


def check_chat_args(
    provider: str, messages: Sequence[Message], tools: Sequence[ToolSpec], model: str, temperature: float | None
) -> tuple[tuple[Message, ...], tuple[ToolSpec, ...]]:
    """Validate ``chat`` arguments up front, naming the bad one (before any network call)."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"{provider}: model must be a non-empty string, e.g. chat(..., model='llama3.2')")
    msgs = _sequence_of(Message, messages, f"{provider}: messages", "")
    specs = _sequence_of(ToolSpec, tools, f"{provider}: tools", " (use () for none)")
    if temperature is not None and not is_number(temperature):
        raise TypeError(f"{provider}: temperature must be a number or None, got {type(temperature).__name__}")
    return msgs, specs


def _sequence_of(kind: type[_Item], items: Any, label: str, hint: str) -> tuple[_Item, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"{label} must be a sequence of {kind.__name__}{hint}")
    found = tuple(items)
    for i, item in enumerate(found):
        if not isinstance(item, kind):
            raise TypeError(f"{label}[{i}] is a {type(item).__name__}, expected {kind.__name__}")
    return found


@dataclass(frozen=True)
class ChatCall:
    """One ``chat`` call's arguments, checked, as the wire formats build a request from them."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    model: str
    temperature: float | None
    tool_choice: ToolChoice | None


class AsyncTwin:
    """``achat``: the sync ``chat`` on a worker thread, so no provider writes its logic twice."""

    async def achat(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        temperature: float | None = None,
        tool_choice: ToolChoice | None = None,
    ) -> LLMResponse:
        """Async twin of :meth:`chat` (runs it in a worker thread)."""
        return await in_thread(self.chat, messages, tools, model=model,  # type: ignore[attr-defined]
                               temperature=temperature, tool_choice=tool_choice)


class HTTPProvider(AsyncTwin):
    """Base of the HTTP providers; not used directly."""

    name: str = "http"
    _path: str = ""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        api_key: str | None,
        hints: ErrorHints,
        timeout: float | None,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.base_url = base_url
        self.url = base_url + self._path
        self._http = JSONClient(
            self.name,
            headers=headers,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, backoff_base=backoff_base, backoff_max=backoff_max),
            hints=hints,
            secrets=(api_key,),
            transport=transport,
        )

    def __repr__(self) -> str:  # never show the API key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def chat(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        model: str,
        temperature: float | None = None,
        tool_choice: ToolChoice | None = None,
    ) -> LLMResponse:
        """Send the conversation and return the model's next turn."""
        msgs, specs = check_chat_args(self.name, messages, tools, model, temperature)
        choice = check_tool_choice(self.name, tool_choice, specs)
        body = self._build_request(ChatCall(msgs, specs, model, temperature, choice))
        data = self._http.post(self.url, body)
        return self._parse_response(data, model, body)

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build_request(self, call: ChatCall) -> dict[str, Any]:
        raise NotImplementedError

    def _parse_response(self, data: dict[str, Any], model: str, request: dict[str, Any]) -> LLMResponse:
        raise NotImplementedError
