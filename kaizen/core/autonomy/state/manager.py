"""``StateManager``: the original Kailash Kaizen's async checkpoint manager, as a thin face over the
sync core (``SyncStateManager``).

Its users ``await manager.save_checkpoint(state)``; sync code uses ``SyncStateManager`` with the same
method names (httpx's ``Client``/``AsyncClient`` split). Every coroutine here runs one call of the sync
core on a worker thread (``kaizen.core.bridge.in_thread``), one call at a time per manager, so the
event loop never blocks on disk or network I/O. With a ``StorageBackend`` plug-in the coroutines of
``plugin.PluginCore`` are awaited directly instead, on the caller's loop.
"""

from __future__ import annotations

import copy
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from kaizen.core.values import is_int, is_number

from ...bridge import in_thread
from .errors import CheckpointAlreadySavedError, InvalidStateTypeError, InvalidStateValueError
from .ids import new_checkpoint_id
from .plugin import PluginCore, PluginStateManager
from .sync_manager import SyncStateManager
from .types import AgentState, CheckpointMetadata, StateSnapshot


ORIGINAL_RETENTION_COUNT = 100


class StateManager:
    """Async checkpoint manager (the original's name, defaults and call shapes); ``.sync`` is its core.

    Defaults are the original's: ``checkpoint_frequency=10``, ``checkpoint_interval=60.0`` and
    ``retention_count=100`` (pass ``retention_count=None`` to keep every checkpoint, which is
    ``SyncStateManager``'s default). ``storage`` is one of our stores (or its URL; default the
    embedded SQLite file) or a backend written to the original's ``StorageBackend`` protocol,
    which is awaited on the caller's event loop (``plugin.py``; full states, not O(delta)).
    """

    def __init__(
        self,
        storage: Any = None,
        checkpoint_frequency: int = 10,
        checkpoint_interval: float = 60.0,
        retention_count: int | None = ORIGINAL_RETENTION_COUNT,
        hook_manager: Any = None,
        verify: str = "crc",
        *,
        keep_last: int | None = None,
        max_age: timedelta | float | None = None,
    ) -> None:
        if keep_last is not None and retention_count == ORIGINAL_RETENTION_COUNT:
            retention_count = None  # keep_last (our name) was given: the original's default yields to it
        self._adopt(SyncStateManager(
            storage, checkpoint_frequency, checkpoint_interval, retention_count, hook_manager, verify,
            keep_last=keep_last, max_age=max_age,
        ))

    @classmethod
    def wrap(cls, sync: SyncStateManager) -> StateManager:
        """The async face of an existing sync manager (they share caches and the store)."""
        face = cls.__new__(cls)
        face._adopt(sync)
        return face

    def _adopt(self, sync: SyncStateManager) -> None:
        self.sync = sync
        self._lock = threading.Lock()
        self._plugin: PluginCore | None = sync.core if isinstance(sync, PluginStateManager) else None
        # The original's step/time bookkeeping for should_checkpoint, by agent id.
        self._last_checkpoint_step: dict[str, int] = {}
        self._last_checkpoint_time: dict[str, float] = {}
        self._last_saved: dict[str, str] = {}  # agent id -> the checkpoint id this face saved last

    async def _run(self, name: str, *args: Any) -> Any:
        """One call of the core: awaited directly for a plug-in backend (its own coroutines on the
        caller's loop), else the sync core's method on a worker thread, one call at a time."""
        if self._plugin is not None:
            return await getattr(self._plugin, name)(*args)
        func = getattr(self.sync, name)

        def locked() -> Any:
            with self._lock:
                return func(*args)

        return await in_thread(locked)

    # --- settings, read and written through to the core -------------------------------------
    @property
    def storage(self) -> Any:
        return self.sync.storage

    @property
    def checkpoint_frequency(self) -> int:
        return self.sync.checkpoint_frequency

    @checkpoint_frequency.setter
    def checkpoint_frequency(self, value: int) -> None:
        if not is_int(value) or value < 1:
            raise InvalidStateValueError(f"checkpoint_frequency must be an int >= 1, got {value!r}")
        self.sync.checkpoint_frequency = value

    @property
    def checkpoint_interval(self) -> float:
        return self.sync.checkpoint_interval

    @checkpoint_interval.setter
    def checkpoint_interval(self, value: float) -> None:
        if not is_number(value) or not value >= 0:
            raise InvalidStateValueError(f"checkpoint_interval must be a number of seconds >= 0, got {value!r}")
        self.sync.checkpoint_interval = float(value)

    @property
    def retention_count(self) -> int | None:
        return self.sync.retention_count

    @retention_count.setter
    def retention_count(self, value: int | None) -> None:
        if value is not None and (not is_int(value) or value < 1):
            raise InvalidStateValueError(f"retention_count must be an int >= 1 or None, got {value!r}")
        self.sync.retention_count = value

    @property
    def hook_manager(self) -> Any:
        return self.sync.hook_manager

    def should_checkpoint(self, agent_id: str, current_step: int, current_time: float | None = None) -> bool:
        """True when ``checkpoint_frequency`` steps or ``checkpoint_interval`` seconds have passed
        since this agent's last checkpoint (sync, as in the original)."""
        if agent_id not in self._last_checkpoint_step and agent_id not in self._last_checkpoint_time:
            return self.sync.should_checkpoint(agent_id, current_step, current_time)
        now = time.time() if current_time is None else current_time
        return (current_step - self._last_checkpoint_step.get(agent_id, 0) >= self.checkpoint_frequency
                or now - self._last_checkpoint_time.get(agent_id, 0.0) >= self.checkpoint_interval)

    def create_snapshot(self, state: AgentState, reason: str = "manual") -> StateSnapshot:
        """A deep copy of ``state`` for inspection: changing the live state later leaves it as it was."""
        if not isinstance(reason, str):
            raise InvalidStateTypeError(f"snapshot reason must be a str, got {type(reason).__name__}")
        return StateSnapshot(state=copy.deepcopy(state), snapshot_reason=reason)

    # --- the coroutines ---------------------------------------------------------------------------
    async def save_checkpoint(self, state: AgentState, force: bool = False) -> str:
        """Save ``state`` and return its checkpoint id.

        The original's users save one state object again and again, changing it in between; the
        original overwrote the checkpoint each time. Here a state carrying the id of a checkpoint
        already stored (the one this manager saved last for the agent, or the agent's latest) is
        saved as a NEW checkpoint on top of it: ``state`` takes the new id (returned) and points at
        the old one as its parent, so the loop runs unchanged and every earlier checkpoint stays as
        it was (audit, time travel). If that save fails, ``state`` keeps the ids it had. (A plug-in
        ``StorageBackend`` saves as its own ``save`` does.)"""
        before = state.parent_checkpoint_id, state.checkpoint_id
        try:
            if self._plugin is None and self._last_saved.get(state.agent_id) == state.checkpoint_id:
                self._as_new_checkpoint(state)
            try:
                checkpoint_id: str = await self._run("save_checkpoint", state, force)
            except CheckpointAlreadySavedError as saved:
                if self._plugin is not None or saved.checkpoint_id != state.checkpoint_id:
                    raise
                self._as_new_checkpoint(state)
                checkpoint_id = await self._run("save_checkpoint", state, force)
        except Exception:  # (a cancelled save may still land: its new ids are kept)
            state.parent_checkpoint_id, state.checkpoint_id = before  # as it was: nothing was saved
            raise
        self._last_saved[state.agent_id] = checkpoint_id
        self._last_checkpoint_step[state.agent_id] = state.step_number
        self._last_checkpoint_time[state.agent_id] = time.time()
        return checkpoint_id

    @staticmethod
    def _as_new_checkpoint(state: AgentState) -> None:
        state.parent_checkpoint_id, state.checkpoint_id = state.checkpoint_id, new_checkpoint_id()

    async def load_checkpoint(self, checkpoint_id: str) -> AgentState:
        state: AgentState = await self._run("load_checkpoint", checkpoint_id)
        return state

    async def load_latest(self, agent_id: str) -> AgentState | None:
        state: AgentState | None = await self._run("load_latest", agent_id)
        return state

    async def resume_from_latest(self, agent_id: str) -> AgentState | None:
        state: AgentState | None = await self._run("resume_from_latest", agent_id)
        return state

    async def load_for_resume(self, checkpoint_id: str) -> AgentState:
        state: AgentState = await self._run("load_for_resume", checkpoint_id)
        return state

    async def fork_from_checkpoint(self, checkpoint_id: str, new_agent_id: str | None = None) -> AgentState:
        state: AgentState = await self._run("fork", checkpoint_id, new_agent_id)
        return state

    fork = fork_from_checkpoint

    async def list_checkpoints(
        self, agent_id: str | None = None, limit: int | None = None, before: str | datetime | None = None
    ) -> list[CheckpointMetadata]:
        metas: list[CheckpointMetadata] = await self._run("list_checkpoints", agent_id, limit, before)
        return metas

    async def list_agents(self) -> list[str]:
        agents: list[str] = await self._run("list_agents")
        return agents

    async def get_checkpoint_tree(self, agent_id: str) -> dict[str | None, list[str]]:
        tree: dict[str | None, list[str]] = await self._run("get_checkpoint_tree", agent_id)
        return tree

    async def cleanup_old_checkpoints(self, agent_id: str) -> int:
        deleted: int = await self._run("cleanup_old_checkpoints", agent_id)
        return deleted

    async def apply_retention(
        self, agent_id: str, keep_last: int | None = None, max_age: timedelta | float | None = None
    ) -> list[str]:
        deleted: list[str] = await self._run("apply_retention", agent_id, keep_last, max_age)
        return deleted

    async def delete(self, agent_id: str) -> int:
        deleted: int = await self._run("delete", agent_id)
        return deleted

    async def delete_checkpoint(self, checkpoint_id: str) -> None:
        await self._run("delete_checkpoint", checkpoint_id)

    async def verify_audit(self, agent_id: str) -> Any:
        return await self._run("verify_audit", agent_id)

    async def export_agent(self, agent_id: str) -> dict[str, Any]:
        document: dict[str, Any] = await self._run("export_agent", agent_id)
        return document

    async def import_agent(self, document: Any) -> str:
        imported: str = await self._run("import_agent", document)
        return imported

    # --- deferred approvals: the sync core's, on a worker thread (never a plug-in's) -------------
    async def pending_approvals(self, agent_id: str | None = None) -> list[Any]:
        """Tool calls waiting for a decision (``PendingApproval``), of one agent or of all."""
        return await self._in_core(lambda: self.sync.pending_approvals(agent_id))  # type: ignore[no-any-return]

    async def approve(self, agent_id: str, call_id: str, action: str = "once", by: str | None = None,
                      reason: str | None = None, via: str = "api") -> dict[str, Any]:
        return await self._in_core(  # type: ignore[no-any-return]
            lambda: self.sync.approve(agent_id, call_id, action, by, reason, via))

    async def deny(self, agent_id: str, call_id: str, action: str = "once", by: str | None = None,
                   reason: str | None = None, via: str = "api") -> dict[str, Any]:
        return await self._in_core(  # type: ignore[no-any-return]
            lambda: self.sync.deny(agent_id, call_id, action, by, reason, via))

    async def _in_core(self, call: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return call()

        return await in_thread(locked)

    async def aclose(self) -> None:
        await self._run("close")

    def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> StateManager:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


AsyncStateManager = StateManager
