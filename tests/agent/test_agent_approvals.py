"""Approvals in the loop: every decision recorded before its tool runs, once/all/deny_all,
standing decisions remembered across a restore from SQLite, policies, on_denial, redaction."""

from __future__ import annotations

import pytest
from agent_testkit import (
    CountingApprover,
    TaskSignature,
    call,
    calls,
    fresh_manager,
    load_all_checkpoints,
    make_agent,
    tool_messages,
)

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.permissions import ApprovalDecision, ApprovalRequest
from kaizen.core.autonomy.permissions.errors import ApprovalCallbackError
from kaizen.providers.scripted import ScriptedProvider
from kaizen.tools import ToolRegistry, builtin_tools


def writes(n: int, prefix: str = "f") -> list:
    return [call("Write", {"path": f"{prefix}{i}.txt", "content": str(i)}) for i in range(n)]


def decisions(agent) -> list[tuple]:
    return [(r["tool_name"], r["approved"], r["action"], r.get("decided_by")) for r in agent.approval_history]


class TestRecordedBeforeTheToolRuns:
    @pytest.mark.parametrize("policy,answer", [("ask", "approve"), ("ask", "all"), ("allow_all", None),
                                               ("allow_safe", True)])
    def test_decision_is_recorded_and_durable_before_execution(self, tmp_path, policy, answer):
        manager = fresh_manager(tmp_path)
        (tmp_path / "work").mkdir()
        registry = ToolRegistry(builtin_tools(tmp_path / "work"))
        holder: dict = {}
        seen: list[tuple] = []

        @registry.tool(danger="dangerous")
        def deploy(target: str) -> str:
            """Deploys (dangerous)."""
            agent = holder["agent"]
            in_memory = agent._get_approval_history()
            durable = manager.load_latest(agent.agent_id).approval_history
            seen.append((target, in_memory[-1]["input_summary"], len(in_memory), durable[-1]["input_summary"],
                         len(durable), durable[-1]["approved"]))
            return "deployed " + target

        pre_tool: list[int] = []
        script = [call("deploy", {"target": "staging"}), call("Read", {"path": "none.txt"}),
                  call("deploy", {"target": "prod"}), "done"]
        approver = CountingApprover(answer) if answer is not None else None
        agent = make_agent(tmp_path, script, tools=registry, approval_policy=policy, approval_callback=approver)
        holder["agent"] = agent
        agent.hooks.register("pre_tool_use", lambda ctx: pre_tool.append(len(agent._get_approval_history())))
        result = agent.run(task="t")

        assert result.status == "completed"
        # the pre_tool_use hook already sees the decision for the call it is about to allow
        assert pre_tool == [1, 2, 3]
        assert seen == [
            ("staging", "{'target': 'staging'}", 1, "{'target': 'staging'}", 1, True),
            ("prod", "{'target': 'prod'}", 3, "{'target': 'prod'}", 3, True),
        ]

    def test_automatic_and_asked_decisions_are_all_recorded(self, tmp_path):
        approver = CountingApprover(True)
        script = [call("Read", {"path": "x"}), call("Write", {"path": "y", "content": "1"}), "done"]
        agent = make_agent(tmp_path, script, approval_policy="allow_safe", approval_callback=approver)
        agent.run(task="t")
        assert decisions(agent) == [("Read", True, "once", "policy"), ("Write", True, "once", "user")]
        records = agent.approval_history
        assert all(set(r) == {"tool_name", "approved", "action", "timestamp", "input_summary", "decided_by"}
                   for r in records)
        assert records[0]["timestamp"] <= records[1]["timestamp"]


