"""The agent's public surface: one RunState, a loop that needs only the LoopHost protocol, inputs
validated once, the async StateManager accepted, the original's names (current_step, config fields,
the kaizen_agents path), and the lease error that names the worker running an agent."""

from __future__ import annotations

import ast
import os
import socket
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import pytest
from agent_testkit import TaskSignature, call, fresh_manager, load_all_checkpoints, make_agent

from kaizen.agents import autonomous
from kaizen.agents.autonomous import (
    AgentLoop,
    AgentRunningError,
    AutonomousConfig,
    BaseAutonomousAgent,
    ConfigError,
    RunResult,
    RunState,
    WorkerInfo,
    default_worker_id,
)
from kaizen.agents.autonomous.prompts import PLANNING_INSTRUCTIONS
from kaizen.core.autonomy.hooks import HookManager
from kaizen.core.autonomy.permissions import ApprovalPolicy
from kaizen.core.autonomy.state import StateManager, StateTracker
from kaizen.core.autonomy.state.errors import InvalidStateTypeError, LeaseHeldError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers import ScriptedProvider
from kaizen.tools import ToolRegistry


class CountingSignature(TaskSignature):
    """Complete the task (counts how often its inputs are validated)."""

    def validate_inputs(self, values: dict[str, Any]) -> dict[str, Any]:
        type(self).validations += 1
        return super().validate_inputs(values)


CountingSignature.validations = 0  # type: ignore[attr-defined]


