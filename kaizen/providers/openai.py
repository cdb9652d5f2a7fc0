"""OpenAI Chat Completions (``POST {base_url}/chat/completions``).

Also the lingua franca of self-hosted servers (vLLM, llama.cpp, LM Studio,
Ollama's ``/v1``), so the key is optional and ``base_url`` is all that changes.
Tool-call ``arguments`` travel as a JSON *string* in both directions.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import orjson

from .base import ChatCall, HTTPProvider
from .httpclient import ErrorHints
from .toolchoice import NamedTool, ToolChoice
from .types import LLMResponse, Message, ToolCall, ToolSpec, Usage
from .wire import ResponseReader, conversation_seed, normalize_base_url, parse_arguments, stable_call_id

DEFAULT_OPENAI_URL = "https://api.openai.com/v1"


def build_request(
    messages: tuple[Message, ...],
    tools: tuple[ToolSpec, ...],
    model: str,
    temperature: float | None,
    tool_choice: ToolChoice | None = None,
) -> dict[str, Any]:
    """The JSON body of a Chat Completions request."""
    wire: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            wire.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
            continue
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            # OpenAI documents null content for a turn that only calls tools.
            item["content"] = m.content or None
            item["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": orjson.dumps(c.arguments).decode()},
                }
                for c in m.tool_calls
            ]
        if m.name is not None:
            item["name"] = m.name
        wire.append(item)
    body: dict[str, Any] = {"model": model, "messages": wire}
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema()},
            }
            for t in tools
        ]
        if tool_choice is not None:  # the API rejects tool_choice without tools
            body["tool_choice"] = wire_tool_choice(tool_choice)
    if temperature is not None:
        body["temperature"] = temperature
    return body


def wire_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    """Chat Completions spells the modes as strings and a named tool as a function object."""
    if isinstance(choice, NamedTool):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def parse_response(data: dict[str, Any], reader: ResponseReader, model: str, seed: str) -> LLMResponse:
    """Turn a ``chat.completion`` object into an LLMResponse."""
    choices = reader.get(data, "choices", list, "choices")
    if not choices or not isinstance(choices[0], dict):
        raise reader.error("choices[0]", "is missing (the server returned no completion)")
    choice = choices[0]
    message = reader.get(choice, "message", dict, "choices[0].message")
    content = reader.get(message, "content", str, "choices[0].message.content", None)
    if content is None:  # a refusal replaces the content
        content = reader.get(message, "refusal", str, "choices[0].message.refusal", "")
    raw_calls = reader.get(message, "tool_calls", list, "choices[0].message.tool_calls", [])
    calls: list[ToolCall] = []
    for i, raw in enumerate(raw_calls):
        where = f"choices[0].message.tool_calls[{i}]"
        if not isinstance(raw, dict):
            raise reader.error(where, f"should be an object, got {type(raw).__name__}")
        function = reader.get(raw, "function", dict, f"{where}.function")
        name = reader.get(function, "name", str, f"{where}.function.name")
        arguments = parse_arguments(function.get("arguments"), name, f"{where}.function.arguments", reader)
        call_id = reader.get(raw, "id", str, f"{where}.id", "") or stable_call_id(seed, i, name, arguments)
        calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
    usage_data = reader.get(data, "usage", dict, "usage", {})
    usage = Usage(
        input_tokens=reader.get(usage_data, "prompt_tokens", int, "usage.prompt_tokens", 0),
        output_tokens=reader.get(usage_data, "completion_tokens", int, "usage.completion_tokens", 0),
    )
    return LLMResponse(
        content=content,
        tool_calls=tuple(calls),
        usage=usage,
        model=reader.get(data, "model", str, "model", model),
        finish_reason=reader.get(choice, "finish_reason", str, "choices[0].finish_reason", None),
    )


class OpenAIProvider(HTTPProvider):
    """Chat with OpenAI or any server that speaks Chat Completions."""

    name = "openai"
    _path = "/chat/completions"

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if base_url is not None:
            url = normalize_base_url(base_url, "base_url")
        else:
            url = normalize_base_url(os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL, "OPENAI_BASE_URL")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or None
        super().__init__(
            base_url=url,
            headers={"authorization": f"Bearer {key}"} if key else {},
            api_key=key,
            hints=ErrorHints(
                unavailable="Check the network, or set OPENAI_BASE_URL / base_url to the server's address",
                auth=(
                    "set OPENAI_API_KEY or pass api_key= with a valid key"
                    if key
                    else "no API key was sent: set OPENAI_API_KEY or pass api_key="
                ),
                not_found="check the model name, and that base_url ends where the API lives (usually .../v1)",
            ),
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            transport=transport,
        )

    def models(self) -> list[str]:
        """The ids ``GET {base_url}/models`` lists: what a self-hosted server calls the model it serves."""
        url = self.base_url + "/models"
        reader = ResponseReader(self.name, url)
        entries = reader.get(self._http.get(url), "data", list, "data")
        ids: list[str] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise reader.error(f"data[{i}]", f"should be an object, got {type(entry).__name__}")
            ids.append(reader.get(entry, "id", str, f"data[{i}].id"))
        return ids

    def _build_request(self, call: ChatCall) -> dict[str, Any]:
        return build_request(call.messages, call.tools, call.model, call.temperature, call.tool_choice)

    def _parse_response(self, data: dict[str, Any], model: str, request: dict[str, Any]) -> LLMResponse:
        seed = conversation_seed(request["messages"])
        return parse_response(data, ResponseReader(self.name, self.url), model, seed)
