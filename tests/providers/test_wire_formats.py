"""Each provider against recorded request/response pairs, over a real local HTTP server.

A fixture holds the wire-neutral call, the exact request the real API
documents for it (path, headers, JSON body), the API's response and the
LLMResponse we must parse from it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kaizen.providers import LLMProvider, LLMResponse, Message, ToolSpec, get_provider

from .conftest import RecordingServer, load_fixture

FIXTURE_NAMES = [
    f"{provider}_{case}.json"
    for provider in ("ollama", "openai", "anthropic")
    for case in ("tool_call", "text", "multi_turn")
]


def _provider(fixture: dict[str, Any], server: RecordingServer) -> LLMProvider:
    return get_provider(fixture["provider"], base_url=server.url + fixture["base_path"], **fixture["options"])


def _call(provider: LLMProvider, call: dict[str, Any]) -> LLMResponse:
    return provider.chat(
        [Message.from_dict(m) for m in call["messages"]],
        [ToolSpec(**t) for t in call["tools"]],
        model=call["model"],
        temperature=call["temperature"],
    )


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_request_and_response_match_the_recorded_exchange(name: str, server: RecordingServer) -> None:
    fixture = load_fixture(name)
    server.reply(fixture["response"]["status"], fixture["response"]["body"])
    provider = _provider(fixture, server)

    result = _call(provider, fixture["call"])

    assert len(server.requests) == 1
    sent = server.requests[0]
    expected = fixture["request"]
    assert sent.method == expected["method"]
    assert sent.path == expected["path"]
    for header, value in expected["headers"].items():
        assert sent.headers.get(header) == value, header
    for header in expected.get("absent_headers", []):
        assert header not in sent.headers
    assert sent.json() == expected["body"]
    assert result == LLMResponse.from_dict(fixture["expected"])


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_achat_sends_and_parses_the_same(name: str, server: RecordingServer) -> None:
    fixture = load_fixture(name)
    server.reply(fixture["response"]["status"], fixture["response"]["body"])
    server.reply(fixture["response"]["status"], fixture["response"]["body"])
    provider = _provider(fixture, server)
    call = fixture["call"]
    messages = [Message.from_dict(m) for m in call["messages"]]
    tools = [ToolSpec(**t) for t in call["tools"]]

    sync = provider.chat(messages, tools, model=call["model"], temperature=call["temperature"])
    async_ = asyncio.run(provider.achat(messages, tools, model=call["model"], temperature=call["temperature"]))

    assert async_ == sync
    assert server.requests[0].json() == server.requests[1].json()


def test_ollama_call_ids_are_stable_for_a_replayed_turn_and_differ_across_turns(server: RecordingServer) -> None:
    fixture = load_fixture("ollama_tool_call.json")
    for _ in range(3):
        server.reply(200, fixture["response"]["body"])
    provider = _provider(fixture, server)
    call = fixture["call"]
    first = _call(provider, call)
    replay = _call(provider, call)
    later = _call(provider, {**call, "messages": [*call["messages"], {"role": "user", "content": "And now?"}]})

    assert first.tool_calls[0].id == replay.tool_calls[0].id
    assert first.tool_calls[0].id.startswith("call_")
    assert later.tool_calls[0].id != first.tool_calls[0].id


def test_ollama_tool_name_falls_back_to_the_calling_turn(server: RecordingServer) -> None:
    """A tool result without ``name`` still tells Ollama which tool answered."""
    fixture = load_fixture("ollama_multi_turn.json")
    server.reply(200, fixture["response"]["body"])
    messages = [Message.from_dict(m) for m in fixture["call"]["messages"]]
    assert all(m.name is None for m in messages if m.role == "tool")
    _provider(fixture, server).chat(messages, model="llama3.2")
    sent = [m for m in server.requests[0].json()["messages"] if m["role"] == "tool"]
    assert [m["tool_name"] for m in sent] == ["get_current_weather", "get_current_weather"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_provider_satisfies_the_protocol(name: str, server: RecordingServer) -> None:
    provider = _provider(load_fixture(name), server)
    assert isinstance(provider, LLMProvider)
    assert provider.name == load_fixture(name)["provider"]
