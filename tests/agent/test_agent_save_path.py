"""The agent's save checks each value once, at capture: what it stores, what it refuses, and the
checkpoint hooks it calls, whenever they were registered."""

from __future__ import annotations

import dataclasses
import math

import pytest

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.hooks import HookEvent, HookManager
from kaizen.core.autonomy.hooks.errors import InvalidHookEventError
from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.errors import InvalidStateTypeError, InvalidStateValueError
from kaizen.core.autonomy.state.frozen import FrozenDict
from kaizen.core.autonomy.state.storage.base import STREAMS
from kaizen.core.autonomy.state.storage.rows import plan_save
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import CapturedState


def agent_at(tmp_path, name="a.db", **kwargs) -> BaseAutonomousAgent:
    return BaseAutonomousAgent(AutonomousConfig(storage=f"sqlite:///{tmp_path}/{name}"), **kwargs)


def busy(agent: BaseAutonomousAgent, n: int) -> None:
    """A step touching every part of the state a checkpoint holds."""
    agent.record_approval("Bash", n % 3 != 0, "once", {"command": f"ls {n}", "api_key": "sk-" + "x" * 24})
    agent.record_tool_usage("Bash")
    agent.update_workflow_state(current_node=f"node_{n}", node_results={"n": [n, n / 4, None, True]})
    agent.runtime.tracker.record_token_usage("m", 10 + n, 3)
    agent._append_conversation({"role": "assistant", "content": f"step {n}", "tool_calls": [{"id": f"c{n}"}]})
    agent._append_completed_action({"tool": "Bash", "args": {"n": n}})
    agent.memory_contents[f"k{n}"] = {"nested": [n, {"deep": "é"}]}
    agent.metadata["run"] = {"cycle": n, "inputs": {"task": "t"}}
    agent.pending_actions.append({"todo": n})
    agent.tool_results_cache[f"r{n}"] = "x" * n
    agent.budget_spent_usd += 0.25
    agent.step_number += 1


def as_plain(state: AgentState) -> AgentState:
    """The same state as a plain ``AgentState`` (lists, not views): a save checks all of it."""
    values = {f.name: getattr(state, f.name) for f in dataclasses.fields(AgentState)}
    values.update({stream: list(values[stream]) for stream in STREAMS})
    return AgentState(**values)


def stored(manager: SyncStateManager, agent_id: str) -> list[tuple]:
    """Every stored checkpoint (without ids that are random per store) and every record."""
    out = []
    for row in reversed(manager.storage.list_rows(agent_id)):
        out.append((row.step_number, row.timestamp, row.status, row.heads, row.body, row.size_bytes))
    for lineage in manager.storage.list_lineages(agent_id):
        for stream in STREAMS:
            out.extend((r.stream, r.seq, r.data, r.hash) for r in
                       manager.storage.read_records(lineage.lineage_id, stream, 0, 2**62))
    return out


def test_a_captured_state_plans_exactly_the_rows_a_fully_checked_save_plans(tmp_path):
    agent = agent_at(tmp_path)
    parent = None
    for n in range(4):
        busy(agent, n)
        captured = agent._capture_state(_for_save=True)
        assert type(captured) is CapturedState
        quick, checked = plan_save(captured, parent, "lin_same"), plan_save(as_plain(captured), parent, "lin_same")
        assert (quick.row, quick.records, quick.expected_head) == (checked.row, checked.records, checked.expected_head)
        assert len(quick.records) == 3  # one approval, one message, one completed action
        agent.state_manager.save_checkpoint(captured)
        agent.runtime.last_checkpoint_id = captured.checkpoint_id
        parent = quick.row


def test_the_agents_saves_store_the_same_rows_as_fully_checked_saves(tmp_path):
    agent = agent_at(tmp_path)
    other = SyncStateManager(f"sqlite:///{tmp_path}/other.db")
    for n in range(5):
        busy(agent, n)
        captured = agent._capture_state(_for_save=True)
        agent.state_manager.save_checkpoint(captured)
        agent.runtime.last_checkpoint_id = captured.checkpoint_id
        other.save_checkpoint(as_plain(captured))
    mine = stored(agent.state_manager, agent.agent_id)
    assert mine == stored(other, agent.agent_id)
    assert len(mine) == 5 + 15
    loaded = SyncStateManager(f"sqlite:///{tmp_path}/a.db").load_latest(agent.agent_id)
    assert loaded is not None and loaded.approval_history == agent.approval_history
    assert loaded.memory_contents == agent.memory_contents and loaded.workflow_state == agent.workflow_state
    assert "sk-xxxx" not in str(loaded.approval_history) and "[REDACTED]" in str(loaded.approval_history)


