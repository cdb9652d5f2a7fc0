"""Where a run stops and starts: approvals pinned before tools run, budgets, call ids, completed runs, lost leases, Ctrl-C."""

from __future__ import annotations

import time

import pytest
from agent_testkit import call, make_agent

from kaizen.core.autonomy.hooks import HookResult
from kaizen.core.autonomy.state.errors import LeaseHeldError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers.types import LLMResponse, ToolCall, Usage


def test_a_hook_cannot_change_what_runs_after_approval(tmp_path):
    agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "approved"}), "done"])

    def tamper(context):
        context.data["arguments"]["content"] = "smuggled"
        return HookResult.ok()

    agent.hooks.register("pre_tool_use", tamper)
    agent.hooks.register("pre_permission_check", tamper)
    assert agent.run(task="t").status == "completed"
    assert (tmp_path / "work/a.txt").read_text() == "approved"
    assert "approved" in agent._get_approval_history()[0]["input_summary"]


def test_a_long_answer_past_the_budget_runs_no_tool(tmp_path):
    script = [{"content": "", "tool_calls": [{"name": "Write", "arguments": {"path": "x", "content": "y"}}],
               "usage": {"input_tokens": 10, "output_tokens": 100_000}}, "done"]
    agent = make_agent(tmp_path, script, budget_limit_usd=0.01,
                       prices={"models": {"m": {"input_per_million": 0.0, "output_per_million": 10.0}}})
    result = agent.run(task="t")
    assert result.status == "budget_exceeded"
    assert not (tmp_path / "work/x").exists() and "Write" not in agent._get_tool_usage_counts()


class SameIdProvider:
    """A server that numbers tool calls per turn, so every turn's first call is "call_0"."""

    name = "same-ids"

    def __init__(self) -> None:
        self.turns = [("one.txt", "1"), ("two.txt", "2")]

    def chat(self, messages, tools=(), *, model, temperature=None):
        if not self.turns:
            return LLMResponse("done", (), Usage(1, 1), model)
        path, content = self.turns.pop(0)
        return LLMResponse("", (ToolCall("call_0", "Write", {"path": path, "content": content}),), Usage(1, 1), model)


def test_a_provider_reusing_call_ids_across_turns_gets_every_call_run(tmp_path):
    agent = make_agent(tmp_path, provider=SameIdProvider())
    assert agent.run(task="t").tool_calls == 2
    assert (tmp_path / "work/two.txt").read_text() == "2"


def test_resume_never_runs_a_completed_run_again_and_run_starts_the_next(tmp_path):
    agent = make_agent(tmp_path, ["first answer", "second answer"], agent_id="twice")
    assert agent.run(task="one").outputs["result"] == "first answer"
    again = agent.run(resume=True, task="one")  # a worker that always resumes: nothing runs twice
    assert again.outputs["result"] == "first answer" and agent._get_tool_usage_counts()["LLM"] == 1
    nxt = agent.run(task="two")  # the agent's next run
    assert nxt.status == "completed" and nxt.outputs["result"] == "second answer"
    assert nxt.run_id != again.run_id


def test_a_worker_that_lost_its_lease_stops(tmp_path):
    agent = make_agent(tmp_path, [call("Read", {"path": "missing"})] * 5 + ["done"], agent_id="leased",
                       worker_id="w1", lease_ttl=0.2)

    def steal(context):
        if context.data["cycle"] == 2:
            time.sleep(0.35)  # our keepalive renews, then we lose the lease to a thief
            manager = SyncStateManager(agent.config.storage)
            manager.storage.release_lease("leased", "w1")
            manager.claim("leased", "thief", ttl=30, keepalive=False)
            deadline = time.monotonic() + 5
            while agent_lease_lost() is None and time.monotonic() < deadline:  # the next renewal notices
                time.sleep(0.05)

    def agent_lease_lost():
        return holder["lease"].lost if holder else None

    holder = {}
    real_claim = agent.state_manager.claim

    def remember(*args, **kwargs):
        holder["lease"] = real_claim(*args, **kwargs)
        return holder["lease"]

    agent.state_manager.claim = remember
    agent.hooks.register("pre_cycle", steal)
    result = agent.run(task="t")
    assert result.status == "failed" and "held by thief" in result.error
    with pytest.raises(LeaseHeldError):
        SyncStateManager(agent.config.storage).claim("leased", "w1", ttl=5)


def test_save_capture_serializes(tmp_path):
    agent = make_agent(tmp_path, ["done"])
    agent.record_approval("Bash", True)
    assert agent._capture_state(_for_save=True).to_dict()["approval_history"][0]["tool_name"] == "Bash"


def test_ctrl_c_saves_an_interrupted_checkpoint_and_resume_continues(tmp_path):
    class CtrlC:
        name = "ctrl-c"

        def chat(self, messages, tools=(), *, model, temperature=None):
            raise KeyboardInterrupt

    agent = make_agent(tmp_path, provider=CtrlC(), agent_id="paused")
    events = []
    agent.hooks.register("pre_interrupt", lambda ctx: events.append("pre"))
    agent.hooks.register("post_interrupt", lambda ctx: events.append("post"))
    with pytest.raises(KeyboardInterrupt):
        agent.run(task="t")
    assert events == ["pre", "post"]
    stored = SyncStateManager(agent.config.storage).load_latest("paused")
    assert stored.status == "interrupted" and stored.workflow_state["status"] == "interrupted"
    resumed = make_agent(tmp_path, ["finished"], agent_id="paused")
    assert resumed.run(resume=True).status == "completed"
