"""The SQLite store's lone save that extends a lineage is one statement (a TEMP view's INSTEAD OF
trigger): it must store exactly the bytes a save planned, keep the head compare-and-set (a stale
parent writes nothing and names the head found), and leave the file's schema as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.core.autonomy.state.errors import CheckpointConflictError, StorageError
from kaizen.core.autonomy.state.records import make_approval_record
from kaizen.core.autonomy.state.storage import STREAMS
from kaizen.core.autonomy.state.storage.rows import plan_save
from kaizen.core.autonomy.state.storage.sqlite import SQLiteStorage
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import AgentState

JSON_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
ENTRY = st.dictionaries(st.text(min_size=1, max_size=8), JSON_TEXT | st.integers(-10**6, 10**6), max_size=4)


def _stored(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        records = conn.execute("SELECT lid, stream, seq, data, hash FROM records ORDER BY lid, stream, seq").fetchall()
        rows = conn.execute("SELECT checkpoint_id, heads, body, checksum FROM checkpoints ORDER BY seq").fetchall()
    finally:
        conn.close()
    return records, rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.tuples(st.lists(ENTRY, max_size=3), st.lists(ENTRY, max_size=3)), min_size=1, max_size=4))
def test_lone_saves_store_exactly_the_planned_records_and_load_back(tmp_path_factory, batches):
    path = tmp_path_factory.mktemp("one") / "state.db"
    manager = SyncStateManager(f"sqlite:///{path}", verify="chain")  # loads recompute the SHA-256 chains
    state = AgentState(agent_id="a1")
    manager.save_checkpoint(state)  # the first save makes the lineage (not the one-statement path)
    try:
        for step, (conversation, actions) in enumerate(batches, 1):
            state = AgentState(
                agent_id="a1", step_number=step, parent_checkpoint_id=state.checkpoint_id,
                conversation_history=[*state.conversation_history, *conversation],
                completed_actions=[*state.completed_actions, *actions],
                approval_history=[*state.approval_history, *[
                    make_approval_record("Bash", True, "once", action, summary_limit=300) for action in actions]],
            )
            manager.save_checkpoint(state)
            loaded = manager.load_checkpoint(state.checkpoint_id)
            assert loaded.conversation_history == state.conversation_history
            assert loaded.completed_actions == state.completed_actions
            assert loaded.approval_history == state.approval_history
        audit = manager.verify_audit("a1")
        assert audit.ok, audit
    finally:
        manager.close()
    records, rows = _stored(path)
    assert len(rows) == len(batches) + 1
    assert all(len(record[4]) == 32 for record in records)  # hashes stored as 32 raw bytes
    counted = {stream: 0 for stream in STREAMS}
    for _lid, stream, seq, _data, _digest in records:
        assert seq == counted[STREAMS[stream]]
        counted[STREAMS[stream]] += 1
    assert counted["conversation_history"] == sum(len(c) for c, _ in batches)
    assert counted["completed_actions"] == counted["approval_history"] == sum(len(a) for _, a in batches)


def _saved_once(path):
    """A store holding agent a1's first checkpoint: the parent a lone save continues from."""
    store = SQLiteStorage(path)
    manager = SyncStateManager(store)
    first = AgentState(agent_id="a1")
    manager.save_checkpoint(first)
    parent = store.latest_checkpoint("a1")
    assert parent is not None
    return store, manager, first, parent


def _said(*texts):
    return [{"role": "user", "content": text} for text in texts]


# A save of at most one record takes the one-record view (its lineage by lid), more take the JSON one.
@pytest.mark.parametrize("said", [(), ("two",), ("two", "three")], ids=["no-record", "one-record", "two-records"])
def test_a_stale_parent_writes_nothing_and_names_the_head(tmp_path, said):
    path = tmp_path / "state.db"
    store, manager, first, parent = _saved_once(path)
    try:
        winner = AgentState(agent_id="a1", step_number=1, parent_checkpoint_id=first.checkpoint_id,
                            conversation_history=_said("one"))
        manager.save_checkpoint(winner)
        loser = AgentState(agent_id="a1", step_number=1, conversation_history=_said(*said))
        plan = plan_save(loser, parent, parent.lineage_id)
        before = _stored(path)
        with pytest.raises(CheckpointConflictError) as caught:
            store.write(plan)
        assert caught.value.actual_head == winner.checkpoint_id
        assert _stored(path) == before
    finally:
        manager.close()


@pytest.mark.parametrize("said", [(), ("x",), ("x", "y")], ids=["no-record", "one-record", "two-records"])
def test_a_duplicate_checkpoint_id_is_refused_with_a_clear_error_and_nothing_written(tmp_path, said):
    path = tmp_path / "state.db"
    store, manager, first, parent = _saved_once(path)
    try:
        again = AgentState(checkpoint_id=first.checkpoint_id, agent_id="a1", step_number=1,
                           conversation_history=_said(*said))
        plan = plan_save(again, parent, parent.lineage_id)
        before = _stored(path)
        with pytest.raises(StorageError, match="already exists"):
            store.write(plan)
        assert _stored(path) == before
    finally:
        manager.close()


def _first_and_second_save(path: Path, **second: object) -> AgentState:
    """Agent ``a1``'s first checkpoint and a second on it (with ``second``'s fields), in a new store;
    returns the second state as loaded back."""
    manager = SyncStateManager(f"sqlite:///{path}")
    try:
        state = AgentState(agent_id="a1")
        manager.save_checkpoint(state)
        saved = AgentState(agent_id="a1", step_number=1, parent_checkpoint_id=state.checkpoint_id, **second)
        manager.save_checkpoint(saved)
        return manager.load_checkpoint(saved.checkpoint_id)
    finally:
        manager.close()


