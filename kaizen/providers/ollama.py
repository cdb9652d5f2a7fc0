"""Ollama's native chat API (``POST /api/chat``, non-streaming).

Ollama differs from OpenAI in three ways that matter here: tool ``arguments``
are JSON objects (not strings), tool calls carry no id, and a tool result
names the tool (``tool_name``) instead of a call id.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import httpx

from .base import ChatCall, HTTPProvider
from .httpclient import ErrorHints
from .toolchoice import NamedTool, ToolChoice
from .types import LLMResponse, Message, ToolCall, ToolSpec, Usage
from .wire import ResponseReader, conversation_seed, parse_arguments, stable_call_id

DEFAULT_OLLAMA_URL = "http://localhost:11434"
_DEFAULT_PORT = 11434


def ollama_base_url(value: str | None = None) -> str:
    """Resolve ``value``, else ``$OLLAMA_HOST``, else localhost, the way Ollama's CLI does.

    ``OLLAMA_HOST`` is often just ``host:port`` or ``0.0.0.0`` (the address the
    *server* binds); without a scheme we assume http and port 11434, and a
    wildcard bind address is reached through loopback.
    """
    raw = (os.environ.get("OLLAMA_HOST", "") if value is None else value).strip()
    setting = "base_url" if value is not None else "OLLAMA_HOST"
    if not raw:
        return DEFAULT_OLLAMA_URL
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest, default_port = "http", raw, _DEFAULT_PORT
    else:
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"{setting} {raw!r}: scheme must be http or https")
        default_port = 443 if scheme == "https" else 80
    hostport, slash, path = rest.partition("/")
    host, port = _split_host_port(hostport, default_port, setting, raw)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    tail = ("/" + path).rstrip("/") if slash else ""
    return f"{scheme}://{host}:{port}{tail}"


def _split_host_port(hostport: str, default_port: int, setting: str, raw: str) -> tuple[str, int]:
    if hostport.startswith("["):  # [v6]:port
        host, _, after = hostport[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
    else:
        try:
            ipaddress.IPv6Address(hostport)
            return hostport, default_port  # bare v6 literal, no port
        except ValueError:
            pass
        host, _, port_text = hostport.partition(":")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{setting} {raw!r}: port {port_text!r} is not a number between 1 and 65535")
    return host, int(port_text)


def build_request(
    messages: tuple[Message, ...],
    tools: tuple[ToolSpec, ...],
    model: str,
    temperature: float | None,
    tool_choice: ToolChoice | None = None,
) -> dict[str, Any]:
    """The JSON body Ollama's ``/api/chat`` expects."""
    tool_names = {call.id: call.name for m in messages for call in m.tool_calls}
    wire: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls]
        if m.role == "tool":
            tool_name = m.name or tool_names.get(m.tool_call_id or "")
            if tool_name:
                item["tool_name"] = tool_name
        wire.append(item)
    body: dict[str, Any] = {"model": model, "messages": wire, "stream": False}
    tools = offered_tools(tools, tool_choice)
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema()},
            }
            for t in tools
        ]
    if temperature is not None:
        body["options"] = {"temperature": temperature}
    return body


def offered_tools(tools: tuple[ToolSpec, ...], choice: ToolChoice | None) -> tuple[ToolSpec, ...]:
    """The tools to send, since ``/api/chat`` has no ``tool_choice`` field.

    "none" is exact (no tools sent, so none can be called); a named tool is
    the only one sent, so no other can be called, but the model may still
    answer in text; "required" and "auto" send every tool and cannot force a call.
    """
    if choice == "none":
        return ()
    if isinstance(choice, NamedTool):
        return tuple(t for t in tools if t.name == choice.name)
    return tools


def parse_response(data: dict[str, Any], reader: ResponseReader, model: str, seed: str) -> LLMResponse:
    """Turn an ``/api/chat`` answer into an LLMResponse; ``seed`` keys the generated call ids."""
    message = reader.get(data, "message", dict, "message")
    content = reader.get(message, "content", str, "message.content", "")
    raw_calls = reader.get(message, "tool_calls", list, "message.tool_calls", [])
    calls: list[ToolCall] = []
    for i, raw in enumerate(raw_calls):
        where = f"message.tool_calls[{i}]"
        if not isinstance(raw, dict):
            raise reader.error(where, f"should be an object, got {type(raw).__name__}")
        function = reader.get(raw, "function", dict, f"{where}.function")
        name = reader.get(function, "name", str, f"{where}.function.name")
        # an object, or a JSON string from some model templates
        arguments = parse_arguments(function.get("arguments"), name, f"{where}.function.arguments", reader)
        call_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None
        calls.append(ToolCall(id=call_id or stable_call_id(seed, i, name, arguments), name=name, arguments=arguments))
    usage = Usage(
        input_tokens=reader.get(data, "prompt_eval_count", int, "prompt_eval_count", 0),
        output_tokens=reader.get(data, "eval_count", int, "eval_count", 0),
    )
    return LLMResponse(
        content=content,
        tool_calls=tuple(calls),
        usage=usage,
        model=reader.get(data, "model", str, "model", model),
        finish_reason=reader.get(data, "done_reason", str, "done_reason", None),
    )


class OllamaProvider(HTTPProvider):
    """Chat with a local (or remote) Ollama server."""

    name = "ollama"
    _path = "/api/chat"

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        *,
        api_key: str | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        # A key is only needed behind an authenticating proxy or for ollama.com.
        key = api_key if api_key is not None else os.environ.get("OLLAMA_API_KEY") or None
        super().__init__(
            base_url=ollama_base_url(base_url),
            headers={"authorization": f"Bearer {key}"} if key else {},
            api_key=key,
            hints=ErrorHints(
                unavailable="Start it with `ollama serve`, or set OLLAMA_HOST / base_url to where it listens",
                auth="set OLLAMA_API_KEY or pass api_key= (only needed behind a proxy or for ollama.com)",
                not_found="is the model pulled? run `ollama pull <model>`, and check base_url has no extra path",
            ),
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            transport=transport,
        )

    def _build_request(self, call: ChatCall) -> dict[str, Any]:
        return build_request(call.messages, call.tools, call.model, call.temperature, call.tool_choice)

    def _parse_response(self, data: dict[str, Any], model: str, request: dict[str, Any]) -> LLMResponse:
        seed = conversation_seed(request["messages"])
        return parse_response(data, ResponseReader(self.name, self.url), model, seed)
