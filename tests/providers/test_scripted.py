"""The offline scripted provider: order, ids, usage, exhaustion, resume."""

from __future__ import annotations

import asyncio

import pytest

from kaizen.providers import (
    LLMProvider,
    LLMResponse,
    Message,
    ProviderError,
    ScriptedProvider,
    ScriptExhaustedError,
    ToolCall,
    Usage,
    get_provider,
)

ASK = [Message("user", "Read README.md and summarize it")]
SCRIPT = [
    {"content": "Let me read it.", "tool_calls": [{"name": "Read", "arguments": {"path": "README.md"}}]},
    {"tool_calls": [{"name": "Grep", "arguments": {"q": "x"}}, {"name": "Read", "arguments": {"path": "b"}}]},
    {"tool_calls": [{"id": "mine", "name": "Bash", "arguments": {"cmd": "ls"}}]},
    "It is a README.",
]


def play(provider: ScriptedProvider, n: int) -> list[LLMResponse]:
    return [provider.chat(ASK, model="test-model") for _ in range(n)]


def test_plays_in_order_with_deterministic_ids() -> None:
    out = play(ScriptedProvider(SCRIPT), 4)
    assert [r.content for r in out] == ["Let me read it.", "", "", "It is a README."]
    assert [[c.id for c in r.tool_calls] for r in out] == [["call_1"], ["call_2", "call_3"], ["mine"], []]
    assert out[0].tool_calls[0] == ToolCall("call_1", "Read", {"path": "README.md"})
    assert [r.finish_reason for r in out] == ["tool_calls", "tool_calls", "tool_calls", "stop"]
    assert all(r.model == "test-model" for r in out)


def test_same_script_gives_identical_runs() -> None:
    assert play(ScriptedProvider(SCRIPT), 4) == play(ScriptedProvider(SCRIPT), 4)


def test_usage_is_estimated_deterministically() -> None:
    first = ScriptedProvider(["ok"]).chat([Message("user", "x" * 40)], model="m")
    assert first.usage == Usage(input_tokens=10, output_tokens=1)  # 40 chars / 4; at least 1
    explicit = ScriptedProvider([{"content": "ok", "usage": {"input_tokens": 7, "output_tokens": 3}}])
    assert explicit.chat(ASK, model="m").usage == Usage(7, 3)


def test_llm_response_items_are_returned_as_given() -> None:
    given = LLMResponse("hi", (), Usage(3, 4), "their-model", "end_turn")
    assert ScriptedProvider([given]).chat(ASK, model="m") is given


def test_exhaustion_raises_naming_the_script_length() -> None:
    provider = ScriptedProvider(["a", "b"])
    play(provider, 2)
    with pytest.raises(ScriptExhaustedError, match="all 2 scripted response") as info:
        provider.chat(ASK, model="m")
    assert isinstance(info.value, ProviderError)
    assert info.value.provider == "scripted"
    assert provider.position == 2


def test_resume_continues_where_the_run_stopped() -> None:
    uninterrupted = play(ScriptedProvider(SCRIPT), 4)
    crashed = ScriptedProvider(SCRIPT)
    before = play(crashed, 2)
    resumed = ScriptedProvider(SCRIPT, start_at=crashed.position)
    after = play(resumed, 2)
    assert before + after == uninterrupted  # same content and same call ids
    assert resumed.position == 4 and resumed.remaining == 0
    with pytest.raises(ScriptExhaustedError):
        resumed.chat(ASK, model="m")


@pytest.mark.parametrize("start_at", [-1, 5, "1", True])
def test_start_at_is_checked(start_at: object) -> None:
    with pytest.raises(ValueError, match="start_at"):
        ScriptedProvider(SCRIPT, start_at=start_at)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"content": "x", "tool_call": []}, "tool_call"),
        ({"tool_calls": [{"arguments": {}}]}, "missing 'name'"),
        ({"tool_calls": [{"name": "f", "args": {}}]}, "args"),
        ({"tool_calls": [{"name": "f", "arguments": "x"}]}, r"responses\[0\]\.tool_calls\[0\]"),
        ({"content": 3}, "content"),
        (42, "int"),
    ],
)
def test_bad_script_items_are_named(item: object, problem: str) -> None:
    with pytest.raises((ValueError, TypeError), match=problem):
        ScriptedProvider([item])  # type: ignore[list-item]


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="'call_2' is already used"):
        ScriptedProvider([{"tool_calls": [{"id": "call_2", "name": "f"}]}, {"tool_calls": [{"name": "g"}]}])


def test_records_what_it_was_sent_and_async_works() -> None:
    provider = ScriptedProvider(["one", "two"])
    assert provider.chat(ASK, model="m").content == "one"
    assert asyncio.run(provider.achat(ASK, model="m")).content == "two"
    assert provider.requests == [tuple(ASK), tuple(ASK)]
    assert provider.position == 2


def test_registry_builds_it_and_it_is_a_provider() -> None:
    provider = get_provider("scripted", responses=["hi"], base_url="ignored", api_key=None, timeout=1.0)
    assert isinstance(provider, LLMProvider)
    assert provider.chat(ASK, model="m").content == "hi"
