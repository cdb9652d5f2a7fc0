"""The original's type shapes: AgentState field order and fields, datetime timestamps,
CheckpointMetadata and StateSnapshot, and frozen records that copy and pickle."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from kaizen.core.autonomy.state import (
    AgentState, CheckpointMetadata, FrozenDict, FrozenList, StateFormatError, StateSnapshot, SyncStateManager, freeze,
)

ORIGINAL_FIELDS = (
    "checkpoint_id", "agent_id", "model", "timestamp", "updated_at", "step_number", "conversation_history",
    "memory_contents", "pending_actions", "completed_actions", "budget_spent_usd", "approval_history",
    "tool_usage_counts", "tool_results_cache", "active_specialists", "specialist_invocations", "workflow_run_id",
    "workflow_state", "control_protocol_state", "registered_hooks", "hook_event_history", "parent_checkpoint_id",
    "status", "metadata",
)
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.sampled_from([None, timezone.utc, timezone(timedelta(hours=-5, minutes=-30))]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def test_positional_arguments_follow_the_originals_field_order():
    from dataclasses import fields

    assert tuple(f.name for f in fields(AgentState))[: len(ORIGINAL_FIELDS)] == ORIGINAL_FIELDS
    state = AgentState("ckpt_x", "a1")
    assert (state.checkpoint_id, state.agent_id) == ("ckpt_x", "a1")
    assert isinstance(state.timestamp, datetime) and state.timestamp.tzinfo is not None


@settings(max_examples=60, deadline=None)
@given(moment=moments, specialists=st.lists(st.text(min_size=1, max_size=10), max_size=3),
       control=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_datetimes_and_the_five_extra_fields_round_trip_through_json(moment, specialists, control):
    state = AgentState("ckpt_rt", "a1", timestamp=moment, active_specialists=specialists,
                       control_protocol_state=control, registered_hooks=[{"name": "audit"}],
                       hook_event_history=[{"event": "pre_tool_use"}], specialist_invocations=[{"who": "x"}])
    document = state.to_dict()
    assert document["timestamp"] == moment.isoformat()
    restored = AgentState.from_dict(document)
    assert restored.timestamp == moment and restored == state


def test_extra_fields_survive_a_store_on_every_backend(backend):
    _, url = backend
    manager = SyncStateManager(url)
    state = AgentState("ckpt_five", "five", active_specialists=["planner"], control_protocol_state={"mode": "cli"},
                       registered_hooks=[{"name": "audit"}], hook_event_history=[{"event": "post_cycle"}],
                       specialist_invocations=[{"specialist": "planner", "ok": True}],
                       timestamp=datetime(2025, 1, 22, 12, 0, tzinfo=timezone.utc))
    manager.save_checkpoint(state)
    loaded = manager.load_checkpoint("ckpt_five")
    manager.close()
    assert loaded.active_specialists == ["planner"] and loaded.control_protocol_state == {"mode": "cli"}
    assert loaded.registered_hooks == [{"name": "audit"}] and loaded.hook_event_history == [{"event": "post_cycle"}]
    assert loaded.specialist_invocations == [{"specialist": "planner", "ok": True}]
    assert loaded.timestamp == state.timestamp


@pytest.mark.parametrize("field, value", [
    ("active_specialists", [3]), ("registered_hooks", ["not an object"]), ("control_protocol_state", []),
    ("timestamp", "yesterday"),
])
def test_bad_values_in_the_new_fields_are_named(field, value):
    document = AgentState("ckpt_v", "a1").to_dict() | {field: value}
    with pytest.raises(StateFormatError, match=field):
        AgentState.from_dict(document)


@settings(max_examples=60, deadline=None)
@given(moment=moments, step=st.integers(0, 10**6), size=st.integers(0, 10**9),
       parent=st.none() | st.just("ckpt_parent"))
def test_checkpoint_metadata_round_trips(moment, step, size, parent):
    meta = CheckpointMetadata("ckpt_m", "a1", moment, step, "running", size, parent)
    document = meta.to_dict()
    assert document["timestamp"] == moment.isoformat()
    assert CheckpointMetadata.from_dict(document) == meta


def test_checkpoint_metadata_refuses_what_it_cannot_read():
    with pytest.raises(StateFormatError, match="unknown field"):
        CheckpointMetadata.from_dict({"checkpoint_id": "c", "agent_id": "a", "timestamp": "2025-01-01T00:00:00",
                                      "step_number": 1, "status": "running", "size_bytes": 1, "evil": 1})
    with pytest.raises(ValueError, match="timestamp"):
        CheckpointMetadata("c", "a", "not a time", 1, "running", 1)


def test_snapshot_summary():
    snapshot = StateSnapshot(AgentState("ckpt_s", "a1", pending_actions=[{"tool": "x"}], budget_spent_usd=1.5))
    summary = snapshot.get_summary()
    assert summary["pending_actions"] == 1 and summary["budget_spent_usd"] == 1.5
    assert snapshot.snapshot_reason == "manual" and datetime.fromisoformat(summary["created_at"])


@settings(max_examples=80, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_copies_of_frozen_records_are_plain_and_mutable_and_pickle_keeps_them_frozen(value):
    frozen = freeze(value)
    shallow, deep = copy.copy(frozen), copy.deepcopy(frozen)
    assert type(shallow) is dict and type(deep) is dict and shallow == deep == value

    def no_frozen(item):
        if isinstance(item, (FrozenDict, FrozenList)):
            return False
        if isinstance(item, dict):
            return all(no_frozen(v) for v in item.values())
        if isinstance(item, list):
            return all(no_frozen(v) for v in item)
        return True

    assert no_frozen(deep)
    deep["added"] = 1  # the caller's to change
    assert "added" not in frozen
    again = pickle.loads(pickle.dumps(frozen))
    assert type(again) is FrozenDict and again == frozen
    with pytest.raises(TypeError):
        again["added"] = 1


def test_deepcopy_and_pickle_of_a_state_with_history():
    state = AgentState("ckpt_h", "a1", approval_history=[freeze({
        "tool_name": "Bash", "approved": True, "action": "once", "timestamp": "2025-01-01T00:00:00+00:00",
        "input_summary": "ls"})])
    copied = copy.deepcopy(state.approval_history)
    copied[0]["approved"] = False
    assert state.approval_history[0]["approved"] is True
    assert pickle.loads(pickle.dumps(state)) == state
