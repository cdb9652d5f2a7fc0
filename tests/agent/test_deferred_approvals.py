"""Deferred approvals in one process, on every store: the run waits, anyone decides, the resume
continues; refusals name the call and who decided it and change nothing; two reviewers on
threads never both win; deadlines deny fail-closed; all/deny_all stay standing; hooks see it."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agent_testkit import EventRecorder, TaskSignature

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.agents.autonomous.errors import ConfigError
from kaizen.core.autonomy.hooks import HookManager
from kaizen.core.autonomy.permissions import ApprovalNotPendingError, PendingApproval
from kaizen.core.autonomy.state.errors import InvalidStateValueError, LeaseHeldError, ReadOnlyStoreError, StorageError
from kaizen.core.autonomy.state.manager import StateManager
from kaizen.core.autonomy.state.storage import open_store
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers.scripted import ScriptedProvider
from kaizen.tools import ToolRegistry

SECRET = "sk-proj-abcdefghijklmnopqrstuvwx"


def turn(*calls: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {"content": "", "tool_calls": [{"id": cid, "name": name, "arguments": args} for cid, name, args in calls]}


class World:
    """A store, a tool log and agents built the same way each time (as separate processes would)."""

    def __init__(self, url: str, tmp_path: Path, script: list[Any], **config: Any) -> None:
        self.url = url
        self.log: list[str] = []
        self.script = script
        self.config = dict(llm_provider="scripted", model="m", storage=url, approval_policy="ask",
                           approval_mode="defer", planning_enabled=False)
        self.config.update(config)
        self.store = open_store(url) if url == "memory://" else None  # memory: one store shared by all
        self.hooks = HookManager()
        self.recorder = EventRecorder(self.hooks, only=("approval_requested", "approval_decided"))

    def registry(self) -> ToolRegistry:
        registry = ToolRegistry()

        @registry.tool(danger="side_effect")
        def deploy(target: str, api_key: str = "") -> str:
            """Deploy."""
            self.log.append(f"deploy {target}")
            return "ok"

        @registry.tool(danger="read_only")
        def look(what: str) -> str:
            """Look."""
            self.log.append(f"look {what}")
            return what

        return registry

    def manager(self) -> SyncStateManager:
        return SyncStateManager(self.store if self.store is not None else self.url)

    def agent(self, callback: Any = None, **config: Any) -> BaseAutonomousAgent:
        settings = {**self.config, **config}
        if self.store is not None:
            settings["storage"] = self.store
        return BaseAutonomousAgent(AutonomousConfig(**settings), TaskSignature(), agent_id="a1",
                                   provider=ScriptedProvider(self.script), tools=self.registry(),
                                   hook_manager=self.hooks, approval_callback=callback)


@pytest.fixture
def url(backend):
    return backend[1]


def deploy_world(url: str, tmp_path: Path, **config: Any) -> World:
    script = [turn(("c1", "deploy", {"target": "prod", "api_key": SECRET})), "done"]
    return World(url, tmp_path, script, **config)


def head(manager: SyncStateManager) -> tuple[str, int]:
    listed = manager.list_checkpoints("a1")
    return listed[0].checkpoint_id, len(listed)


class TestTheFlow:
    def test_waits_then_runs_once_after_approval(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        result = world.agent().run(task="t")
        assert result.status == "awaiting_approval" and result.error is None and world.log == []
        [pending] = result.pending_approvals
        assert (pending.agent_id, pending.call_id, pending.tool, pending.danger) == ("a1", "c1", "deploy",
                                                                                     "side_effect")
        assert SECRET not in pending.arguments_summary and "'target': 'prod'" in pending.arguments_summary
        assert pending.reason == "side_effect tool, policy ask" and pending.deadline is None
        assert pending.checkpoint_id == result.checkpoint_id and pending.run_id == result.run_id
        manager = world.manager()
        assert manager.pending_approvals() == [pending] == manager.pending_approvals("a1")
        assert manager.load_latest("a1").status == "awaiting_approval"

        record = manager.approve("a1", "c1", by="alice", reason="checked", via="web")
        assert (record["approved"], record["action"], record["decided_by"], record["via"], record["call_id"]) == (
            True, "once", "alice", "web", "c1")
        assert record["decided_at"] == record["timestamp"] and manager.pending_approvals() == []
        assert world.log == []  # nothing runs until a resume
        resumed = world.agent().run(resume=True)
        assert resumed.status == "completed" and resumed.outputs == {"result": "done"}
        assert world.log == ["deploy prod"] and resumed.tool_calls == 1
        assert world.agent().run(resume=True).status == "completed" and world.log == ["deploy prod"]
        [decision] = manager.load_latest("a1").approval_history
        assert decision["decided_by"] == "alice" and decision["reason"] == "checked"
        assert manager.verify_audit("a1").ok

    def test_resume_while_still_waiting_writes_nothing_and_asks_no_model(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        manager = world.manager()
        before = head(manager)
        again = world.agent().run(resume=True)
        assert again.status == "awaiting_approval" and [p.call_id for p in again.pending_approvals] == ["c1"]
        assert head(manager) == before and world.log == []

    def test_denied_call_is_told_to_the_model_and_stops_the_run(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        world.manager().deny("a1", "c1", by="bob", reason="not today")
        agent = world.agent()
        result = agent.run(resume=True)
        assert result.status == "denied" and world.log == []
        assert "denied by bob: not today" in agent.conversation_history[-1]["content"]

    def test_agent_methods_decide_too(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        agent = world.agent()
        agent.run(task="t")
        assert [p.call_id for p in agent.pending_approvals()] == ["c1"]
        assert agent.approve("c1", by="carol")["decided_by"] == "carol"
        assert agent.run(resume=True).status == "completed" and world.log == ["deploy prod"]

    def test_an_inline_resume_asks_its_callback_for_a_waiting_call(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        asked: list[str] = []
        agent = world.agent(callback=lambda request: asked.append(request.call_id) or True, approval_mode="inline")
        assert agent.run(resume=True).status == "completed"
        assert asked == ["c1"] and world.log == ["deploy prod"]

    def test_hooks_see_the_request_and_the_deferred_decision(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        [(name, requested)] = world.recorder.events
        assert name == "approval_requested" and requested["call_id"] == "c1" and requested["tool_name"] == "deploy"
        assert SECRET not in str(requested) and requested["reason"] == "side_effect tool, policy ask"
        world.manager().approve("a1", "c1", by="dan", via="cli")
        world.agent().run(resume=True)
        name, decided = world.recorder.events[-1]
        assert name == "approval_decided"
        assert (decided["approved"], decided["decided_by"], decided["via"], decided["deferred"]) == (
            True, "dan", "cli", True)

    def test_async_manager_face(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")

        async def decide() -> tuple[list[PendingApproval], dict[str, Any]]:
            face = StateManager.wrap(world.manager())
            pending = await face.pending_approvals("a1")
            return pending, await face.approve("a1", pending[0].call_id, by="eve")

        pending, record = asyncio.run(decide())
        assert [p.call_id for p in pending] == ["c1"] and record["decided_by"] == "eve"
        assert world.agent().run(resume=True).status == "completed"


class TestRefusals:
    def refused(self, manager: SyncStateManager, call: str = "c1", approve: bool = True, **kw: Any):
        before = head(manager)
        decide = manager.approve if approve else manager.deny
        with pytest.raises(ApprovalNotPendingError) as caught:
            decide("a1", call, **kw)
        assert head(manager) == before  # nothing written
        assert caught.value.call_id == call and caught.value.agent_id == "a1"
        return caught.value

    def test_already_decided_names_who_and_when(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        manager = world.manager()
        first = manager.deny("a1", "c1", by="alice", via="cli")
        error = self.refused(manager, by="bob")
        assert (error.decided_by, error.decided_at) == ("alice", first["decided_at"])
        assert f"already denied (once) by alice at {first['decided_at']} via cli" in str(error)

    def test_unknown_call_lists_what_waits(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        error = self.refused(world.manager(), call="nope")
        assert "no such call is waiting" in str(error) and "c1" in str(error)

    def test_moved_on_agent_still_names_the_decider(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        world.manager().approve("a1", "c1", by="alice")
        world.agent().run(resume=True)
        error = self.refused(world.manager(), approve=False, by="bob")
        assert error.decided_by == "alice" and "already approved" in str(error)

    def test_an_agent_without_checkpoints(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        with pytest.raises(ApprovalNotPendingError, match="no checkpoint"):
            world.manager().approve("a1", "c1")

    def test_bad_arguments_change_nothing(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        manager = world.manager()
        before = head(manager)
        with pytest.raises(InvalidStateValueError, match="via"):
            manager.approve("a1", "c1", via="timeout")
        with pytest.raises(InvalidStateValueError, match="action"):
            manager.approve("a1", "c1", action="deny_all")
        with pytest.raises(InvalidStateValueError, match="action"):
            manager.deny("a1", "c1", action="sometimes")
        assert head(manager) == before and [p.call_id for p in manager.pending_approvals()] == ["c1"]

    def test_refused_while_a_worker_runs_the_agent(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        manager = world.manager()
        with manager.claim("a1", "worker-7", ttl=30):
            before = head(manager)
            with pytest.raises(LeaseHeldError, match="worker-7"):
                manager.approve("a1", "c1")
            assert head(manager) == before
        assert manager.approve("a1", "c1")["approved"]

    def test_refused_while_a_resume_is_under_way(self, url, tmp_path):
        script = [turn(("c1", "deploy", {"target": "a"}), ("c2", "deploy", {"target": "b"})), "done"]
        world = World(url, tmp_path, script)
        world.agent().run(task="t")
        world.manager().approve("a1", "c1", by="alice")
        refusals: list[ApprovalNotPendingError] = []

        def decide_c2_meanwhile(context: Any) -> None:  # another reviewer, while c1 runs
            if context.data["tool_name"] == "deploy" and not refusals:
                with pytest.raises(ApprovalNotPendingError, match="the agent is running") as caught:
                    world.manager().approve("a1", "c2", by="bob")
                refusals.append(caught.value)

        agent = world.agent()
        agent.hooks.register("pre_tool_use", decide_c2_meanwhile)
        result = agent.run(resume=True)
        assert refusals and result.status == "awaiting_approval" and world.log == ["deploy a"]
        assert [p.call_id for p in result.pending_approvals] == ["c2"]
        world.manager().approve("a1", "c2", by="bob")  # once it waits again
        assert world.agent().run(resume=True).status == "completed" and world.log == ["deploy a", "deploy b"]

    def test_a_decision_written_while_a_resume_loads_is_picked_up(self, url, tmp_path):
        """The resume's first save ("running") conflicts with the decision written after it loaded:
        it loads again and continues with both decisions, nothing overwritten."""
        script = [turn(("c1", "deploy", {"target": "a"}), ("c2", "deploy", {"target": "b"})), "done"]
        world = World(url, tmp_path, script)
        world.agent().run(task="t")
        world.manager().approve("a1", "c1", by="alice")
        agent = world.agent()
        storage = agent.state_manager.storage
        real_write = storage.write
        raced: list[str] = []

        def decision_lands_first(plan: Any) -> None:
            if not raced:
                raced.append("bob")
                world.manager().approve("a1", "c2", by="bob")
            real_write(plan)

        storage.write = decision_lands_first  # type: ignore[method-assign]
        try:
            result = agent.run(resume=True)
        finally:
            del storage.write
        assert raced and result.status == "completed" and world.log == ["deploy a", "deploy b"]
        history = world.manager().load_latest("a1").approval_history
        assert [(r["call_id"], r["decided_by"]) for r in history] == [("c1", "alice"), ("c2", "bob")]

    def test_a_worker_that_only_polls_is_waited_for(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        manager = world.manager()
        lease = manager.claim("a1", "poller", ttl=30)
        threading.Timer(0.3, lease.release).start()  # a poll's lease: held briefly, then released
        assert manager.approve("a1", "c1", by="alice")["decided_by"] == "alice"
        assert world.agent(worker_id="poller").run(resume=True).status == "completed"

    def test_a_read_only_store_refuses(self, backend, tmp_path):
        name, url = backend
        if name == "memory":
            pytest.skip("a memory store cannot be reopened read-only")
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        reader = SyncStateManager(open_store(url, read_only=True))
        assert [p.call_id for p in reader.pending_approvals()] == ["c1"]
        with pytest.raises(ReadOnlyStoreError):
            reader.approve("a1", "c1")


class TestConcurrentDeciders:
    def test_threads_exactly_one_wins(self, url, tmp_path):
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        barrier = threading.Barrier(8)
        outcomes: list[Any] = []

        def reviewer(index: int) -> None:
            manager = world.manager()
            barrier.wait()
            decide = manager.approve if index % 2 == 0 else manager.deny
            try:
                outcomes.append(decide("a1", "c1", by=f"reviewer{index}"))
            except ApprovalNotPendingError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=reviewer, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [o for o in outcomes if isinstance(o, dict)]
        assert len(winners) == 1 and len(outcomes) == 8
        assert all(o.decided_by == winners[0]["decided_by"] for o in outcomes if not isinstance(o, dict))
        history = world.manager().load_latest("a1").approval_history
        assert [r["decided_by"] for r in history] == [winners[0]["decided_by"]]

    def test_a_head_that_moves_between_read_and_write_is_read_again(self, url, tmp_path):
        """The compare-and-set itself: a writer that takes no lease (an inline resume deciding the
        call with its callback) saves after this decision read the head and before it writes."""
        world = deploy_world(url, tmp_path)
        world.agent().run(task="t")
        manager = world.manager()
        real_write = manager.storage.write
        interleaved: list[Any] = []

        def write_after_a_rival(plan: Any) -> None:
            if not interleaved:  # (with memory://, the rival's own saves come through here too)
                interleaved.append(None)
                rival = world.agent(callback=lambda request: True, approval_mode="inline")
                interleaved[0] = rival.run(resume=True)
            real_write(plan)

        manager.storage.write = write_after_a_rival  # type: ignore[method-assign]
        try:
            with pytest.raises(ApprovalNotPendingError, match="moved on"):
                manager.deny("a1", "c1", by="me")
        finally:
            del manager.storage.write
        assert interleaved[0].status == "completed" and world.log == ["deploy prod"]
        history = manager.load_latest("a1").approval_history
        assert [(r["approved"], r["decided_by"]) for r in history] == [(True, "user")]
        assert head(manager)[0] == interleaved[0].checkpoint_id


class TestDeadlinesAndStanding:
    def test_a_call_past_its_deadline_is_denied_on_resume(self, url, tmp_path):
        world = deploy_world(url, tmp_path, approval_deadline_seconds=0.2)
        result = world.agent().run(task="t")
        [pending] = result.pending_approvals
        assert pending.deadline is not None and not pending.expired
        time.sleep(0.3)
        manager = world.manager()
        [late] = manager.pending_approvals()
        assert late.expired and late.to_dict()["expired"] is True
        with pytest.raises(ApprovalNotPendingError, match="deadline passed"):
            manager.approve("a1", "c1")
        resumed = world.agent().run(resume=True)
        assert resumed.status == "denied" and world.log == []
        [record] = manager.load_latest("a1").approval_history
        assert (record["approved"], record["decided_by"], record["via"], record["call_id"]) == (
            False, "deadline", "timeout", "c1")
        assert "deadline" in record["reason"] and manager.verify_audit("a1").ok
        assert manager.pending_approvals() == []

    def test_approve_all_stays_standing(self, url, tmp_path):
        script = [turn(("c1", "deploy", {"target": "a"})), turn(("c2", "deploy", {"target": "b"})), "done"]
        world = World(url, tmp_path, script)
        world.agent().run(task="t")
        world.manager().approve("a1", "c1", action="all", by="alice")
        result = world.agent().run(resume=True)
        assert result.status == "completed" and world.log == ["deploy a", "deploy b"]
        history = world.manager().load_latest("a1").approval_history
        assert [(r["action"], r["decided_by"]) for r in history] == [("all", "alice"), ("all", "standing")]

    def test_deny_all_stays_standing(self, url, tmp_path):
        script = [turn(("c1", "deploy", {"target": "a"})), turn(("c2", "deploy", {"target": "b"})), "done"]
        world = World(url, tmp_path, script, on_denial="continue")
        world.agent().run(task="t")
        world.manager().deny("a1", "c1", action="all", by="alice")  # "all" on deny means deny_all
        result = world.agent().run(resume=True)
        assert result.status == "completed" and world.log == []
        history = world.manager().load_latest("a1").approval_history
        assert [(r["action"], r["decided_by"]) for r in history] == [("deny_all", "alice"), ("deny_all", "standing")]

    def test_several_calls_of_one_turn(self, url, tmp_path):
        script = [turn(("c1", "deploy", {"target": "a"}), ("c2", "look", {"what": "x"}),
                       ("c3", "deploy", {"target": "b"})), "done"]
        world = World(url, tmp_path, script, approval_policy="allow_safe")
        result = world.agent().run(task="t")
        assert [p.call_id for p in result.pending_approvals] == ["c1", "c3"] and world.log == []
        manager = world.manager()
        manager.approve("a1", "c1", action="all", by="alice")
        assert manager.pending_approvals() == []  # c3 is covered by the standing "all"
        with pytest.raises(ApprovalNotPendingError, match="covers it"):
            manager.deny("a1", "c3")
        assert world.agent().run(resume=True).status == "completed"
        assert world.log == ["deploy a", "look x", "deploy b"]  # in the model's order

    def test_second_call_waits_after_the_first_is_decided(self, url, tmp_path):
        script = [turn(("c1", "deploy", {"target": "a"}), ("c2", "deploy", {"target": "b"})), "done"]
        world = World(url, tmp_path, script)
        world.agent().run(task="t")
        manager = world.manager()
        assert [p.call_id for p in manager.pending_approvals()] == ["c1", "c2"]
        manager.approve("a1", "c2", by="bob")  # decided out of order: fine
        manager.approve("a1", "c1", by="alice")
        assert world.agent().run(resume=True).status == "completed" and world.log == ["deploy a", "deploy b"]


def test_reason_is_redacted_and_bounded(tmp_path):
    world = deploy_world(f"sqlite:///{tmp_path}/s.db", tmp_path)
    world.agent().run(task="t")
    manager = world.manager()
    with pytest.raises(InvalidStateValueError, match="limit"):
        manager.approve("a1", "c1", reason="x" * 1001)
    record = manager.approve("a1", "c1", reason=f"ok, the key {SECRET} is a test one")
    assert SECRET not in record["reason"] and "[REDACTED]" in record["reason"]
    assert SECRET not in str(manager.load_latest("a1").approval_history)


@pytest.mark.parametrize("bad", [{"approval_mode": "later"}, {"approval_deadline_seconds": 0},
                                 {"approval_deadline_seconds": float("nan")}, {"approval_deadline_seconds": True}])
def test_config_refuses_bad_values(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        AutonomousConfig(**bad)


def test_a_plugin_backend_is_told_deferred_decisions_need_our_stores():
    class OwnBackend:  # the original's StorageBackend protocol: whole states, no atomic head update
        def __init__(self) -> None:
            self.states: dict[str, Any] = {}

        def save(self, state: Any) -> str:
            self.states[state.checkpoint_id] = state
            return state.checkpoint_id

        def load(self, checkpoint_id: str) -> Any:
            return self.states[checkpoint_id]

        def list_checkpoints(self, agent_id: str | None = None) -> list[Any]:
            return []

        def delete(self, checkpoint_id: str) -> None:
            self.states.pop(checkpoint_id, None)

        def exists(self, checkpoint_id: str) -> bool:
            return checkpoint_id in self.states

    manager = SyncStateManager(OwnBackend())
    with pytest.raises(StorageError, match="need one of kaizen's stores"):
        manager.approve("a1", "c1")
    with pytest.raises(StorageError, match="need one of kaizen's stores"):
        manager.pending_approvals()
