"""Encrypted histories stay encrypted: no plaintext saved or forked on top, no rotation that would
strand a fork's shared records."""

from __future__ import annotations

import pytest
from history_steps import run_steps

from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.errors import EncryptionKeyError, StorageError
from kaizen.core.autonomy.state.storage import EncryptedStorage
from kaizen.core.autonomy.state.storage.encrypted import generate_key, rotate_key
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def test_no_plaintext_written_on_top_of_an_encrypted_history(store):
    key = generate_key()
    run_steps(SyncStateManager(EncryptedStorage(store, key)), "enc", 2)
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
    run_steps(manager, "main", 2)
    manager.fork(manager.list_checkpoints("main")[-1].checkpoint_id, new_agent_id="child")
    with pytest.raises(StorageError, match="child"):
        rotate_key(store, "main", key, generate_key())
    assert len(manager.load_latest("child").approval_history) == 1  # still readable with the old key
