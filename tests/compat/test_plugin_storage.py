"""A user's own backend written to the original's StorageBackend protocol plugs into both managers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from kaizen.core.autonomy.hooks import HookManager
from kaizen.core.autonomy.state import (
    AgentState, CheckpointMetadata, CheckpointNotFoundError, StateFormatError, StateManager, StorageBackend,
    StorageError, SyncStateManager,
)
from kaizen.core.autonomy.state.plugin import PluginStateManager
from kaizen.core.autonomy.state.storage import MemoryStorage


class AsyncDictBackend:
    """What a migrating user wrote against the original: async methods over whole states (as dicts)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}
        self.saves = 0

    async def save(self, state):
        await asyncio.sleep(0)  # a real await: skipping it would lose the write
        self.saves += 1
        self.docs[state.checkpoint_id] = state.to_dict()
        return state.checkpoint_id

    async def load(self, checkpoint_id):
        if checkpoint_id not in self.docs:
            raise FileNotFoundError(checkpoint_id)
        return AgentState.from_dict(self.docs[checkpoint_id])

    async def list_checkpoints(self, agent_id=None):
        return [CheckpointMetadata(d["checkpoint_id"], d["agent_id"], d["timestamp"], d["step_number"], d["status"],
                                   len(str(d)), d["parent_checkpoint_id"])
                for d in self.docs.values() if agent_id is None or d["agent_id"] == agent_id]

    async def delete(self, checkpoint_id):
        if self.docs.pop(checkpoint_id, None) is None:
            raise FileNotFoundError(checkpoint_id)

    async def exists(self, checkpoint_id):
        return checkpoint_id in self.docs


class SyncDictBackend:
    """The same protocol with plain methods returning dicts."""

    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}

    def save(self, state):
        self.docs[state.checkpoint_id] = state.to_dict()
        return state.checkpoint_id

    def load(self, checkpoint_id):
        return self.docs[checkpoint_id]  # KeyError when missing

    def list_checkpoints(self, agent_id=None):
        return [{k: d[k] for k in ("checkpoint_id", "agent_id", "timestamp", "step_number", "status",
                                   "parent_checkpoint_id")} | {"size_bytes": 1}
                for d in self.docs.values() if agent_id is None or d["agent_id"] == agent_id]

    def delete(self, checkpoint_id):
        del self.docs[checkpoint_id]

    def exists(self, checkpoint_id):
        return checkpoint_id in self.docs


def _state(checkpoint_id, step, minute, parent=None):
    return AgentState(checkpoint_id, "plug", step_number=step, parent_checkpoint_id=parent,
                      timestamp=datetime(2025, 1, 1, 12, minute, tzinfo=timezone.utc))


@pytest.mark.parametrize("backend_class", [AsyncDictBackend, SyncDictBackend])
def test_sync_manager_over_a_plugin(backend_class):
    backend = backend_class()
    manager = SyncStateManager(storage=backend)
    assert isinstance(manager, PluginStateManager) and isinstance(manager, SyncStateManager)
    for step in range(3):
        assert manager.save_checkpoint(_state(f"ckpt_p{step}", step, step)) == f"ckpt_p{step}"
    assert set(backend.docs) == {"ckpt_p0", "ckpt_p1", "ckpt_p2"}  # every async save was awaited
    assert manager.resume_from_latest("plug").checkpoint_id == "ckpt_p2"
    assert [m.checkpoint_id for m in manager.list_checkpoints("plug")] == ["ckpt_p2", "ckpt_p1", "ckpt_p0"]
    fork = manager.fork("ckpt_p0")
    assert fork.parent_checkpoint_id == "ckpt_p0" and fork.checkpoint_id in backend.docs
    assert fork.checkpoint_id in manager.get_checkpoint_tree("plug")["ckpt_p0"]
    with pytest.raises(CheckpointNotFoundError, match="ckpt_gone") as caught:
        manager.load_checkpoint("ckpt_gone")
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(StorageError, match="export_agent needs one of kaizen's stores"):
        manager.export_agent("plug")


def test_async_face_awaits_the_plugin_on_the_callers_loop():
    backend = AsyncDictBackend()
    hooks = HookManager()
    seen = []
    hooks.register("post_checkpoint_save", lambda context: seen.append(dict(context.data)))

    async def main():
        manager = StateManager(storage=backend, hook_manager=hooks, retention_count=2)
        assert isinstance(backend, StorageBackend)
        for step in range(4):
            await manager.save_checkpoint(_state(f"ckpt_a{step}", step, step))
        return [m.checkpoint_id for m in await manager.list_checkpoints("plug")], await manager.load_latest("plug")

    listed, latest = asyncio.run(main())
    assert backend.saves == 4 and listed == ["ckpt_a3", "ckpt_a2"]  # retention_count applied after saves
    assert latest.step_number == 3
    assert [d["checkpoint_id"] for d in seen] == ["ckpt_a0", "ckpt_a1", "ckpt_a2", "ckpt_a3"]
    assert {"agent_id", "status", "timestamp", "step_number"} <= set(seen[0])


def test_bad_states_never_reach_the_backend_and_bad_loads_are_refused():
    backend = SyncDictBackend()
    manager = SyncStateManager(storage=backend)
    with pytest.raises(ValueError, match="step_number"):
        manager.save_checkpoint(AgentState("ckpt_bad", "plug", step_number=-1))
    with pytest.raises(ValueError, match="agent_id"):
        manager.save_checkpoint(AgentState("ckpt_bad2", "../etc"))
    assert backend.docs == {}
    backend.docs["ckpt_forged"] = {"checkpoint_id": "ckpt_forged", "agent_id": "plug", "status": "hacked"}
    with pytest.raises(StateFormatError, match="status"):
        manager.load_checkpoint("ckpt_forged")


def test_our_stores_are_never_taken_for_plugins(tmp_path):
    assert type(SyncStateManager(MemoryStorage())) is SyncStateManager
    assert type(SyncStateManager(f"sqlite:///{tmp_path}/s.db")) is SyncStateManager
    assert StateManager(storage="memory://")._plugin is None
