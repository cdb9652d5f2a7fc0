"""CostTrackingHook, PerformanceProfilerHook and AuditHook on a real run."""

from __future__ import annotations

import pytest
from obs_kit import assert_no_secret, run_agent

from kaizen.core.autonomy.hooks import HookManager
from kaizen.core.autonomy.hooks.builtin import AuditHook, CostTrackingHook, JsonLinesAuditLog, PerformanceProfilerHook


def test_cost_tracking_adds_up_to_the_runs_spend(tmp_path):
    hooks = HookManager()
    cost = CostTrackingHook()
    hooks.register_hook(cost)
    agent, result = run_agent(tmp_path, hooks)
    assert cost.get_total_cost() == pytest.approx(result.budget_spent_usd) == pytest.approx(0.994)
    breakdown = cost.get_cost_breakdown()
    assert breakdown["by_tool"] == {"deploy": pytest.approx(0.25)}
    assert breakdown["by_model"] == {"m-1": pytest.approx(0.744)}
    assert breakdown["by_agent"] == {agent.agent_id: pytest.approx(0.994)}


def test_profiler_times_model_calls_tools_and_the_run(tmp_path):
    hooks = HookManager()
    profiler = PerformanceProfilerHook()
    hooks.register_hook(profiler)
    run_agent(tmp_path, hooks)
    report = profiler.get_performance_report()
    assert report["model_call"]["count"] == 3
    assert report["tool_use"]["count"] == 3
    assert report["agent_loop"]["count"] == 1 and report["cycle"]["count"] == 3
    assert report["agent_loop"]["max_ms"] >= report["tool_use"]["max_ms"] >= 0
    assert report["checkpoint_save"]["count"] >= 4


def test_audit_trail_records_every_event_without_secrets(tmp_path):
    trail = JsonLinesAuditLog(tmp_path / "audit" / "events.jsonl")
    hooks = HookManager()
    hooks.register_hook(AuditHook(trail))
    agent, _ = run_agent(tmp_path, hooks)
    records = trail.read()
    actions = [record["action"] for record in records]
    assert actions.count("approval_decided") == 4 and actions.count("post_model_call") == 3
    assert all(record["user"] == agent.agent_id for record in records)
    failed = [r for r in records if r["action"] == "post_tool_use" and r["result"] == "error"]
    assert [r["metadata"]["data"]["tool_name"] for r in failed] == ["Read"]
    assert (tmp_path / "audit" / "events.jsonl").stat().st_mode & 0o077 == 0
    assert_no_secret((tmp_path / "audit" / "events.jsonl").read_text())


def test_audit_filter_keeps_only_the_events_asked_for(tmp_path):
    trail = JsonLinesAuditLog(tmp_path / "a.jsonl")
    hooks = HookManager()
    hooks.register_hook(AuditHook(trail, event_filter=["approval_decided"]))
    run_agent(tmp_path, hooks)
    assert {record["action"] for record in trail.read()} == {"approval_decided"}