# --- one home for the run state; the loop needs only the LoopHost surface -----------------
def test_loop_and_runtime_do_not_import_the_agent_module():
    """No import cycle: the loop works on the LoopHost protocol, never on the agent's module."""
    package = Path(autonomous.__file__).parent
    for name in ("loop.py", "runtime.py", "result.py", "workers.py", "config.py"):
        tree = ast.parse((package / name).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "base" not in imported and "kaizen.agents.autonomous.base" not in imported, name


@dataclass
class MinimalHost:
    """Not an agent: only what the LoopHost protocol names."""

    state_manager: SyncStateManager
    provider: ScriptedProvider
    tools: ToolRegistry
    agent_id: str = "host-1"
    config: AutonomousConfig = field(default_factory=lambda: AutonomousConfig(llm_provider="scripted", model="m"))
    signature: Any = None
    runtime: RunState = field(default_factory=lambda: RunState(StateTracker()))
    hooks: HookManager = field(default_factory=HookManager)
    approvals: ApprovalPolicy = field(default_factory=lambda: ApprovalPolicy("allow_all"))
    saves: int = 0

    def save_checkpoint(self) -> str:
        state = self.runtime.capture(self.agent_id, self.config.model, for_save=True)
        self.runtime.last_checkpoint_id = self.state_manager.save_checkpoint(state)
        self.saves += 1
        return self.runtime.last_checkpoint_id


def test_loop_runs_on_any_loop_host():
    tools = ToolRegistry()

    @tools.tool(danger="read_only")
    def double(n: int) -> int:
        """Double a number."""
        return 2 * n

    manager = SyncStateManager("memory://")
    host = MinimalHost(manager, ScriptedProvider([call("double", {"n": 21}), "42"]), tools)
    loop = AgentLoop(host)
    loop.start({"task": "double 21"})
    result = loop.execute()
    assert isinstance(result, RunResult)
    assert (result.status, result.outputs, result.tool_calls) == ("completed", {"result": "42"}, 1)
    assert host.runtime.tracker.tool_usage_counts() == {"LLM": 2, "double": 1}
    assert manager.load_latest("host-1").checkpoint_id == host.runtime.last_checkpoint_id
    assert host.saves >= 3


def test_agent_state_lives_in_its_runtime(tmp_path):
    agent = make_agent(tmp_path, [call("Read", {"path": "missing.txt"}), "done"])
    result = agent.run(task="t")
    runtime = agent.runtime
    assert isinstance(runtime, RunState)
    assert agent.current_step == agent.step_number == runtime.step_number == result.cycles == 2
    assert agent.status == runtime.status == "completed"
    assert agent.token_usage == runtime.tracker.token_usage() and agent.token_usage["m"]["input_tokens"] > 0
    assert agent.last_checkpoint_id == runtime.last_checkpoint_id == result.checkpoint_id
    assert [a["call_id"] for a in runtime.completed_actions] == ["call_1"]
    assert agent.conversation_history[-1]["content"] == "done"
    agent.current_step = 7  # the original's attribute is writable too
    assert agent.step_number == 7 and agent._capture_state().step_number == 7


# --- inputs are validated once ------------------------------------------------------------
@pytest.mark.parametrize("resume", [False, True])
def test_run_validates_its_inputs_once(tmp_path, resume):
    CountingSignature.validations = 0  # type: ignore[attr-defined]
    agent = make_agent(tmp_path, ["done"], signature=CountingSignature())
    assert agent.run(resume=resume, task="t").status == "completed"
    assert CountingSignature.validations == 1  # type: ignore[attr-defined]


def test_resuming_a_run_does_not_validate_inputs_again(tmp_path):
    make_agent(tmp_path, [call("Read", {"path": "x"})], agent_id="v1", max_cycles=1).run(task="t")
    CountingSignature.validations = 0  # type: ignore[attr-defined]
    agent = make_agent(tmp_path, [call("Read", {"path": "x"}), "done"], signature=CountingSignature(),
                       agent_id="v1")
    assert agent.run(resume=True).status == "completed"
    assert CountingSignature.validations == 0  # type: ignore[attr-defined]


def test_bad_inputs_fail_before_the_store_is_opened(tmp_path):
    agent = make_agent(tmp_path, ["done"], signature=CountingSignature())
    with pytest.raises(ValueError, match="task"):
        agent.run(wrong="x")
    assert not (tmp_path / "state.db").exists()


# --- state_manager= takes either face -------------------------------------------------------
def test_async_state_manager_is_accepted_and_its_sync_core_used(tmp_path):
    async_face = StateManager(storage="memory://")
    agent = BaseAutonomousAgent(AutonomousConfig(llm_provider="scripted", model="m"), agent_id="a1",
                                state_manager=async_face, provider=ScriptedProvider(["done"]))
    assert agent.state_manager is async_face.sync
    result = agent.run(task="t")
    assert async_face.sync.load_latest("a1").checkpoint_id == result.checkpoint_id


def test_a_wrong_state_manager_is_refused():
    with pytest.raises(InvalidStateTypeError, match="state_manager must be a SyncStateManager or a StateManager"):
        BaseAutonomousAgent(state_manager="memory://")  # type: ignore[arg-type]


def test_tools_given_as_a_list_become_a_registry(tmp_path):
    registry = ToolRegistry()

    @registry.tool(danger="read_only")
    def ping() -> str:
        """Answer."""
        return "pong"

    config = AutonomousConfig(llm_provider="scripted", model="m", storage="memory://", approval_policy="allow_safe")
    agent = BaseAutonomousAgent(config, tools=list(registry), provider=ScriptedProvider([call("ping"), "ok"]))
    assert isinstance(agent.tools, ToolRegistry) and agent.tools.names() == ["ping"]
    assert agent.run().tool_calls == 1


# --- the original's names -----------------------------------------------------------------
def test_kaizen_agents_path_is_an_alias():
    from kaizen_agents.agents.autonomous import base as moved

    assert moved.BaseAutonomousAgent is BaseAutonomousAgent
    assert moved.AutonomousConfig is AutonomousConfig


def test_original_config_fields_are_accepted_and_checked():
    config = AutonomousConfig(planning_enabled=False, resume_from_checkpoint=True, checkpoint_interval_seconds=5.0)
    assert (config.planning_enabled, config.resume_from_checkpoint, config.checkpoint_interval_seconds) == (
        False, True, 5.0)
    assert AutonomousConfig().planning_enabled is True and AutonomousConfig().resume_from_checkpoint is False
    for bad in (0, -1, "60", True, float("nan")):
        with pytest.raises(ConfigError, match="checkpoint_interval_seconds"):
            AutonomousConfig(checkpoint_interval_seconds=bad)
    with pytest.raises(ConfigError, match="planning_enabled must be True or False"):
        AutonomousConfig(planning_enabled="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="resume_from_checkpoint must be True or False"):
        AutonomousConfig(resume_from_checkpoint=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("planning", [True, False])
def test_planning_enabled_asks_the_model_for_a_plan(tmp_path, planning):
    provider = ScriptedProvider(["done"])
    make_agent(tmp_path, provider=provider, planning_enabled=planning).run(task="t")
    system = provider.requests[0][0]
    assert system.role == "system"
    assert (PLANNING_INSTRUCTIONS in system.content) is planning


def test_checkpoint_interval_feeds_the_state_manager(tmp_path):
    agent = make_agent(tmp_path, checkpoint_interval_seconds=12.5)
    assert agent.state_manager.checkpoint_interval == 12.5


@pytest.mark.parametrize("interval, cycle_saves", [(1e-9, 3), (1e9, 0)])
def test_checkpoint_interval_saves_at_the_end_of_a_cycle(tmp_path, interval, cycle_saves):
    script = [call("Read", {"path": "x"}, f"c{i}") for i in range(3)] + ["done"]
    agent = make_agent(tmp_path, script, checkpoint_frequency=100, checkpoint_tool_calls=False,
                       checkpoint_interval_seconds=interval)
    agent.run(task="t")
    states = load_all_checkpoints(fresh_manager(tmp_path), agent.agent_id)
    # the start and the end of the run are always saved; the three tool cycles only by interval
    assert len(states) == 2 + cycle_saves


def test_resume_from_checkpoint_config_continues_the_latest_run(tmp_path):
    script = [call("Read", {"path": "x"}), "done"]
    first = make_agent(tmp_path, script, agent_id="r1", max_cycles=1).run(task="t")
    assert first.status == "max_cycles"
    again = make_agent(tmp_path, script, agent_id="r1", resume_from_checkpoint=True).run(task="ignored")
    assert (again.status, again.run_id, again.outputs) == ("completed", first.run_id, {"result": "done"})
    fresh = make_agent(tmp_path, ["new"], agent_id="r2", resume_from_checkpoint=True).run(task="t")
    assert fresh.status == "completed"  # nothing to resume: a new run starts


# --- leases name the worker that runs the agent -----------------------------------------------
def test_default_worker_id_names_this_process():
    worker = default_worker_id()
    assert worker == default_worker_id()  # stable for the life of the process
    info = WorkerInfo.parse(worker)
    assert (info.host, info.pid) == (socket.gethostname(), os.getpid()) and info.since.endswith("Z")


def test_a_second_worker_is_told_who_runs_the_agent(tmp_path):
    manager = SyncStateManager("memory://")
    holder = "build-7:31337@2025-03-01T10:00:00Z"
    agent = BaseAutonomousAgent(AutonomousConfig(llm_provider="scripted", model="m", worker_id=default_worker_id()),
                                agent_id="busy", state_manager=manager, provider=ScriptedProvider(["done"]))
    with manager.claim("busy", holder, ttl=30):
        with pytest.raises(AgentRunningError) as caught:
            agent.run(task="t")
    assert isinstance(caught.value, LeaseHeldError)
    assert str(caught.value).startswith(
        f"busy is running in worker {holder} (pid 31337 on host build-7) since 2025-03-01T10:00:00Z; ")
    assert caught.value.holder == holder and caught.value.worker.pid == 31337
    assert manager.load_latest("busy") is None  # nothing ran
    assert agent.run(task="t").status == "completed"


def test_a_custom_worker_id_is_named_as_it_is():
    manager = SyncStateManager("memory://")
    agent = BaseAutonomousAgent(AutonomousConfig(llm_provider="scripted", model="m", worker_id="me"),
                                agent_id="busy", state_manager=manager, provider=ScriptedProvider(["done"]))
    with manager.claim("busy", "nightly-job", ttl=30):
        with pytest.raises(AgentRunningError, match=r"^busy is running in worker nightly-job; .* lease runs out at"):
            agent.run(task="t")


# --- usage counts count executed calls ------------------------------------------------------
def test_usage_is_counted_after_a_call_runs_and_only_for_executed_calls(tmp_path):
    registry = ToolRegistry()
    during: list[dict[str, int]] = []
    holder: dict[str, BaseAutonomousAgent] = {}

    @registry.tool(danger="read_only")
    def probe() -> str:
        """Look at the counts while running."""
        during.append(holder["agent"].tool_usage_counts)
        return "seen"

    @registry.tool(danger="read_only")
    def explode() -> str:
        """Fail."""
        raise RuntimeError("kaboom")

    @registry.tool
    def erase() -> str:
        """Side effect; nobody approves it here."""
        return "erased"

    script = [call("probe"), call("explode"), call("erase"), "done"]
    agent = make_agent(tmp_path, script, tools=registry, approval_policy="allow_safe", on_denial="continue")
    holder["agent"] = agent
    result = agent.run(task="t")
    assert during == [{"LLM": 1}]  # not counted yet while it runs
    counts = agent.tool_usage_counts
    assert counts == {"LLM": 4, "probe": 1, "explode": 1}  # a raising tool ran; the denied one did not
    assert result.tool_calls == 2
