"""Anthropic Messages API (``POST {base_url}/v1/messages``).

The Messages API has no system or tool roles: system prompts go to the
top-level ``system`` field, tool calls are ``tool_use`` blocks of the
assistant turn, and tool results are ``tool_result`` blocks of the *next
user* turn, all results of one turn together and before any user text.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from kaizen.core.values import is_int

from .base import ChatCall, HTTPProvider
from .httpclient import ErrorHints
from .toolchoice import NamedTool, ToolChoice
from .types import LLMResponse, Message, ToolCall, ToolSpec, Usage
from .wire import ResponseReader, normalize_base_url

DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


def build_request(
    messages: tuple[Message, ...],
    tools: tuple[ToolSpec, ...],
    model: str,
    temperature: float | None,
    max_tokens: int,
    tool_choice: ToolChoice | None = None,
) -> dict[str, Any]:
    """The JSON body of a Messages request."""
    system = [m.content for m in messages if m.role == "system" and m.content]
    wire: list[dict[str, Any]] = []
    results_open = False  # the last wire message is a user turn of tool results
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
            if m.content:
                block["content"] = m.content
            if results_open:
                wire[-1]["content"].append(block)
            else:
                wire.append({"role": "user", "content": [block]})
                results_open = True
            continue
        if m.role == "user" and results_open:
            # Text after the results belongs to the same user turn (results first).
            if m.content:
                wire[-1]["content"].append({"type": "text", "text": m.content})
            results_open = False
            continue
        results_open = False
        if m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls)
            wire.append({"role": "assistant", "content": blocks})
        else:
            wire.append({"role": m.role, "content": m.content})
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": wire}
    if system:
        body["system"] = "\n\n".join(system)
    if tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema()} for t in tools
        ]
        if tool_choice is not None:
            body["tool_choice"] = wire_tool_choice(tool_choice)
    if temperature is not None:
        body["temperature"] = temperature
    return body


def wire_tool_choice(choice: ToolChoice) -> dict[str, Any]:
    """The Messages API's object: "required" is ``any``, a named tool is ``tool`` with its name."""
    if isinstance(choice, NamedTool):
        return {"type": "tool", "name": choice.name}
    return {"type": "any" if choice == "required" else choice}


def parse_response(data: dict[str, Any], reader: ResponseReader, model: str) -> LLMResponse:
    """Turn a ``message`` object into an LLMResponse (text blocks joined, tool_use blocks as calls)."""
    blocks = reader.get(data, "content", list, "content")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for i, block in enumerate(blocks):
        where = f"content[{i}]"
        if not isinstance(block, dict):
            raise reader.error(where, f"should be an object, got {type(block).__name__}")
        kind = reader.get(block, "type", str, f"{where}.type")
        if kind == "text":
            texts.append(reader.get(block, "text", str, f"{where}.text", ""))
        elif kind == "tool_use":
            name = reader.get(block, "name", str, f"{where}.name")
            calls.append(
                ToolCall(
                    id=reader.get(block, "id", str, f"{where}.id"),
                    name=name,
                    arguments=reader.get(block, "input", dict, f"{where}.input", {}),
                )
            )
        # thinking / redacted_thinking / server tool blocks carry no answer text
    usage_data = reader.get(data, "usage", dict, "usage", {})
    # input_tokens excludes prompt-cache traffic; add it so totals reflect what was processed.
    input_tokens = sum(
        reader.get(usage_data, key, int, f"usage.{key}", 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    usage = Usage(input_tokens, reader.get(usage_data, "output_tokens", int, "usage.output_tokens", 0))
    return LLMResponse(
        content="".join(texts),
        tool_calls=tuple(calls),
        usage=usage,
        model=reader.get(data, "model", str, "model", model),
        finish_reason=reader.get(data, "stop_reason", str, "stop_reason", None),
    )


class AnthropicProvider(HTTPProvider):
    """Chat with Claude through the Messages API."""

    name = "anthropic"
    _path = "/v1/messages"

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 1024,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if not is_int(max_tokens) or max_tokens < 1:
            raise ValueError(f"anthropic: max_tokens must be an int >= 1, got {max_tokens!r}")
        self.max_tokens = max_tokens
        if base_url is not None:
            url = normalize_base_url(base_url, "base_url")
        else:
            url = normalize_base_url(
                os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_URL, "ANTHROPIC_BASE_URL"
            )
        if url.endswith("/v1"):  # accept the OpenAI-style habit of including the version
            url = url[: -len("/v1")]
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY") or None
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        super().__init__(
            base_url=url,
            headers=headers,
            api_key=key,
            hints=ErrorHints(
                unavailable="Check the network, or set ANTHROPIC_BASE_URL / base_url to the server's address",
                auth=(
                    "set ANTHROPIC_API_KEY or pass api_key= with a valid key"
                    if key
                    else "no API key was sent: set ANTHROPIC_API_KEY or pass api_key="
                ),
                not_found="check the model name (e.g. 'claude-sonnet-4-5') and base_url",
            ),
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            transport=transport,
        )

    def _build_request(self, call: ChatCall) -> dict[str, Any]:
        return build_request(call.messages, call.tools, call.model, call.temperature, self.max_tokens,
                             call.tool_choice)

    def _parse_response(self, data: dict[str, Any], model: str, request: dict[str, Any]) -> LLMResponse:
        return parse_response(data, ResponseReader(self.name, self.url), model)
