"""Our OpenAI provider and the agent loop against a real llama.cpp server, offline.

The recorded exchanges in tests/providers pin the wire format; this checks that a real
OpenAI-compatible server agrees: token usage is real, a named ``tool_choice`` makes even a
135M-parameter model call the tool through the loop, and a server killed mid-request gives
our retry and then an error naming the server instead of a hang.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_server import LlamaServer, start_server

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.providers import Message, NamedTool, OpenAIProvider, ProviderUnavailableError
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import ToolRegistry

pytestmark = pytest.mark.slow

PRICE_IN, PRICE_OUT, PRICE_TOOL = 2.0, 8.0, 0.001  # dollars per million tokens, per call


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = start_server(tmp_path_factory.mktemp("llama") / "server.log")
    try:
        yield server
    finally:
        server.stop()


def test_a_chat_round_trip_reports_real_token_usage(llama: LlamaServer) -> None:
    model = llama.model_id()
    with OpenAIProvider(base_url=llama.url, timeout=60, max_retries=0) as provider:
        assert provider.models() == [model]
        answer = provider.chat([Message("system", "You are a helpful assistant."),
                                Message("user", "Say hello in one short sentence.")], model=model, temperature=0)
    assert answer.content.strip()
    assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0
    assert answer.model == model
    assert answer.finish_reason in ("stop", "length")
    assert answer.tool_calls == ()


class Weather(Signature):
    """Report the weather of a city."""

    city: str = InputField(description="the city")
    report: str = OutputField(description="the weather report")


def test_a_named_tool_call_runs_through_the_loop_with_usage_and_cost(llama: LlamaServer, tmp_path: Path) -> None:
    model = llama.model_id()
    asked: list[str] = []
    tools = ToolRegistry()

    @tools.tool(danger="read_only")
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        asked.append(city)
        return f"sunny, 21 C in {city}"

    config = AutonomousConfig(
        llm_provider="openai", model=model, base_url=llama.url, temperature=0, tool_choice=NamedTool("get_weather"),
        max_cycles=1, storage=f"sqlite:///{tmp_path}/state.db", workdir=str(tmp_path), approval_policy="allow_all",
        provider_options={"timeout": 60, "max_retries": 0}, planning_enabled=False,
        prices={"tools": {"get_weather": PRICE_TOOL},
                "models": {model: {"input_per_million": PRICE_IN, "output_per_million": PRICE_OUT}}},
    )
    agent = BaseAutonomousAgent(config, Weather(), tools=tools)
    result = agent.run(city="Paris")

    # the forced call holds for every cycle, so one cycle ends the run at max_cycles after the tool ran
    assert result.status == "max_cycles", result.error
    assert result.tool_calls == 1 and len(asked) == 1 and isinstance(asked[0], str)
    assert agent.tool_usage_counts == {"LLM": 1, "get_weather": 1}
    usage = agent.token_usage[model]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    token_cost = (usage["input_tokens"] * PRICE_IN + usage["output_tokens"] * PRICE_OUT) / 1e6
    assert agent.budget_spent_usd == pytest.approx(PRICE_TOOL + token_cost)
    assert agent.estimate_cost().total == pytest.approx(PRICE_TOOL + token_cost)
    tool_turns = [m for m in agent.conversation_history if m["role"] == "tool"]
    assert [m["content"] for m in tool_turns] == [f"sunny, 21 C in {asked[0]}"]


def test_a_server_killed_mid_request_gives_a_retry_then_an_error_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(tmp_path / "server.log")
    try:
        model = server.model_id()
        provider = OpenAIProvider(base_url=server.url, timeout=30, max_retries=1, backoff_base=0.05)
        outcome: list[BaseException | object] = []

        def long_generation() -> None:
            try:
                # about 500 tokens at temperature 0: several seconds of generation to interrupt
                outcome.append(provider.chat([Message("user", "Write a long story about a lighthouse keeper.")],
                                             model=model, temperature=0))
            except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
                outcome.append(exc)

        caplog.set_level(logging.WARNING, logger="kaizen.providers")
        worker = threading.Thread(target=long_generation, daemon=True)
        worker.start()
        time.sleep(1.0)  # the request is in flight: the server is generating
        assert not outcome, f"the generation ended before the kill: {outcome}"
        server.kill()
        worker.join(timeout=60)
        assert not worker.is_alive(), "the provider hung after the server died"
    finally:
        server.stop()
    error = outcome[0]
    assert isinstance(error, ProviderUnavailableError), error
    assert server.url + "/chat/completions" in str(error)
    assert "after 2 attempt(s)" in str(error) and "is the server running?" in str(error)
    assert any("retry 1/1" in record.getMessage() for record in caplog.records)


def test_kaizen_demo_runs_on_the_server_and_records_its_model_for_resume(llama: LlamaServer, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kaizen.cli import main
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    store = f"sqlite:///{tmp_path}/state.db"
    bare = llama.url.removesuffix("/v1")  # /v1 is added to a bare host:port
    result = CliRunner().invoke(main, ["demo", "--model", bare, "--tool-choice", "none", "--yes", "--no-workflow",
                                       "--agent-id", "demo-llama", "--workdir", str(tmp_path / "work"),
                                       "--store", store])
    assert result.exit_code == 0, result.output
    assert f"at {llama.url}" in result.output
    manager = SyncStateManager(store)
    try:
        state = manager.load_checkpoint(manager.list_checkpoints("demo-llama", limit=1)[0].checkpoint_id)
    finally:
        manager.close()
    assert state.metadata["run"]["status"] == "completed"
    assert state.metadata["cli"]["model_url"] == llama.url
    assert state.metadata["cli"]["model_name"] == llama.model_id()
    assert state.metadata["cli"]["tool_choice"] == "none"
    usage = state.token_usage[llama.model_id()]  # real tokens, under the served model's name
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0


def test_kaizen_demo_names_an_unreachable_model_server(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kaizen.cli import main
    from llama_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    result = CliRunner().invoke(main, ["demo", "--model", url, "--yes", "--store", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code != 0
    assert f"--model {url}: cannot ask the server for its model" in result.output
    assert "--model-name" in result.output and "internal error" not in result.output


def test_a_real_server_run_shows_up_as_a_trace_as_metrics_as_a_log_and_in_usage(
    llama: LlamaServer, tmp_path: Path
) -> None:
    """The same real usage, seen four ways: span attributes, Prometheus samples, `kaizen log`, `kaizen usage`."""
    import json

    import httpx
    from click.testing import CliRunner
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client.parser import text_string_to_metric_families

    from kaizen.cli import main as cli
    from kaizen.core.autonomy.hooks import HookManager
    from kaizen.core.autonomy.hooks.builtin import MetricsHook, TracingHook

    model = llama.model_id()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    hooks = HookManager()
    metrics = MetricsHook()
    hooks.register_hook(TracingHook(tracer_provider=tracer_provider))
    hooks.register_hook(metrics)
    tools = ToolRegistry()

    @tools.tool(danger="read_only")
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"sunny, 21 C in {city}"

    store = f"sqlite:///{tmp_path}/state.db"
    config = AutonomousConfig(
        llm_provider="openai", model=model, base_url=llama.url, temperature=0, tool_choice=NamedTool("get_weather"),
        max_cycles=1, storage=store, workdir=str(tmp_path), approval_policy="allow_all",
        provider_options={"timeout": 60, "max_retries": 0}, planning_enabled=False,
        prices={"tools": {"get_weather": PRICE_TOOL},
                "models": {model: {"input_per_million": PRICE_IN, "output_per_million": PRICE_OUT}}},
    )
    agent = BaseAutonomousAgent(config, Weather(), agent_id="weather-real", tools=tools, hook_manager=hooks)
    agent.run(city="Paris")
    usage = agent.token_usage[model]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0

    (chat,) = [span for span in exporter.get_finished_spans() if span.name.startswith("chat ")]
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    shown_model = str(chat.attributes["gen_ai.request.model"])  # long ids (a file path here) are cut
    assert model.startswith(shown_model.removesuffix("..."))
    assert chat.attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"]
    assert chat.attributes["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    assert [s for s in exporter.get_finished_spans() if s.attributes.get("gen_ai.tool.name") == "get_weather"]

    with metrics.serve() as endpoint:
        text = httpx.get(endpoint.url, timeout=5).text
    tokens = {s.labels["type"]: s.value for family in text_string_to_metric_families(text) for s in family.samples
              if s.name == "kaizen_model_tokens_total" and model.startswith(s.labels["model"].removesuffix("..."))}
    assert tokens == {"input": usage["input_tokens"], "output": usage["output_tokens"]}
    assert 'kaizen_tool_calls_total{outcome="ok",tool="get_weather"} 1.0' in text

    runner = CliRunner()
    logged = runner.invoke(cli, ["log", "weather-real", "--json", "--store", store])
    assert logged.exit_code == 0, logged.output
    entries = [json.loads(line) for line in logged.stdout.splitlines()]
    turns = [e for e in entries if e["kind"] == "turn" and e.get("input_tokens")]
    assert sum(e["input_tokens"] for e in turns) == usage["input_tokens"]
    assert [e for e in entries if e["kind"] == "tool_result" and e.get("tool") == "get_weather"]

    used = runner.invoke(cli, ["usage", "weather-real", "--store", store])
    assert used.exit_code == 0, used.output
    assert "get_weather" in used.stdout and "Tokens" in used.stdout
    assert f"Estimated cost: ${agent.estimate_cost().total:.4f}" in used.stdout
