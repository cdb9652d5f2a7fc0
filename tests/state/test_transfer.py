"""Exports carry a digest and their lineage heads; an import refuses any document that lost or changed data."""

from __future__ import annotations

import copy
import sqlite3
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg import drop_schema, new_schema, require_server, store_url

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state.errors import CheckpointCorruptError, StateError, StateFormatError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.transfer import document_digest


def _history(manager: SyncStateManager, agent_id: str = "mover", steps: int = 4) -> list[str]:
    agent = BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)
    ids = []
    for n in range(steps):
        agent.record_approval("Bash", n % 2 == 0, "once", {"n": n})
        agent.record_tool_usage("Bash")
        agent.step_number += 1
        ids.append(agent.save_checkpoint())
    manager.fork(ids[1])  # a second lineage of the same agent
    return ids


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path):
    """An empty store of each kind to import into."""
    if request.param == "sqlite":
        with SyncStateManager(f"sqlite:///{tmp_path}/target.db") as manager:
            yield manager
        return
    require_server()
    schema = new_schema()
    with SyncStateManager(store_url(schema)) as manager:
        yield manager
    drop_schema(schema)


@pytest.fixture
def source(tmp_path):
    with SyncStateManager(f"sqlite:///{tmp_path}/source.db") as manager:
        _history(manager)
        yield manager


def _resealed(document: dict[str, Any]) -> dict[str, Any]:
    """What an editor who also recomputes the digest produces."""
    document["digest"] = document_digest(document)
    return document


def _empty(manager: SyncStateManager) -> bool:
    return manager.list_agents() == [] and manager.storage.list_lineages("mover") == []


def test_export_names_its_heads_and_digest_and_imports_whole(source, target):
    document = orjson.loads(orjson.dumps(source.export_agent("mover")))
    assert document["version"] == 2 and document["damaged"] == []
    assert document["digest"] == document_digest(document)
    lineages = source.storage.list_lineages("mover")
    assert {lin.lineage_id: lin.head_checkpoint_id for lin in lineages} == \
        {lid: head["checkpoint_id"] for lid, head in document["heads"].items()}
    assert target.import_agent(document) == "mover"
    assert target.find_damage("mover") == []
    for meta in source.list_checkpoints("mover"):
        assert target.load_checkpoint(meta.checkpoint_id).to_dict() == source.load_checkpoint(meta.checkpoint_id).to_dict()


@pytest.mark.parametrize("reseal", [False, True])
def test_export_without_its_newest_checkpoint_is_refused(source, target, reseal):
    document = source.export_agent("mover")
    newest = document["checkpoints"].pop()  # the fork's head, the last saved
    if reseal:
        document = _resealed(document)
    with pytest.raises(StateFormatError, match=newest["checkpoint_id"]):
        target.import_agent(document)
    assert _empty(target)


def test_export_without_checkpoints_is_refused(source, target):
    document = source.export_agent("mover")
    document["checkpoints"] = []
    with pytest.raises(StateFormatError, match="no checkpoints"):
        target.import_agent(_resealed(document))
    assert _empty(target)


def test_export_with_truncated_records_is_refused(source, target):
    document = source.export_agent("mover")
    document["records"] = document["records"][:-1]
    with pytest.raises(StateFormatError, match="does not match|missing"):
        target.import_agent(_resealed(document))
    assert _empty(target)


def test_export_with_heads_that_disagree_is_refused(source, target):
    document = source.export_agent("mover")
    lineage_id = next(iter(document["heads"]))
    document["heads"][lineage_id]["checkpoints"] += 1
    with pytest.raises(StateFormatError, match=lineage_id):
        target.import_agent(_resealed(document))
    assert _empty(target)


def test_version_1_exports_are_still_read_and_checked(source, target):
    document = source.export_agent("mover")
    old = {k: v for k, v in document.items() if k not in ("heads", "damaged", "digest")} | {"version": 1}
    truncated = copy.deepcopy(old)
    newest = truncated["checkpoints"].pop()
    with pytest.raises(StateFormatError, match=newest["checkpoint_id"]):
        target.import_agent(truncated)
    assert _empty(target)
    assert target.import_agent(old) == "mover"
    assert target.find_damage("mover") == []


def test_damaged_agent_exports_only_when_allowed_and_imports_only_when_allowed(tmp_path, target):
    source = SyncStateManager(f"sqlite:///{tmp_path}/source.db")
    ids = _history(source, steps=3)
    with sqlite3.connect(source.storage.path) as conn:
        conn.execute("UPDATE checkpoints SET status = 'failed' WHERE checkpoint_id = ?", (ids[0],))
    with pytest.raises(CheckpointCorruptError, match="allow_damaged"):
        source.export_agent("mover")
    document = orjson.loads(orjson.dumps(source.export_agent("mover", allow_damaged=True)))
    assert document["damaged"] == [ids[0]]
    with pytest.raises(StateFormatError, match="allow_damaged"):
        target.import_agent(document)
    assert _empty(target)
    target.import_agent(document, allow_damaged=True)
    assert [exc.checkpoint_id for exc in target.find_damage("mover")] == [ids[0]]
    assert target.resume_from_latest("mover").checkpoint_id == source.resume_from_latest("mover").checkpoint_id
    source.close()


# --- any mutation of a document is refused, and the target store stays as it was -----------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    with SyncStateManager(f"sqlite:///{tmp_path_factory.mktemp('src')}/source.db") as manager:
        _history(manager, steps=3)
        return orjson.loads(orjson.dumps(manager.export_agent("mover")))


@pytest.fixture(scope="module")
def sqlite_target(tmp_path_factory):
    with SyncStateManager(f"sqlite:///{tmp_path_factory.mktemp('dst')}/target.db") as manager:
        yield manager


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_is_refused_and_nothing_is_written(exported, sqlite_target, data):
    document = copy.deepcopy(exported)
    path = data.draw(st.sampled_from(_paths(document)[1:]))
    *parents, last = path
    holder = document
    for key in parents:
        holder = holder[key]
    operation = data.draw(st.sampled_from(["replace", "delete", "duplicate"]))
    if operation == "delete" or (operation == "duplicate" and not isinstance(holder, list)):
        del holder[last]
    elif operation == "duplicate":
        holder.insert(last, copy.deepcopy(holder[last]))
    else:
        holder[last] = data.draw(JSON_VALUES)
    if orjson.dumps(document, option=orjson.OPT_SORT_KEYS) == orjson.dumps(exported, option=orjson.OPT_SORT_KEYS):
        return  # the "mutation" changed nothing
    with pytest.raises((StateError, ValueError)):
        sqlite_target.import_agent(document)
    assert _empty(sqlite_target)
