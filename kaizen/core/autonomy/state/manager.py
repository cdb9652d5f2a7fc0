"""``StateManager``: the original Kailash Kaizen's async checkpoint manager, as a thin face over the
sync core (``SyncStateManager``).

Its users ``await manager.save_checkpoint(state)``; sync code uses ``SyncStateManager`` with the same
method names (httpx's ``Client``/``AsyncClient`` split). Every coroutine here runs one call of the sync
core on a worker thread (``kaizen.core.bridge.in_thread``), one call at a time per manager, so the
event loop never blocks on disk or network I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ...bridge import in_thread
from .sync_manager import SyncStateManager
from .types import AgentState, CheckpointMetadata

T = TypeVar("T")


class StateManager:
    """Async checkpoint manager (the original's name and call shapes); ``.sync`` is its sync core."""

    def __init__(
        self,
        storage: Any = None,
        checkpoint_frequency: int = 10,
        checkpoint_interval: float = 60.0,
        retention_count: int | None = None,
        hook_manager: Any = None,
        verify: str = "crc",
        *,
        keep_last: int | None = None,
        max_age: timedelta | float | None = None,
    ) -> None:
        self.sync = SyncStateManager(
            storage, checkpoint_frequency, checkpoint_interval, retention_count, hook_manager, verify,
            keep_last=keep_last, max_age=max_age,
        )
        self._lock = threading.Lock()

    @classmethod
    def wrap(cls, sync: SyncStateManager) -> StateManager:
        """The async face of an existing sync manager (they share caches and the store)."""
        face = cls.__new__(cls)
        face.sync = sync
        face._lock = threading.Lock()
        return face

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return func(*args)

        return await in_thread(locked)

    # --- settings, read through to the core -----------------------------------------------------
    @property
    def storage(self) -> Any:
        return self.sync.storage

    @property
    def checkpoint_frequency(self) -> int:
        return self.sync.checkpoint_frequency

    @property
    def checkpoint_interval(self) -> float:
        return self.sync.checkpoint_interval

    @property
    def retention_count(self) -> int | None:
        return self.sync.retention_count

    @property
    def hook_manager(self) -> Any:
        return self.sync.hook_manager

    def should_checkpoint(self, agent_id: str, current_step: int, current_time: float | None = None) -> bool:
        return self.sync.should_checkpoint(agent_id, current_step, current_time)

    # --- the coroutines ---------------------------------------------------------------------------
    async def save_checkpoint(self, state: AgentState, force: bool = False) -> str:
        return await self._run(self.sync.save_checkpoint, state, force)

    async def load_checkpoint(self, checkpoint_id: str) -> AgentState:
        return await self._run(self.sync.load_checkpoint, checkpoint_id)

    async def load_latest(self, agent_id: str) -> AgentState | None:
        return await self._run(self.sync.load_latest, agent_id)

    async def resume_from_latest(self, agent_id: str) -> AgentState | None:
        return await self._run(self.sync.resume_from_latest, agent_id)

    async def fork_from_checkpoint(self, checkpoint_id: str, new_agent_id: str | None = None) -> AgentState:
        return await self._run(self.sync.fork, checkpoint_id, new_agent_id)

    fork = fork_from_checkpoint

    async def list_checkpoints(
        self, agent_id: str | None = None, limit: int | None = None, before: str | datetime | None = None
    ) -> list[CheckpointMetadata]:
        return await self._run(self.sync.list_checkpoints, agent_id, limit, before)

    async def list_agents(self) -> list[str]:
        return await self._run(self.sync.list_agents)

    async def get_checkpoint_tree(self, agent_id: str) -> dict[str | None, list[str]]:
        return await self._run(self.sync.get_checkpoint_tree, agent_id)

    async def cleanup_old_checkpoints(self, agent_id: str) -> int:
        return await self._run(self.sync.cleanup_old_checkpoints, agent_id)

    async def apply_retention(
        self, agent_id: str, keep_last: int | None = None, max_age: timedelta | float | None = None
    ) -> list[str]:
        return await self._run(self.sync.apply_retention, agent_id, keep_last, max_age)

    async def delete(self, agent_id: str) -> int:
        return await self._run(self.sync.delete, agent_id)

    async def delete_checkpoint(self, checkpoint_id: str) -> None:
        return await self._run(self.sync.delete_checkpoint, checkpoint_id)

    async def verify_audit(self, agent_id: str) -> Any:
        return await self._run(self.sync.verify_audit, agent_id)

    async def export_agent(self, agent_id: str) -> dict[str, Any]:
        return await self._run(self.sync.export_agent, agent_id)

    async def import_agent(self, document: Any) -> str:
        return await self._run(self.sync.import_agent, document)

    async def aclose(self) -> None:
        await self._run(self.sync.close)

    def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> StateManager:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


AsyncStateManager = StateManager