@pytest.mark.parametrize(("change", "error", "field"), [
    (lambda a: a.metadata.update(x={1, 2}), InvalidStateTypeError, "metadata['x']"),
    (lambda a: a.memory_contents.update(n=math.nan), InvalidStateValueError, "memory_contents['n']"),
    (lambda a: a.tool_results_cache.update({3: "int key"}), InvalidStateTypeError, "tool_results_cache"),
    (lambda a: setattr(a, "pending_actions", "not a list"), InvalidStateTypeError, "pending_actions"),
    (lambda a: setattr(a, "status", "bogus"), InvalidStateValueError, "status"),
    (lambda a: setattr(a, "step_number", -1), InvalidStateValueError, "step_number"),
    (lambda a: setattr(a, "budget_spent_usd", math.inf), InvalidStateValueError, "budget_spent_usd"),
    (lambda a: setattr(a, "budget_spent_usd", math.nan), InvalidStateValueError, "budget_spent_usd"),
    (lambda a: setattr(a, "budget_spent_usd", -0.5), InvalidStateValueError, "budget_spent_usd"),
    (lambda a: setattr(a, "budget_spent_usd", "1.0"), InvalidStateTypeError, "budget_spent_usd"),
    (lambda a: setattr(a, "step_number", True), InvalidStateTypeError, "step_number"),
    (lambda a: setattr(a, "step_number", 2.0), InvalidStateTypeError, "step_number"),
    (lambda a: setattr(a, "status", None), InvalidStateValueError, "status"),
    (lambda a: a.runtime.conversation.append({"role": "user", "content": object()}), InvalidStateTypeError,
     "conversation_history"),
    (lambda a: a.runtime.completed_actions.append(FrozenDict({"x": {1}})), InvalidStateTypeError,
     "completed_actions[1]"),
])
def test_a_bad_value_put_in_by_hand_is_refused_at_save_naming_it_and_nothing_is_written(
        tmp_path, change, error, field):
    agent = agent_at(tmp_path)
    busy(agent, 0)
    first = agent.save_checkpoint()
    change(agent)
    with pytest.raises(error, match="cannot save checkpoint") as refused:
        agent.save_checkpoint()
    assert field in str(refused.value)
    assert agent.last_checkpoint_id == first
    assert agent.state_manager.storage.latest_checkpoint(agent.agent_id).checkpoint_id == first


def test_bad_tracking_input_is_still_refused_where_it_is_given(tmp_path):
    agent = agent_at(tmp_path)
    with pytest.raises(InvalidStateTypeError, match="approved"):
        agent.record_approval("Bash", "yes", "once", {})
    with pytest.raises(InvalidStateValueError, match="increment"):
        agent.record_tool_usage("Bash", 0)
    with pytest.raises(InvalidStateTypeError, match="workflow_state"):
        agent.update_workflow_state(extra={1, 2})
    agent.save_checkpoint()
    assert agent.approval_history == [] and agent.tool_usage_counts == {}


def test_checkpoint_hooks_registered_after_saves_began_are_called_and_removed_ones_are_not(tmp_path):
    hooks = HookManager()
    agent = agent_at(tmp_path, hook_manager=hooks)
    busy(agent, 0)
    agent.save_checkpoint()  # no hook yet
    seen: list[tuple[str, str, int]] = []
    handles = [hooks.register(event, lambda ctx: seen.append((ctx.event_type.value, ctx.data["checkpoint_id"],
                                                              ctx.data["step_number"])))
               for event in (HookEvent.PRE_CHECKPOINT_SAVE, HookEvent.POST_CHECKPOINT_SAVE)]
    busy(agent, 1)
    second = agent.save_checkpoint()
    assert seen == [("pre_checkpoint_save", second, 2), ("post_checkpoint_save", second, 2)]
    for handle in handles:
        hooks.unregister(handle)
    busy(agent, 2)
    agent.save_checkpoint()
    assert len(seen) == 2


def test_asking_which_hooks_an_event_has_still_checks_the_event_name():
    hooks = HookManager()
    assert hooks.registered("pre_checkpoint_save") == [] == hooks.registered(HookEvent.POST_CHECKPOINT_SAVE)
    hooks.register("PRE_CHECKPOINT_SAVE", lambda ctx: None, name="audit")
    assert hooks.registered("pre_checkpoint_save") == ["audit"] == hooks.registered(HookEvent.PRE_CHECKPOINT_SAVE)
    with pytest.raises(InvalidHookEventError):
        hooks.registered("pre_checkpoint_sav")


def test_a_capture_is_the_state_the_dataclass_would_make_field_for_field(tmp_path):
    agent = agent_at(tmp_path)
    busy(agent, 1)
    captured = agent._capture_state(_for_save=True)
    values = {f.name: getattr(captured, f.name) for f in dataclasses.fields(AgentState)}
    assert list(vars(captured)) == [*values, "stamp"]  # every field, in declaration order
    assert captured == CapturedState(**values) and captured.stamp[0] is captured.timestamp
    for name in ("active_specialists", "specialist_invocations", "control_protocol_state", "registered_hooks",
                 "hook_event_history"):
        assert getattr(captured, name) == getattr(AgentState(), name)
        assert getattr(captured, name) is not getattr(agent._capture_state(_for_save=True), name)
    with pytest.raises(TypeError):
        CapturedState.of({"agent_id": "a"}, captured.stamp)


def test_a_captures_body_holds_every_body_field():
    from kaizen.core.autonomy.state.storage.rows import BODY_FIELDS, _checked_capture

    agent = BaseAutonomousAgent(AutonomousConfig(storage="memory://"))
    busy(agent, 2)
    assert sorted(_checked_capture(agent._capture_state(_for_save=True))[3]) == sorted(BODY_FIELDS)
