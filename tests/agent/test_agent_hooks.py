"""Hooks in the loop: blocking, isolation of broken hooks, event order, context data."""

from __future__ import annotations

import time

from agent_testkit import EventRecorder, call, calls, make_agent, tool_messages

from kaizen.core.autonomy.hooks import HookEvent, HookManager, HookPriority, HookResult


class TestBlocking:
    def test_pre_tool_use_block_stops_the_tool_and_the_model_sees_why(self, tmp_path):
        hooks = HookManager()

        def no_rm(context):
            if "rm " in context.data.get("arguments", {}).get("command", ""):
                return HookResult.block("rm is not allowed here")
            return None

        hooks.register("pre_tool_use", no_rm, HookPriority.HIGH)
        (tmp_path / "work").mkdir()
        (tmp_path / "work/keep.txt").write_text("precious")
        script = [call("Bash", {"command": "rm keep.txt"}), call("Bash", {"command": "echo hi > ok.txt"}), "done"]
        agent = make_agent(tmp_path, script, hook_manager=hooks)
        assert agent.hooks is hooks
        result = agent.run(task="t")
        assert result.status == "completed"
        assert (tmp_path / "work/keep.txt").read_text() == "precious"
        assert (tmp_path / "work/ok.txt").exists()
        observations = tool_messages(agent)
        assert observations["call_1"] == "ERROR: blocked by a hook: rm is not allowed here"
        assert agent.tool_usage_counts == {"LLM": 3, "Bash": 1}
        assert result.tool_calls == 1
        assert agent.provider.requests[1][-1].content == observations["call_1"]

    def test_block_by_tool_name(self, tmp_path):
        agent = make_agent(tmp_path, [calls(("Write", {"path": "a", "content": "1"}), ("Read", {"path": "a"})),
                                      "done"])
        names = []

        def only_reads(context):
            name = context.data.get("tool_name")
            names.append(name)
            if name != "Read":
                return HookResult.block(f"{name} is read-only mode")
            return None

        agent.hooks.register(HookEvent.PRE_TOOL_USE, only_reads)
        agent.run(task="t")
        assert names == ["Write", "Read"]
        obs = tool_messages(agent)
        assert obs["call_1"] == "ERROR: blocked by a hook: Write is read-only mode"
        assert obs["call_2"].startswith("ERROR: FileNotFoundError")  # ran, but the file was never written


class TestBrokenHooksDoNotBreakTheRun:
    def test_raising_hooks_everywhere(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "1"}), "done"])
        fired = []

        def broken(context):
            fired.append(context.event_type.value)
            raise RuntimeError("hook bug")

        for event in HookEvent:
            agent.hooks.register(event, broken)
        result = agent.run(task="t")
        assert result.status == "completed"
        assert (tmp_path / "work/a.txt").read_text() == "1"
        assert {"pre_agent_loop", "pre_cycle", "pre_tool_use", "post_tool_use", "post_agent_loop",
                "pre_checkpoint_save"} <= set(fired)

    def test_hook_that_times_out(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "1"}), "done"])
        agent.hooks.register("pre_tool_use", lambda context: time.sleep(3.0), timeout=0.05)
        agent.hooks.register("pre_tool_use", lambda context: HookResult.ok({"after": True}))
        started = time.monotonic()
        result = agent.run(task="t")
        assert result.status == "completed"
        assert (tmp_path / "work/a.txt").exists()
        assert time.monotonic() - started < 2.5

    def test_hook_returning_garbage(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "1"}), "done"])
        agent.hooks.register("pre_tool_use", lambda context: "block please")
        assert agent.run(task="t").status == "completed"
        assert (tmp_path / "work/a.txt").exists()

    def test_async_hook_that_blocks(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "1"}), "done"])

        async def veto(context):
            return HookResult.block("async veto")

        agent.hooks.register("pre_tool_use", veto)
        agent.run(task="t")
        assert not (tmp_path / "work/a.txt").exists()
        assert tool_messages(agent)["call_1"] == "ERROR: blocked by a hook: async veto"