def test_a_one_statement_save_stores_its_blobs_as_blobs_and_its_text_as_text(tmp_path):
    path = tmp_path / "state.db"
    approvals = [make_approval_record("Bash", True, "once", {"c": "ls"}, summary_limit=300)]
    assert _first_and_second_save(path, approval_history=approvals).approval_history == approvals
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT typeof(checkpoint_id), typeof(parent_checkpoint_id), typeof(heads), "
                            "typeof(body), typeof(checksum), typeof(size_bytes) FROM checkpoints ORDER BY seq"
                            ).fetchall()
        records = conn.execute("SELECT typeof(data), typeof(hash), length(hash) FROM records").fetchall()
    finally:
        conn.close()
    assert rows == [("text", "null", "blob", "blob", "text", "integer"),
                    ("text", "text", "blob", "blob", "text", "integer")]
    assert records == [("blob", "blob", 32)]


def test_the_files_schema_holds_no_view_or_trigger(tmp_path):
    path = tmp_path / "state.db"
    _first_and_second_save(path)
    conn = sqlite3.connect(path)
    try:
        kinds = {kind for (kind,) in conn.execute("SELECT DISTINCT type FROM sqlite_master")}
    finally:
        conn.close()
    assert kinds <= {"table", "index"}


def test_a_save_on_a_deleted_lineage_never_lands_on_the_lineage_that_reuses_its_key(tmp_path):
    """The writer keeps lineage id -> lid; SQLite may hand a deleted lineage's lid to a new one."""
    path = tmp_path / "state.db"
    store, manager, first, parent = _saved_once(path)
    try:
        manager.save_checkpoint(AgentState(agent_id="a1", step_number=1, parent_checkpoint_id=first.checkpoint_id,
                                           conversation_history=_said("one")))  # the writer now knows a1's lid
        stale_parent = store.latest_checkpoint("a1")
        assert stale_parent is not None
        stale = plan_save(AgentState(agent_id="a1", step_number=2, conversation_history=_said("one", "two")),
                          stale_parent, stale_parent.lineage_id)
        store.delete_agent("a1")
        other = AgentState(agent_id="a2")
        manager.save_checkpoint(other)
        lids = sqlite3.connect(path).execute("SELECT lid, lineage_id FROM lineages").fetchall()
        assert len(lids) == 1 and lids[0][1] != stale_parent.lineage_id
        before = _stored(path)
        with pytest.raises((CheckpointConflictError, StorageError)):
            store.write(stale)
        assert _stored(path) == before
        assert manager.load_latest("a2").checkpoint_id == other.checkpoint_id
    finally:
        manager.close()


def test_without_the_one_record_view_saves_take_the_json_one(tmp_path, monkeypatch):
    from kaizen.core.autonomy.state.storage import sqlite_writes

    monkeypatch.setattr(sqlite_writes, "CREATE_APPEND_ONE", ("CREATE TEMP VIEW kaizen_append_one AS SELECT no_such()",))
    path = tmp_path / "state.db"
    manager = SyncStateManager(f"sqlite:///{path}", verify="chain")
    try:
        state = AgentState(agent_id="a1")
        manager.save_checkpoint(state)
        for step in range(1, 4):
            state = AgentState(agent_id="a1", step_number=step, parent_checkpoint_id=state.checkpoint_id,
                               conversation_history=[*state.conversation_history, *_said(str(step))])
            manager.save_checkpoint(state)
        assert manager.load_latest("a1").conversation_history == _said("1", "2", "3")
    finally:
        manager.close()


def test_without_the_view_a_lone_save_takes_the_batch_statements(tmp_path, monkeypatch):
    """An SQLite that cannot make the view and trigger (e.g. built without JSON functions) still saves."""
    from kaizen.core.autonomy.state.storage import sqlite_writes

    monkeypatch.setattr(sqlite_writes, "CREATE_APPEND", ("CREATE TEMP VIEW kaizen_append AS SELECT no_such_function()",))
    path = tmp_path / "state.db"
    store = SQLiteStorage(path)
    manager = SyncStateManager(store, verify="chain")
    try:
        first = AgentState(agent_id="a1")
        manager.save_checkpoint(first)
        parent = store.latest_checkpoint("a1")
        assert parent is not None
        second = AgentState(agent_id="a1", step_number=1, parent_checkpoint_id=first.checkpoint_id,
                            conversation_history=[{"role": "user", "content": "one"}])
        manager.save_checkpoint(second)
        assert manager.load_checkpoint(second.checkpoint_id).conversation_history == second.conversation_history
        stale = plan_save(AgentState(agent_id="a1", step_number=1), parent, parent.lineage_id)
        with pytest.raises(CheckpointConflictError):
            store.write(stale)
    finally:
        manager.close()


def test_a_store_that_cannot_be_opened_for_writing_says_when_its_disk_is_read_only(tmp_path, monkeypatch):
    """On a read-only file system SQLite only says "unable to open database file"; the error says
    why and what still works. (A read-only mount needs root, so the disk's flag is what is faked.)"""
    import os
    from types import SimpleNamespace

    from kaizen.core.autonomy.state.errors import StorageError
    from kaizen.core.autonomy.state.storage.sqlite_writes import open_connection

    (tmp_path / "state.db").mkdir()  # something SQLite cannot open
    real_statvfs = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_flag=real_statvfs(path).f_flag | os.ST_RDONLY))
    with pytest.raises(StorageError, match="read-only file system.*kaizen audit"):
        open_connection(tmp_path / "state.db", 1000, "FULL")
