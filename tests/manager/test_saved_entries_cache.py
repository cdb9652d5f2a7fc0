"""After a save the manager keeps the history it wrote, so the next load reads nothing twice. What it
keeps must be exactly what was stored: an agent's own frozen records are kept as they are (one copy
shared with the live agent), anything a caller handed in is kept as read back from the bytes written,
so changing the caller's objects afterwards changes nothing loaded."""

from __future__ import annotations

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def test_an_agents_records_are_shared_with_what_the_manager_keeps(tmp_path):
    agent = BaseAutonomousAgent(AutonomousConfig(storage=f"sqlite:///{tmp_path / 'state.db'}"))
    try:
        for n in range(3):
            agent.record_approval("Bash", True, "once", {"command": f"ls {n}"})
            agent.save_checkpoint()
        live = list(agent._runtime.tracker.snapshot(view=True)["approval_history"])  # the live records
        loaded = agent.state_manager.load_latest(agent.agent_id)
        assert loaded is not None
        assert [record is kept for record, kept in zip(live, loaded.approval_history)] == [True] * 3
        fresh = SyncStateManager(f"sqlite:///{tmp_path / 'state.db'}")
        try:
            cold = fresh.load_latest(agent.agent_id)
        finally:
            fresh.close()
        assert cold is not None and cold.approval_history == loaded.approval_history
    finally:
        agent.state_manager.close()


def test_a_callers_entries_are_kept_as_stored_not_as_handed_in(tmp_path):
    manager = SyncStateManager(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        first = AgentState(agent_id="a1")
        manager.save_checkpoint(first)
        said = {"role": "user", "content": "hello", "meta": {"n": 1}}
        state = AgentState(agent_id="a1", step_number=1, parent_checkpoint_id=first.checkpoint_id,
                           conversation_history=[said])
        manager.save_checkpoint(state)
        said["content"] = "changed afterwards"
        said["meta"]["n"] = 2
        loaded = manager.load_checkpoint(state.checkpoint_id)  # served from what the manager kept
        assert loaded.conversation_history == [{"role": "user", "content": "hello", "meta": {"n": 1}}]
        assert loaded.conversation_history[0] is not said
    finally:
        manager.close()


def test_the_caches_evict_the_least_recently_used_entry():
    from kaizen.core.autonomy.state.history_reader import HistoryCache, KnownEntries
    from kaizen.core.autonomy.state.row_cache import RowCache

    rows = RowCache(storage=None, size=2)  # type: ignore[arg-type]
    made = {name: type("Row", (), {"checkpoint_id": name, "agent_id": "a"})() for name in "abc"}
    rows.remember(made["a"])
    rows.remember(made["b"])
    rows.remember(made["a"])  # used again: now the newest
    rows.remember(made["c"])
    assert list(rows._rows) == ["a", "c"] and rows.get("a") is made["a"]

    known = HistoryCache(size=2)
    known.put("l1", "s", KnownEntries(1, 0, [1]))
    known.put("l2", "s", KnownEntries(1, 0, [1]))
    known.put("l1", "s", KnownEntries(2, 0, [1, 2]))  # grown: now the newest
    known.put("l3", "s", KnownEntries(1, 0, [1]))
    assert known.get("l2", "s") is None and known.get("l1", "s").count == 2
    known.put("l1", "s", KnownEntries(1, 0, [1]))  # an older prefix never replaces a longer one
    assert known.get("l1", "s").count == 2
