"""The original's async StateManager: awaited calls on every backend, its defaults, and a sync
face whose results are never coroutines."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from kaizen.core.autonomy.state import (
    AgentState, CheckpointConflictError, CheckpointNotFoundError, StateManager, StateSnapshot, SyncStateManager,
)


def run(coro):
    return asyncio.run(coro)


def test_defaults_are_the_originals(tmp_path):
    manager = StateManager(storage=f"sqlite:///{tmp_path}/s.db")
    assert (manager.checkpoint_frequency, manager.checkpoint_interval, manager.retention_count) == (10, 60.0, 100)
    assert SyncStateManager(f"sqlite:///{tmp_path}/s.db").retention_count is None  # the sync core keeps all
    assert StateManager(storage="memory://", retention_count=None).retention_count is None
    assert StateManager(storage="memory://", keep_last=7).retention_count == 7


def test_settings_can_be_changed_but_not_to_nonsense():
    manager = StateManager(storage="memory://")
    manager.retention_count = 3
    manager.checkpoint_frequency = 2
    assert manager.sync.retention_count == 3 and manager.sync.checkpoint_frequency == 2
    for name, bad in (("retention_count", 0), ("checkpoint_frequency", "5"), ("checkpoint_interval", -1)):
        with pytest.raises(ValueError, match=name):
            setattr(manager, name, bad)


def test_async_round_trip_on_every_backend(backend):
    _, url = backend

    async def main():
        manager = StateManager(storage=url)
        first = AgentState("ckpt_first", "a1", step_number=1,
                           conversation_history=[{"role": "user", "content": "hi"}])
        assert await manager.save_checkpoint(first) == "ckpt_first"
        second = AgentState("ckpt_second", "a1", step_number=2, parent_checkpoint_id="ckpt_first",
                            conversation_history=[*first.conversation_history, {"role": "assistant", "content": "yo"}])
        await manager.save_checkpoint(second, force=True)
        loaded = await manager.load_checkpoint("ckpt_first")
        latest = await manager.resume_from_latest("a1")
        listed = await manager.list_checkpoints(agent_id="a1")
        everyone = await manager.list_checkpoints()
        fork = await manager.fork_from_checkpoint("ckpt_first")
        tree = await manager.get_checkpoint_tree("a1")
        with pytest.raises(FileNotFoundError):
            await manager.load_checkpoint("ckpt_missing")
        await manager.aclose()
        return loaded, latest, listed, everyone, fork, tree

    loaded, latest, listed, everyone, fork, tree = run(main())
    assert loaded.step_number == 1 and len(loaded.conversation_history) == 1
    assert latest.checkpoint_id == "ckpt_second" and len(latest.conversation_history) == 2
    assert [m.checkpoint_id for m in listed] == ["ckpt_second", "ckpt_first"]
    assert {m.checkpoint_id for m in everyone} >= {"ckpt_first", "ckpt_second"}
    assert fork.parent_checkpoint_id == "ckpt_first" and fork.checkpoint_id not in ("ckpt_first", "ckpt_second")
    assert "ckpt_second" in tree["ckpt_first"] and fork.checkpoint_id in tree["ckpt_first"]


def test_sync_face_never_returns_coroutines(tmp_path):
    manager = SyncStateManager(f"sqlite:///{tmp_path}/s.db")
    state = AgentState("ckpt_s1", "sync-agent")
    results = [manager.save_checkpoint(state), manager.load_checkpoint("ckpt_s1"),
               manager.list_checkpoints("sync-agent"), manager.resume_from_latest("sync-agent"),
               manager.get_checkpoint_tree("sync-agent"), manager.cleanup_old_checkpoints("sync-agent")]
    assert not any(inspect.isawaitable(result) for result in results)


def test_cleanup_keeps_the_newest_retention_count():
    async def main():
        manager = StateManager(storage="memory://", retention_count=2)
        parent = None
        for step in range(5):
            state = AgentState(f"ckpt_r{step}", "keeper", step_number=step, parent_checkpoint_id=parent)
            parent = await manager.save_checkpoint(state)
        await manager.cleanup_old_checkpoints("keeper")
        return [m.checkpoint_id for m in await manager.list_checkpoints("keeper")]

    assert run(main()) == ["ckpt_r4", "ckpt_r3"]


def test_should_checkpoint_counts_steps_and_seconds_since_the_last_save():
    async def main():
        manager = StateManager(storage="memory://", checkpoint_frequency=3, checkpoint_interval=100.0)
        assert manager.should_checkpoint("pace", 0, time.time())  # never saved: yes
        await manager.save_checkpoint(AgentState("ckpt_p0", "pace", step_number=4))
        now = time.time()
        return [manager.should_checkpoint("pace", 5, now), manager.should_checkpoint("pace", 7, now),
                manager.should_checkpoint("pace", 5, now + 101)]

    assert run(main()) == [False, True, True]


def test_snapshot_is_a_deep_copy_with_a_reason():
    manager = StateManager(storage="memory://")
    state = AgentState("ckpt_snap", "a1", conversation_history=[{"role": "user", "content": "x"}])
    snapshot = manager.create_snapshot(state, reason="debug")
    state.conversation_history.append({"role": "assistant", "content": "y"})
    assert isinstance(snapshot, StateSnapshot) and snapshot.snapshot_reason == "debug"
    assert len(snapshot.state.conversation_history) == 1
    assert snapshot.get_summary()["conversation_turns"] == 1


def test_missing_checkpoint_error_is_both_ours_and_file_not_found():
    with pytest.raises(CheckpointNotFoundError) as caught:
        SyncStateManager("memory://").load_checkpoint("ckpt_nowhere")
    assert isinstance(caught.value, FileNotFoundError) and "ckpt_nowhere" in str(caught.value)


def test_saving_one_state_object_again_and_again_keeps_every_checkpoint(backend):
    """The original's loop: one AgentState, changed and saved each step. Each save is a new
    checkpoint on top of the last; none is overwritten."""
    _, url = backend

    async def main():
        manager = StateManager(storage=url)
        state = AgentState(agent_id="looper")
        returned = []
        for step in range(3):
            state.step_number = step
            state.approval_history.append({"tool_name": "Bash", "approved": True, "action": "once",
                                           "input_summary": f"step {step}", "timestamp": "2026-01-01T00:00:00+00:00"})
            returned.append(await manager.save_checkpoint(state))
            assert state.checkpoint_id == returned[-1]
        first = await manager.load_checkpoint(returned[0])
        latest = await manager.resume_from_latest("looper")
        parents = [(await manager.load_checkpoint(cid)).parent_checkpoint_id for cid in returned]
        await manager.aclose()
        return returned, first, latest, parents

    returned, first, latest, parents = run(main())
    assert len(set(returned)) == 3
    assert parents == [None, returned[0], returned[1]]
    assert (first.step_number, len(first.approval_history)) == (0, 1)
    assert (latest.checkpoint_id, latest.step_number, len(latest.approval_history)) == (returned[-1], 2, 3)


def test_a_resave_that_conflicts_leaves_the_state_object_as_it_was(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"

    async def main():
        manager = StateManager(storage=url)
        state = AgentState(agent_id="racer", step_number=1)
        saved_id = await manager.save_checkpoint(state)
        other = await StateManager(storage=url).resume_from_latest("racer")
        other.checkpoint_id, other.parent_checkpoint_id, other.step_number = "ckpt_other000001", saved_id, 5
        other.tool_usage_counts["Write"] = 1
        await StateManager(storage=url).save_checkpoint(other)
        state.tool_usage_counts["Read"] = 1  # diverges from what the other writer saved
        with pytest.raises(CheckpointConflictError):
            await manager.save_checkpoint(state)
        await manager.aclose()
        return state, saved_id

    state, saved_id = run(main())
    assert (state.checkpoint_id, state.parent_checkpoint_id) == (saved_id, None)
