"""``tool_choice`` on each wire format, checked in the request bodies the local server records.

The recorded tool-call exchanges are replayed with each choice; the body sent must be the
recorded one plus the field exactly as the provider's API documents it (OpenAI's strings and
function object, Anthropic's ``{"type": ...}``), or, for Ollama whose ``/api/chat`` has no such
field, the recorded body with the tools narrowed as the docs say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.agents.autonomous.errors import ConfigError
from kaizen.providers import (
    Message, NamedTool, OpenAIProvider, ProviderResponseError, ScriptedProvider, ToolChoice, ToolSpec, get_provider,
)
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import ToolRegistry

from .conftest import RecordingServer, load_fixture

WEATHER = "get_current_weather"
EXTRA_TOOL = ToolSpec("get_time", "The current time in a city", {"type": "object", "properties": {}})

# choice -> the field each API documents for it
OPENAI_WIRE: list[tuple[ToolChoice, Any]] = [
    ("auto", "auto"),
    ("none", "none"),
    ("required", "required"),
    (NamedTool(WEATHER), {"type": "function", "function": {"name": WEATHER}}),
]
ANTHROPIC_WIRE: list[tuple[ToolChoice, Any]] = [
    ("auto", {"type": "auto"}),
    ("none", {"type": "none"}),
    ("required", {"type": "any"}),
    (NamedTool(WEATHER), {"type": "tool", "name": WEATHER}),
]


def _send(provider_name: str, server: RecordingServer, choice: Any, extra_tools: tuple[ToolSpec, ...] = (),
          with_tools: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replay the recorded tool-call exchange with ``choice``; the fixture and the body sent."""
    fixture = load_fixture(f"{provider_name}_tool_call.json")
    server.reply(fixture["response"]["status"], fixture["response"]["body"])
    provider = get_provider(provider_name, base_url=server.url + fixture["base_path"], **fixture["options"])
    call = fixture["call"]
    tools = [ToolSpec(**t) for t in call["tools"]] + list(extra_tools) if with_tools else []
    provider.chat([Message.from_dict(m) for m in call["messages"]], tools, model=call["model"],
                  temperature=call["temperature"], tool_choice=choice)
    assert len(server.requests) == 1
    return fixture, server.requests[0].json()


@pytest.mark.parametrize(("provider_name", "choice", "wire"),
                         [("openai", c, w) for c, w in OPENAI_WIRE] + [("anthropic", c, w) for c, w in ANTHROPIC_WIRE])
def test_the_body_is_the_recorded_one_plus_the_documented_tool_choice(
    provider_name: str, choice: ToolChoice, wire: Any, server: RecordingServer
) -> None:
    fixture, sent = _send(provider_name, server, choice)
    assert sent == {**fixture["request"]["body"], "tool_choice": wire}


@pytest.mark.parametrize("provider_name", ["openai", "anthropic", "ollama"])
def test_no_tool_choice_sends_the_recorded_body_unchanged(provider_name: str, server: RecordingServer) -> None:
    fixture, sent = _send(provider_name, server, None)
    assert sent == fixture["request"]["body"]


@pytest.mark.parametrize(("provider_name", "choice"), [("openai", "none"), ("anthropic", "none"),
                                                      ("openai", "auto"), ("anthropic", "auto")])
def test_tool_choice_is_left_out_when_no_tools_are_sent(provider_name: str, choice: ToolChoice,
                                                        server: RecordingServer) -> None:
    """Both APIs reject tool_choice without tools; with no tools "none" and "auto" mean the same."""
    _, sent = _send(provider_name, server, choice, with_tools=False)
    assert "tool_choice" not in sent and "tools" not in sent


def test_ollama_none_sends_no_tools(server: RecordingServer) -> None:
    fixture, sent = _send("ollama", server, "none")
    expected = {k: v for k, v in fixture["request"]["body"].items() if k != "tools"}
    assert sent == expected