class TestApprovalActions:
    def test_once_asks_every_time(self, tmp_path):
        approver = CountingApprover("once")
        agent = make_agent(tmp_path, writes(3) + ["done"], approval_policy="ask", approval_callback=approver)
        assert agent.run(task="t").status == "completed"
        assert approver.count == 3
        assert decisions(agent) == [("Write", True, "once", "user")] * 3
        assert [(tmp_path / f"work/f{i}.txt").read_text() for i in range(3)] == ["0", "1", "2"]

    def test_request_shows_tool_input_danger_and_call_id(self, tmp_path):
        approver = CountingApprover(True)
        agent = make_agent(tmp_path, writes(1) + ["done"], approval_policy="ask", approval_callback=approver)
        agent.run(task="t")
        (request,) = approver.requests
        assert isinstance(request, ApprovalRequest)
        assert request.agent_id == agent.agent_id and request.tool_name == "Write"
        assert request.tool_input == {"path": "f0.txt", "content": "0"}
        assert request.danger == "side_effect" and request.call_id == "call_1"
        assert request.input_summary == "{'path': 'f0.txt', 'content': '0'}"

    def test_all_asks_once_then_approves_later_calls(self, tmp_path):
        approver = CountingApprover("all")
        script = writes(3) + [call("Bash", {"command": "true"}), "done"]
        agent = make_agent(tmp_path, script, approval_policy="ask", approval_callback=approver)
        assert agent.run(task="t").status == "completed"
        # asked for the first Write and for Bash (a standing decision covers one tool only)
        assert [r.tool_name for r in approver.requests] == ["Write", "Bash"]
        assert decisions(agent) == [
            ("Write", True, "all", "user"), ("Write", True, "all", "standing"), ("Write", True, "all", "standing"),
            ("Bash", True, "all", "user"),
        ]
        assert all((tmp_path / f"work/f{i}.txt").exists() for i in range(3))
        assert agent.tool_usage_counts["Write"] == 3

    def test_deny_all_denies_later_calls_without_asking(self, tmp_path):
        approver = CountingApprover("deny_all")
        script = writes(3) + ["done"]
        agent = make_agent(tmp_path, script, approval_policy="ask", approval_callback=approver,
                           on_denial="continue")
        result = agent.run(task="t")
        assert result.status == "completed"
        assert approver.count == 1
        assert decisions(agent) == [("Write", False, "deny_all", "user")] + [
            ("Write", False, "deny_all", "standing")] * 2
        assert not any((tmp_path / f"work/f{i}.txt").exists() for i in range(3))
        assert "Write" not in agent.tool_usage_counts and result.tool_calls == 0
        observations = tool_messages(agent)
        assert observations["call_1"] == "ERROR: denied by user"
        assert observations["call_2"].startswith("ERROR: denied by standing")

    def test_decision_objects_and_words(self, tmp_path):
        approver = CountingApprover(ApprovalDecision(True, "once", "alice"), "y", "no", False)
        agent = make_agent(tmp_path, writes(4) + ["done"], approval_policy="ask", approval_callback=approver,
                           on_denial="continue")
        agent.run(task="t")
        assert decisions(agent) == [("Write", True, "once", "alice"), ("Write", True, "once", "user"),
                                    ("Write", False, "once", "user"), ("Write", False, "once", "user")]

    def test_garbage_from_callback_fails_the_run_without_running_the_tool(self, tmp_path):
        agent = make_agent(tmp_path, writes(1) + ["done"], approval_policy="ask",
                           approval_callback=lambda request: "perhaps")
        result = agent.run(task="t")
        assert result.status == "failed"
        assert result.error.startswith(ApprovalCallbackError.__name__)
        assert not (tmp_path / "work/f0.txt").exists()