class TestEventOrder:
    def test_full_lifecycle_order(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "1"}), "done"])
        recorder = EventRecorder(agent.hooks)
        agent.run(task="t")
        assert recorder.names(exclude_checkpoints=True) == [
            "pre_agent_loop",
            "pre_cycle",
            "pre_model_call", "post_model_call",
            "pre_permission_check", "approval_decided", "post_permission_check",
            "pre_tool_use", "post_tool_use",
            "post_cycle",
            "pre_cycle",
            "pre_model_call", "post_model_call",
            "post_cycle",
            "post_agent_loop",
        ]
        names = recorder.names()
        # the inputs are saved before the loop starts, the final state before it ends
        assert names[:3] == ["pre_checkpoint_save", "post_checkpoint_save", "pre_agent_loop"]
        assert names[-1] == "post_agent_loop"
        # the write-ahead save comes between the permission check and the tool
        between = names[names.index("pre_tool_use"):names.index("post_tool_use")]
        assert between == ["pre_tool_use", "pre_checkpoint_save", "post_checkpoint_save"]
        # the final save happens before post_agent_loop
        assert names[-3:] == ["pre_checkpoint_save", "post_checkpoint_save", "post_agent_loop"]
        assert names.count("pre_checkpoint_save") == names.count("post_checkpoint_save")

    def test_event_data(self, tmp_path):
        agent = make_agent(tmp_path, [call("Write", {"path": "a.txt", "content": "1"}), "done"],
                           approval_policy="allow_all")
        recorder = EventRecorder(agent.hooks)
        result = agent.run(task="the task")
        data = {}
        for name, payload in recorder.events:
            data.setdefault(name, []).append(payload)
        assert data["pre_agent_loop"] == [{"run_id": result.run_id, "inputs": {"task": "the task"}, "model": "m",
                                           "provider": "scripted"}]
        assert data["pre_cycle"] == [{"cycle": 1}, {"cycle": 2}]
        assert data["post_cycle"] == [{"cycle": 1, "final": False}, {"cycle": 2, "final": True}]
        assert data["pre_tool_use"] == [{"tool_name": "Write", "arguments": {"path": "a.txt", "content": "1"},
                                         "call_id": "call_1"}]
        assert data["post_tool_use"] == [{"tool_name": "Write", "call_id": "call_1", "ok": True, "error": None,
                                          "estimated_cost_usd": 0.0}]
        assert data["approval_decided"] == [{"tool_name": "Write", "approved": True, "action": "once",
                                             "decided_by": "policy", "call_id": "call_1"}]
        assert data["post_agent_loop"] == [{"run_id": result.run_id, "status": "completed", "cycles": 2,
                                            "checkpoint_id": result.checkpoint_id, "model": "m",
                                            "estimated_cost_usd": 0.0, "error": None}]
        assert [d["cycle"] for d in data["pre_model_call"]] == [1, 2]
        first, second = data["post_model_call"]
        assert (first["model"], first["provider"], first["finish_reason"], first["tool_calls"]) == \
            ("m", "scripted", "tool_calls", 1)
        assert second["finish_reason"] == "stop" and second["tool_calls"] == 0
        usage = agent.token_usage["m"]
        assert first["input_tokens"] + second["input_tokens"] == usage["input_tokens"]
        assert first["output_tokens"] + second["output_tokens"] == usage["output_tokens"]

    def test_context_carries_agent_id(self, tmp_path):
        agent = make_agent(tmp_path, [call("Read", {"path": "x"}), "done"])
        ids = []
        agent.hooks.register("pre_tool_use", lambda context: ids.append((context.agent_id,
                                                                         context.data.get("tool_name"))))
        agent.run(task="t")
        assert ids == [(agent.agent_id, "Read")]

    def test_priorities_order_hooks_of_one_event(self, tmp_path):
        agent = make_agent(tmp_path, [call("Read", {"path": "x"}), "done"])
        order = []
        agent.hooks.register("pre_tool_use", lambda c: order.append("low"), HookPriority.LOW)
        agent.hooks.register("pre_tool_use", lambda c: order.append("critical"), HookPriority.CRITICAL)
        agent.hooks.register("pre_tool_use", lambda c: order.append("normal"))
        agent.run(task="t")
        assert order == ["critical", "normal", "low"]
