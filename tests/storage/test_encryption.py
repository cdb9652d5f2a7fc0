"""Encryption at rest on every backend: nothing readable without the key, nothing movable."""

from __future__ import annotations

import base64

import pytest
from tamper import copy_body, raw_bytes

from kaizen.agents.autonomous.base import AutonomousConfig, BaseAutonomousAgent
from kaizen.core.autonomy.state.errors import CheckpointCorruptError, EncryptionKeyError, StorageError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.storage import EncryptedStorage, open_store
from kaizen.core.autonomy.state.storage.encrypted import generate_key, rotate_key

SECRET_WORDS = b"launch-codes-in-notes"


@pytest.fixture
def key():
    return generate_key()


def _agent(manager, agent_id="enc-1"):
    agent = BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)
    for n in range(3):
        agent.record_approval("Write", True, "once", {"path": f"{SECRET_WORDS.decode()}-{n}.txt"})
        agent.update_workflow_state(current_node=f"{SECRET_WORDS.decode()}-node")
        agent.step_number += 1
        agent.save_checkpoint()
    return agent


def test_contents_are_unreadable_at_rest_and_load_with_the_key(store, key):
    manager = SyncStateManager(EncryptedStorage(store, key))
    agent = _agent(manager)
    assert SECRET_WORDS not in raw_bytes(store)
    state = SyncStateManager(EncryptedStorage(store, key)).load_latest("enc-1")
    assert state.to_dict()["approval_history"] == [dict(r) for r in agent._capture_state().approval_history]
    assert SyncStateManager(EncryptedStorage(store, key)).verify_audit("enc-1").ok


def test_no_key_or_wrong_key_is_refused(store, key):
    _agent(SyncStateManager(EncryptedStorage(store, key)))
    latest = SyncStateManager(store).storage.latest_checkpoint("enc-1").checkpoint_id
    with pytest.raises(StorageError, match="encrypted"):
        SyncStateManager(store).load_checkpoint(latest)
    with pytest.raises(EncryptionKeyError, match="different key"):
        SyncStateManager(EncryptedStorage(store, generate_key())).load_checkpoint(latest)
    with pytest.raises(EncryptionKeyError, match="different key"):  # not "damaged": no fallback
        SyncStateManager(EncryptedStorage(store, generate_key())).load_latest("enc-1")


def test_plaintext_rows_are_not_silently_accepted(store, key):
    _agent(SyncStateManager(store))  # written without encryption
    latest = store.latest_checkpoint("enc-1").checkpoint_id
    with pytest.raises(EncryptionKeyError, match="unencrypted"):
        SyncStateManager(EncryptedStorage(store, key)).load_checkpoint(latest)


def test_ciphertext_moved_to_another_checkpoint_fails(store, key):
    manager = SyncStateManager(EncryptedStorage(store, key))
    _agent(manager)
    first, second = [m.checkpoint_id for m in manager.list_checkpoints("enc-1")][-1:-3:-1]
    copy_body(store, first, second)
    with pytest.raises(CheckpointCorruptError, match="moved from another agent or checkpoint"):
        SyncStateManager(EncryptedStorage(store, key)).load_checkpoint(second)


def test_key_rotation_reencrypts_the_whole_history(store, key):
    manager = SyncStateManager(EncryptedStorage(store, key))
    agent = _agent(manager)
    ids = [m.checkpoint_id for m in manager.list_checkpoints("enc-1")]
    new_key = generate_key()
    assert rotate_key(store, "enc-1", key, new_key) == 3
    with pytest.raises(EncryptionKeyError):
        SyncStateManager(EncryptedStorage(store, key)).load_checkpoint(ids[0])
    rotated = SyncStateManager(EncryptedStorage(store, new_key))
    assert [m.checkpoint_id for m in rotated.list_checkpoints("enc-1")] == ids
    for checkpoint_id in ids:
        rotated.load_checkpoint(checkpoint_id)
    assert rotated.load_latest("enc-1").approval_history == agent._capture_state().approval_history
    assert rotated.verify_audit("enc-1").ok
    assert SECRET_WORDS not in raw_bytes(store)


def test_key_from_config_and_environment(tmp_path, monkeypatch, key):
    url = f"sqlite:///{tmp_path}/enc.db"
    agent = BaseAutonomousAgent(AutonomousConfig(storage=url, encryption_key=key), agent_id="cfg")
    agent.record_approval("Bash", True, "once", {"command": SECRET_WORDS.decode()})
    agent.save_checkpoint()
    assert "***" in repr(agent.config) and key not in repr(agent.config)
    with pytest.raises(StorageError, match="KAIZEN_ENCRYPTION_KEY"):
        SyncStateManager(url).load_latest("cfg")
    monkeypatch.setenv("KAIZEN_ENCRYPTION_KEY", key)
    assert SyncStateManager(url).load_latest("cfg").approval_history[0]["tool_name"] == "Bash"


def test_bad_keys_are_refused_with_how_to_fix():
    for bad in ("short", base64.b64encode(b"x" * 16).decode(), ""):
        with pytest.raises(StorageError, match="32 random bytes"):
            open_store("memory://", encryption_key=bad or "=")
