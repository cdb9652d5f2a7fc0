"""MetricsHook: a real run's metrics, scraped from the hook's own HTTP endpoint and parsed."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from obs_kit import API_KEY, assert_no_secret, run_agent
from prometheus_client.parser import text_string_to_metric_families

from kaizen.core.autonomy.hooks import HookContext, HookEvent, HookManager
from kaizen.core.autonomy.hooks.builtin import MetricsHook


def scrape(url: str) -> tuple[dict[tuple[str, tuple[tuple[str, str], ...]], float], str]:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, response.text


def value(samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def scraped(tmp_path):
    hooks = HookManager()
    hook = MetricsHook()
    hooks.register_hook(hook)
    saves: list[dict[str, Any]] = []
    hooks.register("post_checkpoint_save", lambda context: saves.append(dict(context.data)))
    agent, result = run_agent(tmp_path, hooks)
    with hook.serve() as endpoint:
        assert endpoint.url.startswith("http://127.0.0.1:")
        samples, text = scrape(endpoint.url)
    return agent, result, samples, text, saves


def test_runs_model_calls_and_tokens(scraped):
    agent, result, samples, _, _ = scraped
    assert value(samples, "kaizen_runs_total", status="completed") == 1
    assert value(samples, "kaizen_model_calls_total", model="m-1", provider="scripted", outcome="ok") == 3
    usage = agent.token_usage["m-1"]
    assert value(samples, "kaizen_model_tokens_total", model="m-1", type="input") == usage["input_tokens"]
    assert value(samples, "kaizen_model_tokens_total", model="m-1", type="output") == usage["output_tokens"]


def test_tool_calls_by_outcome_and_approvals_by_decision(scraped):
    _, _, samples, _, _ = scraped
    assert value(samples, "kaizen_tool_calls_total", tool="Write", outcome="ok") == 1
    assert value(samples, "kaizen_tool_calls_total", tool="Read", outcome="error") == 1
    assert value(samples, "kaizen_tool_calls_total", tool="deploy", outcome="ok") == 1
    assert value(samples, "kaizen_approvals_total", decision="approved", action="once") == 3
    assert value(samples, "kaizen_approvals_total", decision="denied", action="once") == 1


def test_checkpoint_latency_and_bytes_match_the_saves(scraped):
    _, _, samples, _, saves = scraped
    assert value(samples, "kaizen_checkpoint_save_seconds_count") == len(saves) > 3
    assert 0 < value(samples, "kaizen_checkpoint_save_seconds_sum") < 60
    assert value(samples, "kaizen_checkpoint_save_bytes_count") == len(saves)
    assert value(samples, "kaizen_checkpoint_save_bytes_sum") == sum(save["size_bytes"] for save in saves)


def test_cost_adds_up_to_what_the_run_spent(scraped):
    _, result, samples, _, _ = scraped
    model = value(samples, "kaizen_cost_usd_total", kind="model", name="m-1")
    tool = value(samples, "kaizen_cost_usd_total", kind="tool", name="deploy")
    assert tool == pytest.approx(0.25)
    assert model + tool == pytest.approx(result.budget_spent_usd)


def test_events_are_counted_per_agent(scraped):
    agent, _, samples, _, _ = scraped
    assert value(samples, "kaizen_hook_events_total", event_type="pre_cycle", agent_id=agent.agent_id) == 3
    assert value(samples, "kaizen_active_agents") == 1
    assert value(samples, "kaizen_operation_duration_seconds_count", operation="model_call",
                 agent_id=agent.agent_id) == 3


def test_no_secret_in_the_exposition(scraped):
    _, _, _, text, _ = scraped
    assert_no_secret(text)


def test_label_values_are_redacted_and_agent_ids_can_be_hashed():
    hook = MetricsHook(hash_agent_ids=True)
    context = HookContext(HookEvent.POST_MODEL_CALL, "customer-42", time.time(),
                          {"model": f"proxy?api_key={API_KEY}", "provider": "p", "input_tokens": 3})
    assert hook.record(context).success
    text = hook.export_prometheus().decode()
    assert API_KEY not in text and "customer-42" not in text
    assert hook._hash_agent_id("customer-42") in text


def test_the_endpoint_answers_health_and_unknown_paths():
    hook = MetricsHook()
    with hook.serve() as endpoint:
        base = endpoint.url.removesuffix("/metrics")
        assert httpx.get(base + "/health").json()["status"] == "healthy"
        assert httpx.get(base + "/nothing").status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(endpoint.url, timeout=2)  # stopped: the port is closed