class TestStandingDecisionsSurviveRestore:
    class Killed(BaseException):
        """Stands in for the process dying (the loop does not catch BaseException)."""

    def _dying_provider(self, script, die_at_position):
        killed = self.Killed

        class Dying(ScriptedProvider):
            def chat(self, messages, tools=(), *, model, temperature=None):
                if self.position == die_at_position:
                    raise killed()
                return super().chat(messages, tools, model=model, temperature=temperature)

        return Dying(script)

    @pytest.mark.parametrize("answer,approved", [("all", True), ("deny_all", False)])
    def test_interrupted_run_resumed_in_new_agent_remembers(self, tmp_path, answer, approved):
        script = writes(4) + ["done"]
        first_approver = CountingApprover(answer)
        agent = make_agent(tmp_path, provider=self._dying_provider(script, 2), approval_policy="ask",
                           approval_callback=first_approver, on_denial="continue")
        with pytest.raises(self.Killed):
            agent.run(task="t")
        assert first_approver.count == 1

        second_approver = CountingApprover("deny" if approved else "approve")
        resumed = BaseAutonomousAgent.resume(agent.agent_id, config=agent.config, signature=TaskSignature(),
                                             provider=ScriptedProvider(script),
                                             approval_callback=second_approver)
        assert resumed.runtime.tracker.standing_decision("Write") == answer
        result = resumed.run(resume=True)
        assert result.status == "completed"
        assert second_approver.count == 0
        assert decisions(resumed) == [("Write", approved, answer, "user")] + [
            ("Write", approved, answer, "standing")] * 3
        files = [(tmp_path / f"work/f{i}.txt").exists() for i in range(4)]
        assert files == [approved] * 4

    def test_completed_run_restored_into_new_agent_keeps_standing_decision(self, tmp_path):
        approver = CountingApprover("all")
        agent = make_agent(tmp_path, writes(1) + ["one"], approval_policy="ask", approval_callback=approver)
        agent.run(task="first")
        later = CountingApprover("deny")
        # unique call ids in the second script (see the call-id reuse bug in test_agent_run.py)
        second = [call("Write", {"path": "later.txt", "content": "L"}, call_id="later_1"), "two"]
        restored = BaseAutonomousAgent.resume(agent.agent_id, config=agent.config, signature=TaskSignature(),
                                              provider=ScriptedProvider(second), approval_callback=later)
        result = restored.run(task="second")
        assert result.status == "completed"
        assert later.count == 0
        assert (tmp_path / "work/later.txt").read_text() == "L"
        assert decisions(restored)[-1] == ("Write", True, "all", "standing")


