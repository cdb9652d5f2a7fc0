"""The original Kailash Kaizen's ``StorageBackend``: the protocol, and a mixin that gives every store it.

Code written against the original saves whole states into a backend (``await storage.save(state)``).
Our stores keep rows; the mixin runs each call through a ``SyncStateManager`` on the same store, so a
save still writes only what changed since the agent's latest checkpoint (O(delta)), and the
blocking store call runs on a worker thread (``kaizen.core.bridge.in_thread``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ....bridge import in_thread
from ..errors import CheckpointNotFoundError, StorageError

if TYPE_CHECKING:
    from ..sync_manager import SyncStateManager
    from ..types import AgentState, CheckpointMetadata
    from .base import CheckpointRow

_MANAGER_LOCK = threading.Lock()


@runtime_checkable
class StorageBackend(Protocol):
    """The original's storage plug-in protocol: whole states in, whole states out, all async."""

    async def save(self, state: AgentState) -> str: ...

    async def load(self, checkpoint_id: str) -> AgentState: ...

    async def list_checkpoints(self, agent_id: str | None = None) -> list[CheckpointMetadata]: ...

    async def delete(self, checkpoint_id: str) -> None: ...

    async def exists(self, checkpoint_id: str) -> bool: ...


class StateBackendMixin:
    """``StorageBackend``'s five methods for a class that implements ``CheckpointStore``."""

    _state_backend_manager: SyncStateManager | None = None

    def _state_manager(self) -> SyncStateManager:
        """One manager per store, made on first use (its caches make repeated loads O(delta) too)."""
        if self._state_backend_manager is None:
            from ..sync_manager import SyncStateManager

            with _MANAGER_LOCK:
                if self._state_backend_manager is None:
                    self._state_backend_manager = SyncStateManager(self)
        return self._state_backend_manager

    async def save(self, state: AgentState) -> str:
        """Save ``state`` as a checkpoint on top of the agent's history; returns its id."""
        return await in_thread(self._state_manager().save_checkpoint, state)

    async def load(self, checkpoint_id: str) -> AgentState:
        """The state saved as ``checkpoint_id``; ``CheckpointNotFoundError`` if there is none."""
        return await in_thread(self._state_manager().load_checkpoint, checkpoint_id)

    async def list_checkpoints(self, agent_id: str | None = None) -> list[CheckpointMetadata]:
        """Checkpoints newest first, of one agent or of all."""
        return await in_thread(self._state_manager().list_checkpoints, agent_id)

    async def delete(self, checkpoint_id: str) -> None:
        """Delete one checkpoint. The agent's only checkpoint takes the agent with it; a checkpoint
        that later ones build on (a lineage's newest, a fork's start) is refused with ``StorageError``."""
        await in_thread(self._delete_checkpoint, checkpoint_id)

    async def exists(self, checkpoint_id: str) -> bool:
        return await in_thread(self._exists, checkpoint_id)

    def _delete_checkpoint(self, checkpoint_id: str) -> None:
        manager = self._state_manager()
        row: CheckpointRow = manager.storage.read_checkpoint(checkpoint_id)
        if [other.checkpoint_id for other in manager.storage.list_rows(row.agent_id, limit=2)] == [checkpoint_id]:
            manager.delete(row.agent_id)  # refused while a fork shares the agent's history
            return
        manager.delete_checkpoint(checkpoint_id)

    def _exists(self, checkpoint_id: str) -> bool:
        try:
            self._state_manager().storage.read_checkpoint(checkpoint_id)
        except CheckpointNotFoundError:
            return False
        except StorageError:  # present but unreadable: it exists
            return True
        return True