def test_ollama_named_tool_is_the_only_tool_sent(server: RecordingServer) -> None:
    fixture, sent = _send("ollama", server, NamedTool(WEATHER), extra_tools=(EXTRA_TOOL,))
    assert sent == fixture["request"]["body"]  # the recorded body holds just the weather tool
    assert [t["function"]["name"] for t in sent["tools"]] == [WEATHER]


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_ollama_auto_and_required_send_every_tool(choice: ToolChoice, server: RecordingServer) -> None:
    """``/api/chat`` has no field to force a call: every tool is offered, nothing more can be said."""
    _, sent = _send("ollama", server, choice, extra_tools=(EXTRA_TOOL,))
    assert [t["function"]["name"] for t in sent["tools"]] == [WEATHER, "get_time"]
    assert "tool_choice" not in sent


@pytest.mark.parametrize("provider_name", ["openai", "anthropic", "ollama", "scripted"])
@pytest.mark.parametrize(("choice", "with_tools", "message"), [
    (NamedTool("delete_everything"), True, "'delete_everything', which is not among the tools"),
    ("required", False, "needs at least one tool"),
    ("sometimes", True, "'sometimes' is not valid"),
])
def test_a_bad_tool_choice_is_refused_before_anything_is_sent(
    provider_name: str, choice: Any, with_tools: bool, message: str, server: RecordingServer
) -> None:
    if provider_name == "scripted":
        provider = ScriptedProvider(["never sent"])
    else:
        fixture = load_fixture(f"{provider_name}_tool_call.json")
        provider = get_provider(provider_name, base_url=server.url + fixture["base_path"], **fixture["options"])
    tools = [ToolSpec(WEATHER, "weather")] if with_tools else []
    with pytest.raises(ValueError, match=message) as caught:
        provider.chat([Message("user", "hi")], tools, model="m", tool_choice=choice)
    assert provider_name in str(caught.value)
    assert server.requests == []


@pytest.mark.parametrize("value", [{"name": WEATHER}, NamedTool(WEATHER)])
def test_a_config_names_a_tool_as_a_dict_or_a_named_tool(value: Any) -> None:
    assert AutonomousConfig(llm_provider="scripted", tool_choice=value).tool_choice == NamedTool(WEATHER)


@pytest.mark.parametrize("value", ["always", {"function": WEATHER}, 3])
def test_a_config_with_a_bad_tool_choice_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match="tool_choice"):
        AutonomousConfig(llm_provider="scripted", tool_choice=value)


class _Lookup(Signature):
    """Look it up."""

    question: str = InputField(description="the question")
    answer: str = OutputField(description="the answer")


@pytest.mark.parametrize("choice", [None, "required", NamedTool("lookup")])
def test_the_loop_sends_the_configured_tool_choice_with_every_model_call(choice: ToolChoice | None,
                                                                         tmp_path: Path) -> None:
    tools = ToolRegistry()

    @tools.tool(danger="read_only")
    def lookup(term: str) -> str:
        """Look a term up."""
        return term.upper()

    provider = ScriptedProvider([{"tool_calls": [{"name": "lookup", "arguments": {"term": "x"}}]}, "X"])
    config = AutonomousConfig(llm_provider="scripted", model="m", storage=f"sqlite:///{tmp_path}/s.db",
                              workdir=str(tmp_path), approval_policy="allow_all", tool_choice=choice)
    agent = BaseAutonomousAgent(config, _Lookup(), provider=provider, tools=tools)
    assert agent.run(question="x").status == "completed"
    assert provider.tool_choices == [choice, choice]


def test_openai_models_lists_what_the_server_serves(server: RecordingServer) -> None:
    """How ``kaizen demo --model URL`` learns the model name of a self-hosted server."""
    server.reply(200, {"object": "list", "data": [{"id": "smollm2", "object": "model", "owned_by": "me"}]})
    assert OpenAIProvider(base_url=server.url + "/v1").models() == ["smollm2"]
    assert (server.requests[0].method, server.requests[0].path) == ("GET", "/v1/models")


def test_openai_models_names_a_malformed_entry(server: RecordingServer) -> None:
    server.reply(200, {"data": [{"object": "model"}]})
    with pytest.raises(ProviderResponseError, match=r"'data\[0\]\.id' is missing"):
        OpenAIProvider(base_url=server.url + "/v1").models()
