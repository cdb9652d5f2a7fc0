"""Loading a history longer than one read (``history_reader.CHUNK``): whole, in order, across forks,
and never half-loaded when any part of it was damaged."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
from histories import damage_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.errors import CheckpointCorruptError, DamagedCheckpointError
from kaizen.core.autonomy.state import history_reader
from kaizen.core.autonomy.state.history_reader import CHUNK
from kaizen.core.autonomy.state.ids import new_checkpoint_id
from kaizen.core.autonomy.state.records import make_approval_record
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

LONG = 2 * CHUNK + 37  # three reads, the last one partial


def approvals(first: int, count: int) -> list:
    return [make_approval_record("Bash", n % 2 == 0, "once", {"n": n}, summary_limit=64)
            for n in range(first, first + count)]


def grown_by(state: AgentState, first: int, count: int) -> AgentState:
    return replace(state, checkpoint_id=new_checkpoint_id(), parent_checkpoint_id=state.checkpoint_id,
                   step_number=state.step_number + 1,
                   approval_history=[*state.approval_history, *approvals(first, count)],
                   conversation_history=[*state.conversation_history,
                                         *({"role": "user", "content": f"m{n}"} for n in range(first, first + count))])


def long_agent(manager: SyncStateManager, agent_id: str = "long") -> list[AgentState]:
    """Two checkpoints: LONG entries per stream, then 3 more."""
    first = grown_by(replace(AgentState(agent_id=agent_id), checkpoint_id="none"), 0, LONG)
    first = replace(first, parent_checkpoint_id=None)
    manager.save_checkpoint(first)
    second = grown_by(first, LONG, 3)
    manager.save_checkpoint(second)
    return [first, second]


def test_a_history_longer_than_one_read_loads_whole_and_in_order(manager):
    states = long_agent(manager)
    loaded = SyncStateManager(manager.storage).load_latest("long")
    assert loaded.approval_history == states[-1].approval_history
    assert [entry["content"] for entry in loaded.conversation_history] == [f"m{n}" for n in range(LONG + 3)]
    older = SyncStateManager(manager.storage).load_checkpoint(states[0].checkpoint_id)
    assert older.approval_history == states[0].approval_history


def test_a_fork_whose_base_ends_inside_a_read_loads_both_parts(manager):
    states = long_agent(manager)
    forked = manager.fork(states[0].checkpoint_id, new_agent_id="branch")
    continued = grown_by(forked, 10_000, CHUNK + 5)
    manager.save_checkpoint(continued)
    loaded = SyncStateManager(manager.storage).load_latest("branch")
    assert loaded.approval_history == continued.approval_history
    assert loaded.approval_history[:LONG] == states[0].approval_history
    assert len(loaded.conversation_history) == LONG + CHUNK + 5


@pytest.mark.parametrize("seq", [3, CHUNK + 5, LONG - 1])
def test_a_changed_record_in_any_read_is_detected_and_nothing_of_it_is_returned(manager, seq):
    states = long_agent(manager)
    damage_rows(manager, "UPDATE records SET data = %s WHERE stream = 0 AND seq = %s",
             (b'{"action":"once","approved":false,"input_summary":"","timestamp":"2020-01-01T00:00:00","tool_name":"X"}',
              seq))
    fresh = SyncStateManager(manager.storage)
    with pytest.raises(CheckpointCorruptError, match="do not match the checkpoint's hash chain"):
        fresh.load_checkpoint(states[-1].checkpoint_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DamagedCheckpointError, match="no intact checkpoint"):
            fresh.load_latest("long")
    # the damaged stream was not kept for a later load either
    with pytest.raises(CheckpointCorruptError):
        fresh.load_checkpoint(states[-1].checkpoint_id)


def test_unreadable_or_missing_records_in_a_later_read_are_detected(manager):
    states = long_agent(manager)
    damage_rows(manager, "UPDATE records SET data = %s WHERE stream = 1 AND seq = %s", (b"{not json", CHUNK + 1))
    fresh = SyncStateManager(manager.storage)
    with pytest.raises(CheckpointCorruptError, match="conversation_history entries do not match"):
        fresh.load_checkpoint(states[-1].checkpoint_id)
    damage_rows(manager, "DELETE FROM records WHERE stream = 0 AND seq = %s", (2 * CHUNK + 1,))
    with pytest.raises(CheckpointCorruptError, match=f"approval_history has {LONG + 2} stored entries"):
        SyncStateManager(manager.storage).load_checkpoint(states[-1].checkpoint_id)


def test_a_reader_that_loaded_a_long_history_reads_only_what_was_added(manager):
    states = long_agent(manager)
    reader = SyncStateManager(manager.storage)
    assert len(reader.load_latest("long").approval_history) == LONG + 3
    third = grown_by(states[-1], LONG + 3, CHUNK + 2)
    manager.save_checkpoint(third)
    # a record the reader already holds is damaged behind its back: it keeps its verified copy,
    # the new entries are checked against the new checkpoint's running CRC
    damage_rows(manager, "UPDATE records SET data = %s WHERE stream = 0 AND seq = %s", (b'{"x":1}', 0))
    assert reader.load_latest("long").approval_history == third.approval_history
    with pytest.raises(DamagedCheckpointError), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        SyncStateManager(manager.storage).resume_from_latest("long")


def test_records_swapped_between_reads_are_detected(manager):
    states = long_agent(manager)
    damage_rows(manager, "UPDATE records SET seq = -1 WHERE stream = 0 AND seq = 1", ())
    damage_rows(manager, "UPDATE records SET seq = 1 WHERE stream = 0 AND seq = %s", (CHUNK + 2,))
    damage_rows(manager, "UPDATE records SET seq = %s WHERE stream = 0 AND seq = -1", (CHUNK + 2,))
    with pytest.raises(CheckpointCorruptError, match="approval_history entries do not match"):
        SyncStateManager(manager.storage).load_checkpoint(states[-1].checkpoint_id)


# JSON text with what a joined history is made of (commas, braces, brackets, quotes) inside strings
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10) | st.sampled_from(
    ['},{', '"]', ",", "\\", '{"a":1}', "[", ""])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.dictionaries(_TEXT, _JSON, max_size=4), max_size=12),
       summaries=st.lists(_TEXT, max_size=9), chunk=st.integers(1, 5))
def test_any_history_loads_back_exactly_whatever_the_reads_cut_it_into(manager, monkeypatch, entries, summaries,
                                                                      chunk):
    monkeypatch.setattr(history_reader, "CHUNK", chunk)
    agent_id = f"any-{new_checkpoint_id()}"
    approvals_saved = [make_approval_record("Bash", True, "once", {"command": text}, summary_limit=64)
                       for text in summaries]
    saved = AgentState(agent_id=agent_id, conversation_history=entries, approval_history=approvals_saved)
    manager.save_checkpoint(saved)
    loaded = SyncStateManager(manager.storage).load_latest(agent_id)
    assert loaded.conversation_history == entries
    assert loaded.approval_history == approvals_saved
