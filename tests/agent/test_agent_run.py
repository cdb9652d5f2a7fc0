"""The autonomous loop end to end: a scripted model, real tools in tmp_path, a real SQLite store.

Covers completing a run, input validation, tool errors, limits (max_cycles, budget),
cost estimates, provider failure, checkpoint policy and ``arun``.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from agent_testkit import (
    EventRecorder,
    ReportSignature,
    TaskSignature,
    call,
    calls,
    fresh_manager,
    load_all_checkpoints,
    make_agent,
    tool_messages,
)

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.errors import ConfigError
from kaizen.providers.scripted import ScriptedProvider
from kaizen.signatures import SignatureError
from kaizen.tools import ToolRegistry, builtin_tools

# --------------------------------------------------------------------------------------
# 1. a run completes
# --------------------------------------------------------------------------------------


class TestCompletedRun:
    SCRIPT = [
        call("Write", {"path": "notes/hello.txt", "content": "hello world"}),
        call("Read", {"path": "notes/hello.txt"}),
        call("Bash", {"command": "wc -c < notes/hello.txt > size.txt"}),
        "All done: wrote, read and measured the file.",
    ]

    def test_outputs_status_cycles_and_files(self, tmp_path):
        agent = make_agent(tmp_path, self.SCRIPT)
        result = agent.run(task="write a file")

        assert result.status == "completed"
        assert result.outputs == {"result": "All done: wrote, read and measured the file."}
        assert result["result"] == result.outputs["result"] and result["status"] == "completed"
        assert result.cycles == 4
        assert result.tool_calls == 3
        assert result.agent_id == agent.agent_id and result.run_id.startswith("run_")
        assert result.error is None
        work = tmp_path / "work"
        assert (work / "notes/hello.txt").read_text() == "hello world"
        assert (work / "size.txt").read_text().strip() == "11"
        # the model saw each tool's real output
        seen = tool_messages(agent)
        assert seen["call_1"] == "wrote 11 bytes to notes/hello.txt"
        assert seen["call_2"] == "hello world"
        assert json.loads(seen["call_3"])["exit_code"] == 0
        assert agent.status == "completed"
        assert agent.step_number == 4

    def test_usage_and_token_counts(self, tmp_path):
        script = [
            {**call("Write", {"path": "a.txt", "content": "x"}), "usage": {"input_tokens": 100, "output_tokens": 7}},
            {**calls(("Read", {"path": "a.txt"}), ("Read", {"path": "a.txt"})),
             "usage": {"input_tokens": 150, "output_tokens": 9}},
            {"content": "ok", "usage": {"input_tokens": 200, "output_tokens": 3}},
        ]
        agent = make_agent(tmp_path, script)
        agent.run(task="t")
        assert agent.tool_usage_counts == {"LLM": 3, "Write": 1, "Read": 2}
        assert agent._get_tool_usage_counts() == agent.tool_usage_counts
        assert agent._get_token_usage() == {"m": {"input_tokens": 450, "output_tokens": 19}}

    def test_estimated_token_usage_is_recorded_without_explicit_usage(self, tmp_path):
        provider = ScriptedProvider([call("Read", {"path": "missing.txt"}), "done"])
        agent = make_agent(tmp_path, provider=provider)
        agent.run(task="t")
        usage = agent._get_token_usage()["m"]
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0

    def test_several_outputs_are_parsed_from_json(self, tmp_path):
        agent = make_agent(tmp_path, ['{"summary": "fine", "score": 7}'], signature=ReportSignature())
        result = agent.run(task="report")
        assert result.status == "completed"
        assert result.outputs == {"summary": "fine", "score": 7}

    def test_several_outputs_from_fenced_json(self, tmp_path):
        answer = '```json\n{"summary": "fenced", "score": 3}\n```'
        agent = make_agent(tmp_path, [answer], signature=ReportSignature())
        assert agent.run(task="report").outputs == {"summary": "fenced", "score": 3}

    def test_several_outputs_non_json_answer_goes_to_first_field(self, tmp_path):
        agent = make_agent(tmp_path, ["not json at all"], signature=ReportSignature())
        assert agent.run(task="report").outputs == {"summary": "not json at all", "score": None}

    def test_prompts_carry_signature_and_inputs(self, tmp_path):
        provider = ScriptedProvider(['{"summary": "s", "score": 1}'])
        agent = make_agent(tmp_path, provider=provider, signature=ReportSignature())
        agent.run(task="count the widgets")
        system, user = provider.requests[0][:2]
        assert system.role == "system" and "Write a short report." in system.content
        assert "summary" in system.content and "score" in system.content and "JSON" in system.content
        assert user.role == "user" and "count the widgets" in user.content

    def test_workflow_state_running_then_completed(self, tmp_path):
        agent = make_agent(tmp_path, self.SCRIPT)
        seen: list[tuple[str, str | None, str | None]] = []

        def snapshot(context):
            state = agent._get_workflow_state()
            seen.append((context.event_type.value, state.get("status"), state.get("current_node")))

        for event in ("pre_cycle", "pre_tool_use", "post_tool_use", "post_cycle"):
            agent.hooks.register(event, snapshot)
        result = agent.run(task="t")

        assert all(status == "running" for _, status, _ in seen)
        nodes = [node for _, _, node in seen]
        # the model node of each cycle and the tool node while each tool runs
        assert "cycle 1: model" in nodes and "cycle 4: model" in nodes
        post_tool_nodes = [node for event, _, node in seen if event == "post_tool_use"]
        assert post_tool_nodes == ["cycle 1: Write", "cycle 2: Read", "cycle 3: Bash"]
        final = agent.workflow_state
        assert final["status"] == "completed"
        assert final["agent_run_id"] == result.run_id
        assert isinstance(final["execution_time"], float) and final["execution_time"] > 0
        assert "last_updated" in final
        # the stored final checkpoint says the same
        stored = fresh_manager(tmp_path).load_latest(agent.agent_id)
        assert stored.status == "completed"
        assert stored.workflow_state["status"] == "completed"
        assert stored.tool_usage_counts == agent.tool_usage_counts

    def test_run_returns_last_checkpoint_that_loads(self, tmp_path):
        agent = make_agent(tmp_path, self.SCRIPT)
        result = agent.run(task="t")
        assert result.checkpoint_id == agent.last_checkpoint_id
        state = fresh_manager(tmp_path).load_checkpoint(result.checkpoint_id)
        assert state.status == "completed" and state.metadata["run"]["outputs"] == result.outputs

    def test_resume_of_completed_run_returns_it_without_calling_the_model(self, tmp_path):
        agent = make_agent(tmp_path, self.SCRIPT)
        first = agent.run(task="t")
        provider = ScriptedProvider(["must not be asked"])
        again = BaseAutonomousAgent(agent.config, TaskSignature(), agent_id=agent.agent_id, provider=provider)
        result = again.run(resume=True)
        assert result.status == "completed" and result.outputs == first.outputs
        assert provider.position == 0

    def test_agent_defaults_to_builtin_tools_in_workdir(self, tmp_path):
        agent = make_agent(tmp_path, ["done"])
        assert agent.tools.names() == ["Read", "Write", "Bash"]
        assert agent.tools.get("Read").danger == "read_only"
        assert agent.tools.get("Write").danger == "side_effect"

    def test_second_run_reusing_call_ids_skips_tool_calls(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "first.txt", "content": "1"}), "one"])
        agent.run(task="first")
        agent._provider = ScriptedProvider([call("Write", {"path": "second.txt", "content": "2"}), "two"])
        result = agent.run(task="second")
        assert result.tool_calls == 1
        assert (tmp_path / "work/second.txt").read_text() == "2"
        # every assistant tool call of the second run got its observation
        assert sum(1 for m in agent.conversation_history if m["role"] == "tool") == 2


# --------------------------------------------------------------------------------------
# 2. inputs are validated against the signature before anything runs
# --------------------------------------------------------------------------------------


class TestInputValidation:
    @pytest.mark.parametrize("inputs", [{}, {"task": "x", "extra": 1}, {"task": 42}, {"wrong": "x"}])
    def test_bad_inputs_raise_and_nothing_runs(self, tmp_path, inputs):
        provider = ScriptedProvider([call("Write", {"path": "a.txt", "content": "x"}), "done"])
        agent = make_agent(tmp_path, provider=provider)
        with pytest.raises(SignatureError):
            agent.run(**inputs)
        assert provider.position == 0
        assert not (tmp_path / "work/a.txt").exists()
        assert agent.tool_usage_counts == {}
        assert agent.conversation_history == []
        assert fresh_manager(tmp_path).list_checkpoints(agent.agent_id) == []

    def test_no_signature_accepts_any_inputs(self, tmp_path):
        provider = ScriptedProvider(["free answer"])
        config = make_agent(tmp_path).config
        agent = BaseAutonomousAgent(config, None, provider=provider)
        result = agent.run(anything="goes", n=3)
        assert result.status == "completed" and result.outputs == {"result": "free answer"}
        assert "anything: goes" in provider.requests[0][1].content

    def test_config_rejects_bad_values(self, tmp_path):
        for bad in ({"max_cycles": 0}, {"approval_policy": "maybe"}, {"on_denial": "retry"},
                    {"budget_limit_usd": -1}, {"checkpoint_frequency": 0}, {"llm_provider": "nope"}):
            with pytest.raises(ConfigError):
                make_agent(tmp_path, **bad)


# --------------------------------------------------------------------------------------
# 5. tool errors become observations
# --------------------------------------------------------------------------------------


class TestToolErrors:
    def test_raising_tool_gives_error_observation_and_run_continues(self, tmp_path):
        registry = ToolRegistry()

        @registry.tool(danger="safe")
        def explode(reason: str) -> str:
            """Always fails."""
            raise RuntimeError(f"kaboom: {reason}")

        provider = ScriptedProvider([call("explode", {"reason": "disk full"}), "recovered"])
        agent = make_agent(tmp_path, provider=provider, tools=registry)
        result = agent.run(task="t")
        assert result.status == "completed" and result.outputs["result"] == "recovered"
        observation = tool_messages(agent)["call_1"]
        assert observation.startswith("ERROR: ") and "RuntimeError" in observation and "disk full" in observation
        # the model really received it in its next request
        assert provider.requests[1][-1].content == observation
        assert agent.tool_usage_counts == {"LLM": 2, "explode": 1}
        (action,) = agent.runtime.completed_actions
        assert action["ok"] is False and "kaboom" in action["error"]

    def test_unknown_tool_gives_error_observation(self, tmp_path):
        callback_calls = []
        provider = ScriptedProvider([call("Teleport", {"to": "mars"}), "ok"])
        agent = make_agent(tmp_path, provider=provider, approval_policy="ask",
                           approval_callback=lambda r: callback_calls.append(r) or True)
        result = agent.run(task="t")
        assert result.status == "completed"
        observation = tool_messages(agent)["call_1"]
        assert observation.startswith("ERROR: unknown tool 'Teleport'")
        assert "Read" in observation and "Write" in observation
        assert callback_calls == []  # nothing to approve
        assert "Teleport" not in agent.tool_usage_counts

    def test_bad_arguments_give_error_observation(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt"}), "ok"])
        assert agent.run(task="t").status == "completed"
        observation = tool_messages(agent)["call_1"]
        assert observation.startswith("ERROR: ToolArgumentError") and "content" in observation

    def test_path_outside_workdir_is_an_error_observation(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "../escape.txt", "content": "x"}), "ok"])
        assert agent.run(task="t").status == "completed"
        assert not (tmp_path / "escape.txt").exists()
        assert tool_messages(agent)["call_1"].startswith("ERROR: PathOutsideWorkdirError")


# --------------------------------------------------------------------------------------
# 6. limits and costs
# --------------------------------------------------------------------------------------


class TestLimits:
    def test_max_cycles(self, tmp_path):
        script = [call("Read", {"path": f"f{i}.txt"}) for i in range(5)] + ["never"]
        provider = ScriptedProvider(script)
        agent = make_agent(tmp_path, provider=provider, max_cycles=3)
        result = agent.run(task="t")
        assert result.status == "max_cycles"
        assert result.cycles == 3 and provider.position == 3
        assert "max_cycles=3" in result.error
        assert agent.tool_usage_counts["LLM"] == 3
        assert fresh_manager(tmp_path).load_latest(agent.agent_id).status == "max_cycles"
        assert agent.workflow_state["status"] == "max_cycles"

    def test_budget_stops_before_the_call_that_would_cross_it(self, tmp_path):
        script = [call("Bash", {"command": f"echo {i} >> log.txt"}) for i in range(10)] + ["never"]
        provider = ScriptedProvider(script)
        agent = make_agent(tmp_path, provider=provider, prices={"LLM": 0.01, "Bash": 0.001},
                           budget_limit_usd=0.035)
        result = agent.run(task="t")
        assert result.status == "budget_exceeded"
        # 3 cycles cost 3 * (0.01 + 0.001) = 0.033; a 4th model call would reach 0.043
        assert provider.position == 3
        assert result.budget_spent_usd == pytest.approx(0.033)
        assert result.budget_spent_usd <= 0.035
        assert "budget_limit_usd" in result.error
        assert (tmp_path / "work/log.txt").read_text().split() == ["0", "1", "2"]
        assert agent.estimate_cost().total == pytest.approx(result.budget_spent_usd)

    def test_budget_checks_tool_price_before_the_tool_runs(self, tmp_path):
        script = [call("Bash", {"command": "echo hi > out.txt"}), "never"]
        agent = make_agent(tmp_path, script, prices={"LLM": 0.01, "Bash": 1.0}, budget_limit_usd=0.5)
        result = agent.run(task="t")
        assert result.status == "budget_exceeded"
        assert not (tmp_path / "work/out.txt").exists()
        assert result.budget_spent_usd == pytest.approx(0.01)
        assert "Bash" not in agent.tool_usage_counts

    def test_zero_budget_never_calls_the_model(self, tmp_path):
        provider = ScriptedProvider(["x"])
        agent = make_agent(tmp_path, provider=provider, prices={"LLM": 0.01}, budget_limit_usd=0)
        assert agent.run(task="t").status == "budget_exceeded"
        assert provider.position == 0 and agent.budget_spent_usd == 0

    def test_token_budget_is_never_exceeded_with_large_tool_arguments(self, tmp_path):
        # Output tokens are free here, so only the *input* estimate matters. Cycle 1's answer is a
        # tool call with ~2000 tokens of arguments and no `content`; cycle 2 is sent (and billed for)
        # those arguments, but the pre-call estimate does not count them.
        big = "x" * 8000
        script = [call("Write", {"path": "big.txt", "content": big}), "done"]
        prices = {"models": {"m": {"input_per_million": 1000.0, "output_per_million": 0.0}}}
        agent = make_agent(tmp_path, script, prices=prices, budget_limit_usd=1.0)
        result = agent.run(task="t")
        assert result.budget_spent_usd <= 1.0, (result.status, result.budget_spent_usd)

    def test_estimate_cost_flat_per_call_prices(self, tmp_path):
        script = [call("Bash", {"command": "true"}), call("Bash", {"command": "true"}),
                  call("Read", {"path": "nope"}), "done"]
        agent = make_agent(tmp_path, script)
        agent.run(task="t")
        estimate = agent.estimate_cost({"LLM": 0.01, "Bash": 0.001})
        assert estimate.by_tool == {"LLM": pytest.approx(0.04), "Bash": pytest.approx(0.002)}
        assert estimate.by_model == {}
        assert estimate.total == pytest.approx(0.042) and float(estimate) == pytest.approx(0.042)

    def test_estimate_cost_per_token_prices(self, tmp_path):
        script = [{"content": "a", "usage": {"input_tokens": 1_000_000, "output_tokens": 500_000}},]
        agent = make_agent(tmp_path, script)
        agent.run(task="t")
        estimate = agent.estimate_cost({"models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}})
        assert estimate.by_model == {"m": pytest.approx(2.0)}
        assert estimate.total == pytest.approx(2.0)
        both = agent.estimate_cost({"tools": {"LLM": 0.5},
                                    "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}})
        assert both.total == pytest.approx(2.5)

    def test_estimate_cost_defaults_to_config_prices_and_matches_spend(self, tmp_path):
        prices = {"LLM": 0.01, "Write": 0.002,
                  "models": {"m": {"input_per_million": 3.0, "output_per_million": 6.0}}}
        agent = make_agent(tmp_path, [call("Write", {"path": "a", "content": "b"}), "done"], prices=prices)
        result = agent.run(task="t")
        assert agent.estimate_cost().total == pytest.approx(result.budget_spent_usd)
        assert result.budget_spent_usd > 0.022

    def test_estimate_cost_rejects_bad_prices(self, tmp_path):
        agent = make_agent(tmp_path)
        for bad in ({"LLM": -1}, {"models": {"m": {"per_token": 1}}}, {"LLM": "cheap"}, ["LLM"]):
            with pytest.raises(ConfigError):
                agent.estimate_cost(bad)


# --------------------------------------------------------------------------------------
# 7. provider failure
# --------------------------------------------------------------------------------------


class BrokenProvider:
    """A provider whose chat raises (a network outage)."""

    name = "broken"

    def __init__(self, inner: ScriptedProvider, fail_at: int) -> None:
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def chat(self, messages, tools=(), *, model, temperature=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError("model server unreachable")
        return self.inner.chat(messages, tools, model=model, temperature=temperature)


class TestProviderFailure:
    def test_raising_provider_fails_the_run_with_state_saved(self, tmp_path):
        provider = BrokenProvider(ScriptedProvider([call("Write", {"path": "a.txt", "content": "1"}), "x"]), 2)
        agent = make_agent(tmp_path, provider=provider)
        errors = EventRecorder(agent.hooks, only=("error",))
        result = agent.run(task="t")
        assert result.status == "failed"
        assert result.error == "ConnectionError: model server unreachable"
        state = agent.workflow_state
        assert state["status"] == "failed"
        assert state["error_message"] == "model server unreachable"
        assert state["error_type"] == "ConnectionError"
        assert errors.events == [("error", {"error": result.error, "error_type": "ConnectionError"})]
        stored = fresh_manager(tmp_path).load_checkpoint(result.checkpoint_id)
        assert stored.status == "failed"
        assert stored.workflow_state["error_type"] == "ConnectionError"
        assert stored.tool_usage_counts == {"LLM": 1, "Write": 1}
        assert (tmp_path / "work/a.txt").read_text() == "1"

    def test_exhausted_script_fails_the_run(self, tmp_path):
        agent = make_agent(tmp_path, [call("Read", {"path": "x"})])
        result = agent.run(task="t")
        assert result.status == "failed"
        assert agent.workflow_state["error_type"] == "ScriptExhaustedError"
        assert "script exhausted" in agent.workflow_state["error_message"]
        load_all_checkpoints(fresh_manager(tmp_path), agent.agent_id)

    def test_resume_after_fixing_the_script_continues(self, tmp_path):
        first = [call("Write", {"path": "a.txt", "content": "1"})]
        agent = make_agent(tmp_path, first)
        assert agent.run(task="t").status == "failed"
        fixed = ScriptedProvider(first + [call("Write", {"path": "b.txt", "content": "2"}), "finished"])
        resumed = BaseAutonomousAgent.resume(agent.agent_id, config=agent.config, signature=TaskSignature(),
                                             provider=fixed)
        result = resumed.run(resume=True)
        assert result.status == "completed" and result.outputs == {"result": "finished"}
        assert (tmp_path / "work/b.txt").read_text() == "2"
        assert resumed.tool_usage_counts == {"LLM": 3, "Write": 2}

    def test_resume_after_interruption_continues(self, tmp_path):
        """A process that dies mid-run (simulated in-process by a BaseException from the model
        call, which the loop does not catch) resumes from its latest checkpoint."""

        class Killed(BaseException):
            pass

        class Dying(BrokenProvider):
            def chat(self, messages, tools=(), *, model, temperature=None):
                if self.inner.position == self.fail_at - 1:
                    raise Killed()
                return self.inner.chat(messages, tools, model=model, temperature=temperature)

            @property
            def position(self):
                return self.inner.position

            def seek(self, position):
                self.inner.seek(position)

        script = [call("Write", {"path": "a.txt", "content": "1"}), call("Write", {"path": "b.txt", "content": "2"}),
                  "finished"]
        agent = make_agent(tmp_path, provider=Dying(ScriptedProvider(script), 2))
        with pytest.raises(Killed):
            agent.run(task="t")
        assert fresh_manager(tmp_path).load_latest(agent.agent_id).status == "running"
        provider = ScriptedProvider(script)
        resumed = BaseAutonomousAgent(agent.config, TaskSignature(), agent_id=agent.agent_id, provider=provider)
        result = resumed.run(resume=True)
        assert result.status == "completed" and result.outputs == {"result": "finished"}
        assert resumed.tool_usage_counts == {"LLM": 3, "Write": 2}
        assert [m["tool_call_id"] for m in resumed.conversation_history if m["role"] == "tool"] == [
            "call_1", "call_2"]

    def test_instance_resume_and_missing_checkpoint(self, tmp_path):
        class Killed(BaseException):
            pass

        script = [call("Write", {"path": "a.txt", "content": "1"}), "finished"]
        agent = make_agent(tmp_path, script)
        real_chat = agent.provider.chat

        def dying_chat(messages, tools=(), *, model, temperature=None):
            if agent.provider.position == 1:  # the process "dies" in cycle 2's model call
                raise Killed()
            return real_chat(messages, tools, model=model, temperature=temperature)

        agent.provider.chat = dying_chat
        with pytest.raises(Killed):
            agent.run(task="t")
        again = BaseAutonomousAgent(agent.config, TaskSignature(), agent_id=agent.agent_id,
                                    provider=ScriptedProvider(script))
        assert again.resume() is again
        assert again.metadata["run"]["inputs"] == {"task": "t"}
        result = again.run(resume=True)
        assert result.status == "completed" and (tmp_path / "work/a.txt").read_text() == "1"

        from kaizen.core.autonomy.state.errors import CheckpointNotFoundError
        stranger = BaseAutonomousAgent(agent.config, TaskSignature(), agent_id="never-ran")
        with pytest.raises(CheckpointNotFoundError):
            stranger.resume()
        with pytest.raises(CheckpointNotFoundError):
            BaseAutonomousAgent.resume("never-ran", config=agent.config)


# --------------------------------------------------------------------------------------
# 8. checkpoint policy
# --------------------------------------------------------------------------------------


def _tool_script(n: int) -> list:
    return [call("Bash", {"command": f"echo {i} >> log.txt"}) for i in range(n)] + ["done"]


class TestCheckpoints:
    def test_frequency_without_tool_call_saves(self, tmp_path):
        agent = make_agent(tmp_path, _tool_script(5), checkpoint_frequency=2, checkpoint_tool_calls=False)
        saves = EventRecorder(agent.hooks, only=("post_checkpoint_save",))
        result = agent.run(task="t")
        assert result.status == "completed"
        steps = [data["step_number"] for _, data in saves.events]
        assert steps == [0, 2, 4, 6]  # the start, every 2nd cycle, and the final save
        states = load_all_checkpoints(fresh_manager(tmp_path), agent.agent_id)
        assert sorted(s.step_number for s in states) == [0, 2, 4, 6]

    def test_frequency_one_saves_every_cycle(self, tmp_path):
        agent = make_agent(tmp_path, _tool_script(3), checkpoint_frequency=1, checkpoint_tool_calls=False)
        agent.run(task="t")
        states = load_all_checkpoints(fresh_manager(tmp_path), agent.agent_id)
        assert sorted(s.step_number for s in states) == [0, 1, 2, 3, 4]

    def test_tool_call_saves_happen_around_each_call(self, tmp_path):
        manager = fresh_manager(tmp_path)
        observed: list[dict] = []
        (tmp_path / "work").mkdir()
        registry = ToolRegistry(builtin_tools(tmp_path / "work"))
        holder = {}

        @registry.tool(danger="dangerous")
        def probe(n: int) -> str:
            """Checks what is durable while it runs."""
            latest = manager.load_latest(holder["agent"].agent_id)
            observed.append({
                "pending": [(p["call_id"], p["state"]) for p in latest.pending_actions],
                "done": [a["call_id"] for a in latest.completed_actions],
                "probe_count": latest.tool_usage_counts.get("probe", 0),
                "approvals": len(latest.approval_history),
            })
            return f"probe {n}"

        script = [call("probe", {"n": 1}), calls(("probe", {"n": 2}), ("probe", {"n": 3})), "done"]
        agent = make_agent(tmp_path, script, tools=registry, checkpoint_frequency=1, checkpoint_tool_calls=True)
        holder["agent"] = agent
        assert agent.run(task="t").status == "completed"
        assert observed == [
            # write-ahead: the approval is durable while the call runs; its usage count is
            # saved with its result (usage counts count executed calls)
            {"pending": [("call_1", "approved")], "done": [], "probe_count": 0, "approvals": 1},
            {"pending": [("call_2", "approved"), ("call_3", "planned")], "done": ["call_1"],
             "probe_count": 1, "approvals": 2},
            {"pending": [("call_3", "approved")], "done": ["call_1", "call_2"], "probe_count": 2, "approvals": 3},
        ]
        states = load_all_checkpoints(manager, agent.agent_id)
        # one "planned" save per model turn with calls, write-ahead + completed per call,
        # one per non-final cycle, one final
        assert len(states) == 1 + 2 + 3 * 2 + 2 + 1  # start, ...
        assert any(not s.pending_actions and [a["call_id"] for a in s.completed_actions] == ["call_1"]
                   for s in states)

    def test_checkpoint_chain_is_one_lineage_in_order(self, tmp_path):
        agent = make_agent(tmp_path, _tool_script(3))
        agent.run(task="t")
        manager = fresh_manager(tmp_path)
        metas = manager.list_checkpoints(agent.agent_id)
        by_id = {m.checkpoint_id: m for m in metas}
        head = metas[0]
        chain = [head.checkpoint_id]
        while by_id[chain[-1]].parent_checkpoint_id is not None:
            chain.append(by_id[chain[-1]].parent_checkpoint_id)
        assert set(chain) == set(by_id)


# --------------------------------------------------------------------------------------
# 10. async
# --------------------------------------------------------------------------------------


class TestAsync:
    def test_arun(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "async.txt", "content": "from arun"}), "async done"])

        async def main():
            return await agent.arun(task="t")

        result = asyncio.run(main())
        assert result.status == "completed" and result.outputs == {"result": "async done"}
        assert (tmp_path / "work/async.txt").read_text() == "from arun"

    def test_arun_with_async_hooks_and_async_approver(self, tmp_path):
        async def approver(request):
            await asyncio.sleep(0)
            return "approve"

        seen = []

        async def hook(context):
            seen.append(context.data.get("tool_name"))

        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "z"}), "ok"],
                           approval_policy="ask", approval_callback=approver)
        agent.hooks.register("pre_tool_use", hook)

        async def main():
            return await asyncio.gather(agent.arun(task="t"), asyncio.sleep(0.01))

        result, _ = asyncio.run(main())
        assert result.status == "completed"
        assert seen == ["Write"]
        assert agent.approval_history[0]["decided_by"] == "user"
