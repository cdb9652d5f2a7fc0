"""Defects a review found in the stores and manager, each pinned by a test that fails without its fix."""

from __future__ import annotations

import time

import orjson
import pytest

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.errors import EncryptionKeyError, StateFormatError, StorageError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.storage import EncryptedStorage, MemoryStorage, open_store
from kaizen.core.autonomy.state.storage.encrypted import generate_key, rotate_key
from kaizen.core.autonomy.state.storage.rows import plan_save


def _steps(manager, agent_id, n, start=0):
    agent = BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)
    if manager.load_latest(agent_id) is not None:
        agent.resume()
    for i in range(start, start + n):
        agent.record_approval("Bash", True, "once", {"i": i})
        agent.save_checkpoint()
    return agent


def test_import_refuses_a_stale_shared_lineage_instead_of_half_loading(manager, tmp_path):
    _steps(manager, "main", 2)
    first = manager.list_checkpoints("main")[-1].checkpoint_id
    manager.fork(first, new_agent_id="fork")
    fork_export = manager.export_agent("fork")
    _steps(manager, "main", 1, start=2)
    main_export = manager.export_agent("main")
    target = SyncStateManager(open_store(f"sqlite:///{tmp_path}/t.db"))
    target.import_agent(fork_export)
    with pytest.raises(StorageError, match="already exists .* shorter"):
        target.import_agent(main_export)
    assert target.list_agents() == ["fork"]
    ordered = SyncStateManager(open_store(f"sqlite:///{tmp_path}/ordered.db"))
    ordered.import_agent(main_export)  # source first, then the fork: both load whole
    ordered.import_agent(fork_export)
    assert len(ordered.load_latest("main").approval_history) == 3
    assert len(ordered.load_latest("fork").approval_history) == 1


def test_no_plaintext_written_on_top_of_an_encrypted_history(store):
    key = generate_key()
    _steps(SyncStateManager(EncryptedStorage(store, key)), "enc", 2)
    keyless = SyncStateManager(store)
    state = AgentState(agent_id="enc", parent_checkpoint_id=store.latest_checkpoint("enc").checkpoint_id)
    with pytest.raises(EncryptionKeyError):
        keyless.save_checkpoint(state)
    with pytest.raises(EncryptionKeyError):
        keyless.fork(store.latest_checkpoint("enc").checkpoint_id)
    assert len(SyncStateManager(EncryptedStorage(store, key)).list_checkpoints("enc")) == 2


def test_rotation_refuses_while_forks_share_the_history(store):
    key = generate_key()
    manager = SyncStateManager(EncryptedStorage(store, key))
    _steps(manager, "main", 2)
    manager.fork(manager.list_checkpoints("main")[-1].checkpoint_id, new_agent_id="child")
    with pytest.raises(StorageError, match="child"):
        rotate_key(store, "main", key, generate_key())
    assert len(manager.load_latest("child").approval_history) == 1  # still readable with the old key


def test_timestamps_in_other_time_zones_list_in_time_order():
    manager = SyncStateManager(MemoryStorage())
    plan = plan_save(AgentState(agent_id="tz", timestamp="2024-01-01T12:00:00+05:00"), None, "lin_tz")
    manager.storage.save(plan)
    listed = manager.list_checkpoints("tz", before="2024-01-01T07:30:00+00:00")
    assert [m.timestamp.isoformat(timespec="microseconds") for m in listed] == ["2024-01-01T07:00:00.000000+00:00"]


def test_listing_every_agent_is_newest_first(manager):
    _steps(manager, "zeta", 1)
    time.sleep(0.002)
    _steps(manager, "alpha", 1)
    assert manager.list_checkpoints(limit=1)[0].agent_id == "alpha"


def test_should_checkpoint_uses_wall_clock_time(manager):
    manager.checkpoint_interval = 60.0
    _steps(manager, "clock", 1)
    assert manager.should_checkpoint("clock", 1, time.time()) is False
    assert manager.should_checkpoint("clock", 1, time.time() + 61) is True


def test_a_checkpoint_from_a_newer_release_is_named_not_called_damaged():
    storage = MemoryStorage()
    plan = plan_save(AgentState(agent_id="future"), None, "lin_f")
    body = orjson.loads(plan.row.body)
    body["schema_version"] = 99
    from dataclasses import replace

    from kaizen.core.autonomy.state.storage.rows import row_checksum

    raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    row = plan.row
    checksum = row_checksum(row.checkpoint_id, row.agent_id, row.lineage_id, row.parent_checkpoint_id,
                            row.step_number, row.timestamp, row.status, row.heads, raw)
    storage.save(replace(plan, row=replace(row, body=raw, checksum=checksum)))
    with pytest.raises(StateFormatError, match="newer kaizen-state"):
        SyncStateManager(storage).load_checkpoint(row.checkpoint_id)


def test_the_originals_filesystem_keywords(tmp_path):
    from kaizen.core.autonomy.state.storage import FilesystemStorage

    key = generate_key()
    store = FilesystemStorage(tmp_path / "fs", encrypt=True, encryption_key=key)
    assert isinstance(store, EncryptedStorage)
    _steps(SyncStateManager(store), "orig", 1)
    assert b"orig" in b"".join(p.read_bytes() for p in (tmp_path / "fs").rglob("*.json"))  # ids stay readable
    assert b'"i"' not in b"".join(p.read_bytes() for p in (tmp_path / "fs").rglob("*") if p.is_file())
    with pytest.raises(StorageError, match="compress"):
        FilesystemStorage(tmp_path / "fs2", compress=True)
