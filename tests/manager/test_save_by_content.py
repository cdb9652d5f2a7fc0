"""Saving continues the history by content: a state that extends the latest checkpoint is saved on it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest
from histories import grown, saved_history

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.hooks import HookManager
from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.errors import CheckpointConflictError, InvalidStateValueError
from kaizen.core.autonomy.state.manager import StateManager
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def chain_of(manager: SyncStateManager, agent_id: str) -> list[str]:
    """The agent's checkpoints oldest first, checking that each one's parent is the one before."""
    rows = list(reversed(manager.storage.list_rows(agent_id)))
    for parent, child in zip(rows, rows[1:]):
        assert child.parent_checkpoint_id == parent.checkpoint_id
    return [row.checkpoint_id for row in rows]


def test_capture_save_capture_save_with_an_external_manager(manager):
    agent = BaseAutonomousAgent(agent_id="app", state_manager=SyncStateManager(manager.storage))
    saved = []
    for n in range(4):
        agent.record_approval("Bash", True, "once", {"command": f"echo {n}"})
        agent.record_tool_usage("Bash")
        agent.step_number += 1
        saved.append(manager.save_checkpoint(agent._capture_state()))
    assert chain_of(manager, "app") == saved
    latest = SyncStateManager(manager.storage).load_checkpoint(saved[-1])
    assert len(latest.approval_history) == 4 and latest.tool_usage_counts == {"Bash": 4}


def test_hand_built_state_without_parent_continues_the_latest(manager):
    ids = saved_history(manager, "app", 2)
    restored = SyncStateManager(manager.storage).load_checkpoint(ids[-1])
    next_state = replace(grown(restored, 9), parent_checkpoint_id=None)
    manager.save_checkpoint(next_state)
    hand_built = AgentState(**{**next_state.__dict__, "checkpoint_id": "ckpt_by_hand", "parent_checkpoint_id": ids[0]})
    manager.save_checkpoint(hand_built)  # stale pointer: still continues by content
    assert chain_of(manager, "app") == [*ids, next_state.checkpoint_id, "ckpt_by_hand"]


def test_state_whose_parent_is_unknown_to_the_store_continues_by_content(manager, tmp_path):
    ids = saved_history(manager, "app", 2)
    state = replace(grown(manager.load_checkpoint(ids[-1]), 5), parent_checkpoint_id="ckpt_elsewhere")
    manager.save_checkpoint(state)
    assert chain_of(manager, "app") == [*ids, state.checkpoint_id]


def test_writers_that_diverged_from_one_checkpoint_conflict_and_nothing_is_overwritten(manager):
    ids = saved_history(manager, "app", 2)
    base = manager.load_checkpoint(ids[-1])
    first, second = grown(base, 1, "Read"), grown(base, 1, "Write")
    manager.save_checkpoint(replace(first, parent_checkpoint_id=ids[-1]))
    for pointer in (ids[-1], None):
        with pytest.raises(CheckpointConflictError, match="app"):
            SyncStateManager(manager.storage).save_checkpoint(
                replace(second, parent_checkpoint_id=pointer, checkpoint_id=f"ckpt_{pointer}"))
    assert chain_of(manager, "app") == [*ids, first.checkpoint_id]
    assert manager.load_checkpoint(first.checkpoint_id).approval_history[-1]["tool_name"] == "Read"


def test_shorter_history_never_continues_the_latest(manager):
    ids = saved_history(manager, "app", 3)
    older = manager.load_checkpoint(ids[0])
    with pytest.raises(CheckpointConflictError):
        manager.save_checkpoint(replace(older, checkpoint_id="ckpt_older", parent_checkpoint_id=None))
    assert chain_of(manager, "app") == ids


def test_resaving_a_stored_checkpoint_is_refused_not_overwritten(manager):
    ids = saved_history(manager, "app", 2)
    with pytest.raises(InvalidStateValueError, match="already saved"):
        manager.save_checkpoint(manager.load_checkpoint(ids[-1]))
    assert chain_of(manager, "app") == ids


def test_identical_states_racing_are_all_saved_in_one_chain(manager):
    ids = saved_history(manager, "app", 1)
    base = manager.load_checkpoint(ids[0])
    states = [replace(base, checkpoint_id=f"ckpt_race_{n}", step_number=2) for n in range(5)]
    errors: list[BaseException] = []

    def save(state: AgentState) -> None:
        try:
            manager.save_checkpoint(state)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(state,)) for state in states]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(chain_of(manager, "app")[1:]) == sorted(s.checkpoint_id for s in states)


def test_async_face_continues_by_content_too(url):
    async def scenario() -> list[str]:
        async with StateManager(url) as manager:
            state = grown(AgentState(agent_id="app"), 0)
            saved = [await manager.save_checkpoint(state)]
            for n in range(1, 3):
                state = replace(grown(state, n), parent_checkpoint_id=None)
                saved.append(await manager.save_checkpoint(state))
            assert chain_of(manager.sync, "app") == saved
            return saved

    assert len(asyncio.run(scenario())) == 3


def test_checkpoint_hooks_get_agent_status_and_iso_timestamp(manager):
    hooks = HookManager()
    seen: list[tuple[str, dict]] = []
    hooks.register("pre_checkpoint_save", lambda ctx: seen.append(("pre", dict(ctx.data))))
    hooks.register("post_checkpoint_save", lambda ctx: seen.append(("post", dict(ctx.data))))
    manager.hook_manager = hooks
    state = replace(grown(AgentState(agent_id="app", timestamp="2025-01-02T03:04:05"), 0), status="completed")
    manager.save_checkpoint(state)
    assert [event for event, _ in seen] == ["pre", "post"]
    for _, data in seen:
        assert data["agent_id"] == "app" and data["status"] == "completed"
        assert data["timestamp"] == "2025-01-02T03:04:05.000000+00:00"
        assert data["checkpoint_id"] == state.checkpoint_id
    assert seen[1][1]["new_records"] == 3


def test_writers_that_diverged_only_in_their_counts_conflict(manager):
    saved_history(manager, "app", 1)
    one = BaseAutonomousAgent(agent_id="app", state_manager=SyncStateManager(manager.storage)).resume()
    two = BaseAutonomousAgent(agent_id="app", state_manager=SyncStateManager(manager.storage)).resume()
    one.record_tool_usage("Bash")
    winner = one.save_checkpoint()
    two.record_tool_usage("Write")  # same histories as the winner, but its Bash count went back
    with pytest.raises(CheckpointConflictError):
        two.save_checkpoint()
    assert chain_of(manager, "app")[-1] == winner


def test_saves_without_new_history_entries_continue_too(manager):
    agent = BaseAutonomousAgent(agent_id="app", state_manager=SyncStateManager(manager.storage))
    saved = []
    for _ in range(3):
        agent.step_number += 1
        agent.record_tool_usage("Read")
        saved.append(manager.save_checkpoint(agent._capture_state()))
    assert chain_of(manager, "app") == saved