class TestPolicies:
    def test_allow_safe_runs_read_and_asks_for_write(self, tmp_path):
        approver = CountingApprover(True)
        script = [call("Read", {"path": "a.txt"}), call("Write", {"path": "a.txt", "content": "w"}),
                  call("Read", {"path": "a.txt"}), "done"]
        agent = make_agent(tmp_path, script, approval_policy="allow_safe", approval_callback=approver)
        assert agent.run(task="t").status == "completed"
        assert [r.tool_name for r in approver.requests] == ["Write"]
        assert decisions(agent) == [("Read", True, "once", "policy"), ("Write", True, "once", "user"),
                                    ("Read", True, "once", "policy")]
        assert tool_messages(agent)["call_3"] == "w"

    def test_allow_all_runs_everything_and_records_it(self, tmp_path):
        approver = CountingApprover(False)
        script = [calls(("Write", {"path": "a", "content": "1"}), ("Bash", {"command": "cat a"})), "done"]
        agent = make_agent(tmp_path, script, approval_policy="allow_all", approval_callback=approver)
        assert agent.run(task="t").status == "completed"
        assert approver.count == 0
        assert decisions(agent) == [("Write", True, "once", "policy"), ("Bash", True, "once", "policy")]
        assert '"stdout":"1"' in tool_messages(agent)["call_2"].replace(" ", "")

    def test_deny_policy_runs_nothing(self, tmp_path):
        approver = CountingApprover(True)
        script = [call("Read", {"path": "x"}), call("Write", {"path": "y", "content": "1"}), "done"]
        agent = make_agent(tmp_path, script, approval_policy="deny", approval_callback=approver,
                           on_denial="continue")
        assert agent.run(task="t").status == "completed"
        assert approver.count == 0
        assert decisions(agent) == [("Read", False, "once", "policy"), ("Write", False, "once", "policy")]
        assert not (tmp_path / "work/y").exists()
        assert tool_messages(agent)["call_1"] == "ERROR: denied by policy: policy deny"

    def test_ask_without_callback_denies_with_a_reason(self, tmp_path):
        agent = make_agent(tmp_path, writes(1) + ["done"], approval_policy="ask")
        result = agent.run(task="t")
        assert result.status == "denied"
        assert "no approver is configured" in result.error and result.error.startswith("Write: ")
        assert decisions(agent) == [("Write", False, "once", "policy")]
        assert not (tmp_path / "work/f0.txt").exists()

    def test_on_denial_stop(self, tmp_path):
        provider = ScriptedProvider(writes(2) + ["done"])
        approver = CountingApprover("deny")
        agent = make_agent(tmp_path, provider=provider, approval_policy="ask", approval_callback=approver)
        result = agent.run(task="t")
        assert result.status == "denied"
        assert provider.position == 1 and approver.count == 1
        assert agent.workflow_state["status"] == "denied"
        stored = fresh_manager(tmp_path).load_checkpoint(result.checkpoint_id)
        assert stored.status == "denied" and len(stored.approval_history) == 1
        assert not (tmp_path / "work/f0.txt").exists()
        # the denied call still has an observation (the conversation stays well formed)
        assert tool_messages(agent) == {"call_1": "ERROR: denied by user"}

    def test_on_denial_continue_tells_the_model(self, tmp_path):
        provider = ScriptedProvider(writes(2) + ["done anyway"])
        agent = make_agent(tmp_path, provider=provider, approval_policy="ask",
                           approval_callback=CountingApprover("deny", "approve"), on_denial="continue")
        result = agent.run(task="t")
        assert result.status == "completed" and result.outputs == {"result": "done anyway"}
        assert provider.requests[1][-1].role == "tool"
        assert provider.requests[1][-1].content == "ERROR: denied by user"
        assert not (tmp_path / "work/f0.txt").exists() and (tmp_path / "work/f1.txt").exists()

    def test_denied_reason_from_decision_reaches_the_model(self, tmp_path):
        approver = CountingApprover(ApprovalDecision(False, "once", "security-bot", "writes are frozen"))
        agent = make_agent(tmp_path, writes(1) + ["ok"], approval_policy="ask", approval_callback=approver,
                           on_denial="continue")
        agent.run(task="t")
        assert tool_messages(agent)["call_1"] == "ERROR: denied by security-bot: writes are frozen"


class TestSecretsAreRedacted:
    SECRET = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"

    def test_input_summary_has_no_secret(self, tmp_path):
        (tmp_path / "work").mkdir()
        registry = ToolRegistry(builtin_tools(tmp_path / "work"))

        @registry.tool(danger="dangerous")
        def http_get(url: str, api_key: str, headers: dict) -> str:
            """Fetch a URL."""
            return "200 OK"

        password = "hunter2-very-secret"
        script = [
            call("http_get", {"url": f"https://bob:{password}@example.com/x", "api_key": self.SECRET,
                              "headers": {"Authorization": f"Bearer {self.SECRET}"}}),
            call("Bash", {"command": f"curl -H 'Authorization: Bearer {self.SECRET}' --password {password} x"}),
            "done",
        ]
        approver = CountingApprover(True)
        agent = make_agent(tmp_path, script, tools=registry, approval_policy="ask", approval_callback=approver)
        assert agent.run(task="t").status == "completed"

        summaries = [r["input_summary"] for r in agent.approval_history]
        summaries += [r.input_summary for r in approver.requests]
        stored = load_all_checkpoints(fresh_manager(tmp_path), agent.agent_id)
        summaries += [r["input_summary"] for s in stored for r in s.approval_history]
        assert len(summaries) > 4
        for text in summaries:
            assert self.SECRET not in text and password not in text, text
            assert "[REDACTED]" in text
        assert "example.com" in summaries[0]  # still useful for the audit
