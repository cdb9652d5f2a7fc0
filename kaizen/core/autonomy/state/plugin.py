"""Checkpoints in a user's own backend written to the original Kailash Kaizen's ``StorageBackend``
protocol: ``save(state) -> id``, ``load(id)``, ``list_checkpoints(agent_id=None)``, ``delete(id)``,
``exists(id)``, each sync or async.

Such a backend stores whole states, so this path is *not* O(delta) and has no hash chain,
conflict check or lease: those need one of our stores (see docs/migrating.md). What it keeps:
every state is validated before it is handed to the backend and after it comes back, an async
method is always awaited, and a missing checkpoint raises ``CheckpointNotFoundError``.

``PluginCore`` (``plugin_core.py``) holds the logic once, as coroutines (the protocol is async):
``StateManager`` awaits it on the caller's event loop, ``PluginStateManager`` (what
``SyncStateManager(storage=backend)`` returns) runs it through ``kaizen.core.bridge``.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from kaizen.core.values import is_int

from ...bridge import run_sync
from .errors import CheckpointCorruptError, InvalidStateValueError, StorageError
from .plugin_core import PluginCore
from .storage.base import CheckpointStore
from .storage.state_backend import StorageBackend
from .sync_manager import SyncStateManager
from .types import AgentState, CheckpointMetadata

T = TypeVar("T")
PROTOCOL_METHODS = ("save", "load", "list_checkpoints", "delete", "exists")  # StorageBackend's
__all__ = ["PluginCore", "PluginStateManager", "StorageBackend", "is_plugin_backend"]


def is_plugin_backend(storage: object) -> bool:
    """True for an object with the original's five storage methods that is not one of our stores
    (ours have them too, and are recognised first by the ``CheckpointStore`` protocol)."""
    if storage is None or isinstance(storage, (str, os.PathLike)) or isinstance(storage, CheckpointStore):
        return False
    return all(callable(getattr(storage, name, None)) for name in PROTOCOL_METHODS)


class PluginStateManager(SyncStateManager):
    """``SyncStateManager`` over a ``StorageBackend`` plug-in: the same method names, each one
    call of ``PluginCore`` run through the bridge (so an async backend is awaited, never skipped)."""

    def __init__(self, storage: Any = None, *args: Any, **kwargs: Any) -> None:
        # The same arguments as SyncStateManager (its __new__ sends them here), read by its signature.
        bound = inspect.signature(SyncStateManager.__init__).bind(self, storage, *args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        checkpoint_frequency, max_age = given["checkpoint_frequency"], given["max_age"]
        keep = given["keep_last"] if given["keep_last"] is not None else given["retention_count"]
        if not is_int(checkpoint_frequency) or checkpoint_frequency < 1:
            raise InvalidStateValueError(f"checkpoint_frequency must be an int >= 1, got {checkpoint_frequency!r}")
        if keep is not None and (not is_int(keep) or keep < 1):
            raise InvalidStateValueError(f"retention_count must be an int >= 1 or None, got {keep!r}")
        self.verify = given["verify"]
        self.checkpoint_interval = given["checkpoint_interval"]
        self.storage = storage
        self.checkpoint_frequency = checkpoint_frequency
        self.max_age = max_age
        self._last_save: dict[str, tuple[int, float]] = {}
        self.core = PluginCore(storage, keep, max_age, given["hook_manager"])

    # Settings live in the core (the async face reads them there too).
    @property
    def retention_count(self) -> int | None:
        return self.core.retention_count

    @retention_count.setter
    def retention_count(self, value: int | None) -> None:
        self.core.retention_count = value

    @property
    def hook_manager(self) -> Any:
        return self.core.hook_manager

    @hook_manager.setter
    def hook_manager(self, value: Any) -> None:
        self.core.hook_manager = value

    def _run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return run_sync(make)

    def save_checkpoint(self, state: AgentState, force: bool = False) -> str:
        checkpoint_id = self._run(lambda: self.core.save_checkpoint(state, force))
        self._last_save[state.agent_id] = (state.step_number, time.time())
        return checkpoint_id

    def load_checkpoint(self, checkpoint_id: str) -> AgentState:
        return self._run(lambda: self.core.load_checkpoint(checkpoint_id))

    def load_latest(self, agent_id: str) -> AgentState | None:
        return self._run(lambda: self.core.load_latest(agent_id))

    def resume_from_latest(self, agent_id: str) -> AgentState | None:
        return self._run(lambda: self.core.resume_from_latest(agent_id))

    def load_for_resume(self, checkpoint_id: str) -> AgentState:
        return self._run(lambda: self.core.load_for_resume(checkpoint_id))

    def fork(self, checkpoint_id: str, new_agent_id: str | None = None) -> AgentState:
        return self._run(lambda: self.core.fork(checkpoint_id, new_agent_id))

    fork_from_checkpoint = fork

    def list_checkpoints(self, agent_id: str | None = None, limit: int | None = None,
                         before: str | datetime | None = None) -> list[CheckpointMetadata]:
        return self._run(lambda: self.core.list_checkpoints(agent_id, limit, before))

    def list_agents(self) -> list[str]:
        return self._run(self.core.list_agents)

    def get_checkpoint_tree(self, agent_id: str) -> dict[str | None, list[str]]:
        return self._run(lambda: self.core.get_checkpoint_tree(agent_id))

    def apply_retention(self, agent_id: str, keep_last: int | None = None,
                        max_age: timedelta | float | None = None) -> list[str]:
        return self._run(lambda: self.core.apply_retention(agent_id, keep_last, max_age))

    def cleanup_old_checkpoints(self, agent_id: str) -> int:
        return self._run(lambda: self.core.cleanup_old_checkpoints(agent_id))

    def delete_checkpoint(self, checkpoint_id: str) -> None:
        self._run(lambda: self.core.delete_checkpoint(checkpoint_id))

    def delete(self, agent_id: str) -> int:
        return self._run(lambda: self.core.delete(agent_id))

    def find_damage(self, agent_id: str) -> list[CheckpointCorruptError]:
        return self._run(lambda: self.core.find_damage(agent_id))

    def close(self) -> None:
        self._run(self.core.close)

    def _unsupported(self, what: str) -> StorageError:
        return StorageError(
            f"{what} needs one of kaizen's stores (sqlite, filesystem, postgresql, memory): the storage backend "
            f"{type(self.storage).__name__} keeps whole states without the hash chain and history rows it reads"
        )

    def claim(self, agent_id: str, worker_id: str | None = None, ttl: float = 30.0, keepalive: bool = True) -> Any:
        raise self._unsupported("a lease (claim)")

    def verify_audit(self, agent_id: str) -> Any:
        raise self._unsupported("verify_audit")

    def export_agent(self, agent_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise self._unsupported("export_agent")

    def import_agent(self, document: Any, *args: Any, **kwargs: Any) -> str:
        raise self._unsupported("import_agent")
