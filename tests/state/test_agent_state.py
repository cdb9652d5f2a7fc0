"""``AgentState`` documents: round trips, versions, and arbitrary (hostile) JSON."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state import AgentState, StateFormatError
from kaizen.core.autonomy.state.types import STATUSES

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,20}", fullmatch=True)
timestamps = st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)).map(lambda d: d.isoformat())
records = st.fixed_dictionaries({
    "tool_name": st.text(min_size=1, max_size=20).filter(str.strip),
    "approved": st.booleans(),
    "action": st.sampled_from(["once", "all", "deny_all"]),
    "timestamp": timestamps,
    "input_summary": st.text(max_size=50),
})
valid_documents = st.fixed_dictionaries({
    "schema_version": st.just(1),
    "agent_id": ids,
    "checkpoint_id": ids,
    "step_number": st.integers(0, 10**6),
    "status": st.sampled_from(STATUSES),
    "approval_history": st.lists(records, max_size=5),
    "tool_usage_counts": st.dictionaries(st.text(min_size=1, max_size=10).filter(str.strip), st.integers(0, 10**9), max_size=4),
    "workflow_run_id": st.none() | st.text(max_size=10),
    "workflow_state": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    "conversation_history": st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=3), max_size=3),
    "metadata": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    "budget_spent_usd": st.floats(0, 1e6),
})


@given(valid_documents)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_valid_documents_round_trip(document):
    state = AgentState.from_dict(document)
    again = AgentState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert again == state
    for key, value in document.items():
        if key != "schema_version":
            assert orjson.loads(orjson.dumps(getattr(state, key))) == orjson.loads(orjson.dumps(value))


def _mutations(document: dict) -> st.SearchStrategy[dict]:
    keys = st.sampled_from(sorted(document))
    return st.one_of(
        keys.map(lambda k: {x: v for x, v in document.items() if x != k}),
        st.tuples(keys, json_values).map(lambda kv: {**document, kv[0]: kv[1]}),
        st.tuples(st.text(max_size=10), json_values).map(lambda kv: {**document, kv[0]: kv[1]}),
    )


@given(st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_damaged_documents_give_a_valid_state_or_our_error(data):
    agent = BaseAutonomousAgent(agent_id="base")
    agent.record_approval("Bash", True, "once", {"command": "ls"})
    agent.record_tool_usage("Bash")
    agent.update_workflow_state(run_id="r1", status="running")
    document = json.loads(json.dumps(agent._capture_state().to_dict()))
    damaged = data.draw(_mutations(document))
    try:
        state = AgentState.from_dict(damaged)
    except StateFormatError:
        return
    assert isinstance(state, AgentState)
    orjson.dumps(state.to_dict())  # whatever loads is plain, persistable JSON


@given(json_values)
@settings(max_examples=300)
def test_arbitrary_json_gives_a_valid_state_or_our_error(value):
    try:
        AgentState.from_dict(value)
    except StateFormatError:
        pass


@given(st.data())
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_restore_of_arbitrary_json_never_half_loads(data):
    agent = BaseAutonomousAgent(agent_id="keep")
    agent.record_approval("Read", True)
    before = json.dumps(agent._get_approval_history()), agent._get_tool_usage_counts(), agent.agent_id
    value = data.draw(json_values | _mutations(agent._capture_state().to_dict()))
    try:
        agent._restore_state(value)
    except (StateFormatError, TypeError):
        assert (json.dumps(agent._get_approval_history()), agent._get_tool_usage_counts(), agent.agent_id) == before


def test_original_kaizen_layout_loads_through_migration():
    original = {  # AgentState.to_dict() of Kailash Kaizen: no schema_version, no token_usage
        "checkpoint_id": "ckpt_abc123def456", "agent_id": "autonomous_agent", "model": "llama3.2",
        "timestamp": "2025-01-01T12:00:00", "updated_at": "2025-01-01T12:00:00", "step_number": 5,
        "conversation_history": [], "memory_contents": {}, "pending_actions": [], "completed_actions": [],
        "budget_spent_usd": 0.0,
        "approval_history": [{"tool_name": "Bash", "approved": True, "action": "once",
                              "timestamp": "2025-01-01T12:00:00.000000", "input_summary": "{'command': 'ls -la'}"}],
        "tool_usage_counts": {"Bash": 3, "Read": 10}, "tool_results_cache": {}, "workflow_run_id": "run_abc123",
        "workflow_state": {"status": "running", "current_node": "node1"}, "parent_checkpoint_id": None,
        "status": "running", "metadata": {},
    }
    state = AgentState.from_dict(original)
    assert state.tool_usage_counts == {"Bash": 3, "Read": 10} and state.token_usage == {}
    assert state.to_dict()["schema_version"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema_version": 99}, "newer"),
        ({"schema_version": "1"}, "schema_version"),
        ({"surprise": 1}, "surprise"),
        ({"step_number": -1}, "step_number"),
        ({"step_number": True}, "step_number"),
        ({"status": "sleeping"}, "status"),
        ({"agent_id": "../x"}, "agent_id"),
        ({"approval_history": [{"tool_name": "Bash"}]}, "approval_history"),
        ({"approval_history": "not a list"}, "approval_history"),
        ({"tool_usage_counts": {"Bash": 1.5}}, "tool_usage_counts"),
        ({"workflow_state": []}, "workflow_state"),
        ({"budget_spent_usd": -1}, "budget_spent_usd"),
    ],
)
def test_foreign_or_damaged_fields_are_named(change, message):
    document = AgentState(agent_id="a").to_dict() | change
    with pytest.raises(StateFormatError, match=message):
        AgentState.from_dict(document)


def test_non_object_documents_are_refused():
    for value in (None, [], "state", 3):
        with pytest.raises(StateFormatError, match="JSON object"):
            AgentState.from_dict(value)
