"""Hostile input at every public entry point that takes user data.

The rule everywhere: the result is a valid state or the package's own error, and
what was tracked or stored before a rejected call is unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state import AgentState, StateError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.storage import open_store

PACKAGE = Path(__file__).resolve().parents[2] / "kaizen"
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary() | st.just(object()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
    | st.tuples(inner) | st.frozensets(st.integers(), max_size=3),
    max_leaves=10,
)
FAST = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def tracked(agent: BaseAutonomousAgent) -> str:
    return json.dumps([agent._get_approval_history(), agent._get_tool_usage_counts(), agent._get_workflow_state()],
                      sort_keys=True)


@pytest.fixture(scope="module")
def seeded_agent():
    agent = BaseAutonomousAgent(agent_id="seeded")
    agent.record_approval("Bash", True, "once", {"command": "ls"})
    agent.record_tool_usage("Bash")
    agent.update_workflow_state(run_id="r", status="running", node_results={"a": [1]})
    return agent


@FAST
@given(tool=anything, approved=anything, action=anything, tool_input=anything)
def test_record_approval(seeded_agent, tool, approved, action, tool_input):
    before = tracked(seeded_agent)
    try:
        seeded_agent.record_approval(tool, approved, action, tool_input)
    except StateError:
        assert tracked(seeded_agent) == before
        return
    record = seeded_agent._get_approval_history()[-1]
    assert record["tool_name"] == tool and record["approved"] is approved and len(record["input_summary"]) <= 300
    orjson.dumps(seeded_agent._capture_state().to_dict())


@FAST
@given(tool=anything, increment=anything)
def test_record_tool_usage(seeded_agent, tool, increment):
    before = tracked(seeded_agent)
    try:
        seeded_agent.record_tool_usage(tool, increment)
    except StateError:
        assert tracked(seeded_agent) == before
        return
    assert isinstance(increment, int) and not isinstance(increment, bool) and increment > 0


@FAST
@given(fields=st.dictionaries(st.sampled_from(["run_id", "status", "current_node", "node_results", "execution_time",
                                               "custom", "error_message"]), anything, max_size=4))
def test_update_workflow_state(seeded_agent, fields):
    before = tracked(seeded_agent)
    try:
        seeded_agent.update_workflow_state(**fields)
    except StateError:
        assert tracked(seeded_agent) == before
        return
    orjson.dumps(seeded_agent._capture_state().to_dict())  # whatever was accepted persists as JSON


@FAST
@given(document=anything | st.dictionaries(st.text(max_size=10), anything, max_size=6))
def test_from_dict_and_restore(seeded_agent, document):
    before = tracked(seeded_agent)
    try:
        AgentState.from_dict(document)
    except StateError:
        pass
    try:
        seeded_agent._restore_state(document)
    except (StateError, TypeError):
        assert tracked(seeded_agent) == before


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('adv')}/state.db"
    manager = SyncStateManager(url)
    agent = BaseAutonomousAgent(agent_id="victim", state_manager=manager)
    for n in range(3):
        agent.record_approval("Bash", True, "once", {"n": n})
        agent.save_checkpoint()
    return manager, manager.export_agent("victim")


def _stored(manager) -> str:
    return json.dumps([manager.list_agents(), [m.checkpoint_id for m in manager.list_checkpoints("victim")]])


@FAST
@given(data=st.data())
def test_import_of_damaged_exports(populated, data):
    manager, export = populated
    before = _stored(manager)
    document = json.loads(json.dumps(export))
    section = data.draw(st.sampled_from(["lineages", "records", "checkpoints", "agent_id", "format", "version"]))
    if isinstance(document[section], list) and document[section]:
        index = data.draw(st.integers(0, len(document[section]) - 1))
        document[section][index] = data.draw(anything)
    else:
        document[section] = data.draw(anything)
    try:
        manager.import_agent(document)
    except (StateError, ValueError):
        pass
    assert _stored(manager) == before


@FAST
@given(checkpoint_id=st.text(max_size=300) | anything)
def test_checkpoint_ids(populated, checkpoint_id):
    manager, _ = populated
    try:
        manager.load_checkpoint(checkpoint_id)
    except (StateError, ValueError, TypeError):
        return


@FAST
@given(url=st.text(max_size=80))
def test_store_urls(url):
    try:
        store = open_store(url)
    except StateError:
        return
    assert store.url


@pytest.mark.parametrize("bad", ["../escape", "a/b", "/etc/passwd", "x\x00y", "a" * 129, "..", "a..b", " lead", ""])
def test_path_like_and_oversized_ids_are_rejected(tmp_path, bad):
    manager = SyncStateManager(f"file://{tmp_path}/fs") if _has_fs() else SyncStateManager(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises((ValueError, TypeError)):
        BaseAutonomousAgent(agent_id=bad)
    with pytest.raises((ValueError, TypeError)):
        manager.load_checkpoint(bad)
    with pytest.raises((ValueError, TypeError)):
        manager.list_checkpoints(bad)
    assert not any(p.name == "passwd" or "escape" in p.name for p in tmp_path.rglob("*"))


def _has_fs() -> bool:
    import importlib.util

    return importlib.util.find_spec("kaizen.core.autonomy.state.storage.filesystem") is not None


def test_no_module_imports_pickle_marshal_or_shelve():
    pattern = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|marshal|shelve|dill|cloudpickle)\b", re.M)
    offenders = [str(p) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
