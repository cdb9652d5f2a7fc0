"""Checkpoints in a user's own backend written to the original Kailash Kaizen's ``StorageBackend``
protocol: ``save(state) -> id``, ``load(id)``, ``list_checkpoints(agent_id=None)``, ``delete(id)``,
``exists(id)``, each sync or async.

Such a backend stores whole states, so this path is *not* O(delta) and has no hash chain,
conflict check or lease: those need one of our stores (see docs/migrating.md). What it keeps:
every state is validated before it is handed to the backend and after it comes back, an async
method is always awaited, and a missing checkpoint raises ``CheckpointNotFoundError``.

``PluginCore`` holds the logic once, as coroutines (the protocol is async): ``StateManager``
awaits it on the caller's event loop, ``PluginStateManager`` (what ``SyncStateManager(storage=
backend)`` returns) runs it through ``kaizen.core.bridge``.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from ...bridge import in_thread, is_async_callable, run_sync
from .errors import CheckpointNotFoundError, InvalidStateValueError, StateFormatError, StorageError
from .ids import check_id, new_checkpoint_id
from .storage.base import CheckpointStore
from .storage.state_backend import StorageBackend
from .sync_manager import SyncStateManager
from .types import AgentState, CheckpointMetadata

log = logging.getLogger("kaizen.state")
T = TypeVar("T")
PROTOCOL_METHODS = ("save", "load", "list_checkpoints", "delete", "exists")  # StorageBackend's
__all__ = ["PluginCore", "PluginStateManager", "StorageBackend", "is_plugin_backend"]


def is_plugin_backend(storage: object) -> bool:
    """True for an object with the original's five storage methods that is not one of our stores
    (ours have them too, and are recognised first by the ``CheckpointStore`` protocol)."""
    if storage is None or isinstance(storage, (str, os.PathLike)) or isinstance(storage, CheckpointStore):
        return False
    return all(callable(getattr(storage, name, None)) for name in PROTOCOL_METHODS)


class PluginCore:
    """Save, load, list, fork and prune full states in a ``StorageBackend`` plug-in."""

    def __init__(self, backend: Any, retention_count: int | None, max_age: timedelta | float | None,
                 hook_manager: Any) -> None:
        self.backend = backend
        self.retention_count = retention_count
        self.max_age = max_age
        self.hook_manager = hook_manager

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The backend's method: awaited if async, on a worker thread if sync (it may block)."""
        method = getattr(self.backend, name)
        if is_async_callable(method):
            return await method(*args, **kwargs)
        result = await in_thread(method, *args, **kwargs)
        if hasattr(result, "__await__"):  # a sync wrapper returning an awaitable
            result = await result
        return result

    async def save_checkpoint(self, state: AgentState, force: bool = False) -> str:
        checked = _checked(state, "save")
        await self._trigger("pre_checkpoint_save", checked, checkpoint_id=checked.checkpoint_id)
        returned = await self._call("save", checked)
        if returned is None:
            returned = checked.checkpoint_id
        checkpoint_id = check_id(returned, "checkpoint id returned by the storage backend's save()")
        await self._trigger("post_checkpoint_save", checked, checkpoint_id=checkpoint_id)
        if self.retention_count is not None or self.max_age is not None:
            await self.cleanup_old_checkpoints(checked.agent_id)
        return checkpoint_id

    async def load_checkpoint(self, checkpoint_id: str) -> AgentState:
        check_id(checkpoint_id, "checkpoint_id")
        try:
            loaded = await self._call("load", checkpoint_id)
        except (FileNotFoundError, KeyError) as exc:
            if isinstance(exc, CheckpointNotFoundError):
                raise
            raise CheckpointNotFoundError(
                f"checkpoint {checkpoint_id!r} is not in the storage backend {type(self.backend).__name__} "
                f"({exc}); list_checkpoints() shows what it holds"
            ) from exc
        if loaded is None:
            raise CheckpointNotFoundError(f"checkpoint {checkpoint_id!r}: the storage backend returned nothing")
        return _checked(loaded, "load")

    async def list_checkpoints(self, agent_id: str | None = None, limit: int | None = None,
                               before: str | datetime | None = None) -> list[CheckpointMetadata]:
        if agent_id is not None:
            check_id(agent_id, "agent_id")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidStateValueError(f"limit must be an int >= 0, got {limit!r}")
        listed = await self._call("list_checkpoints", agent_id=agent_id)
        metas = [_metadata(item) for item in listed or []]
        if agent_id is not None:
            metas = [meta for meta in metas if meta.agent_id == agent_id]
        if before is not None:
            cutoff = _utc(before)
            metas = [meta for meta in metas if _utc(meta.timestamp) < cutoff]
        metas.sort(key=lambda meta: _utc(meta.timestamp), reverse=True)
        return metas if limit is None else metas[:limit]

    async def list_agents(self) -> list[str]:
        return sorted({meta.agent_id for meta in await self.list_checkpoints()})

    async def load_latest(self, agent_id: str) -> AgentState | None:
        """The newest checkpoint that loads; damaged newer ones are skipped with a warning."""
        for meta in await self.list_checkpoints(agent_id):
            try:
                return await self.load_checkpoint(meta.checkpoint_id)
            except StateFormatError as exc:
                log.warning("checkpoint %s of agent %s is unreadable (%s); trying an older one",
                            meta.checkpoint_id, agent_id, exc)
        return None

    async def resume_from_latest(self, agent_id: str) -> AgentState | None:
        """The newest checkpoint of ``agent_id`` (None if it has none); it is not skipped when
        damaged: the error says which one, so resuming never silently goes back in time."""
        metas = await self.list_checkpoints(agent_id, limit=1)
        return await self.load_checkpoint(metas[0].checkpoint_id) if metas else None

    async def load_for_resume(self, checkpoint_id: str) -> AgentState:
        return await self.load_checkpoint(checkpoint_id)

    async def fork(self, checkpoint_id: str, new_agent_id: str | None = None) -> AgentState:
        """A copy of ``checkpoint_id`` under a new id whose parent is ``checkpoint_id``, saved."""
        source = await self.load_checkpoint(checkpoint_id)
        agent_id = check_id(new_agent_id, "new_agent_id") if new_agent_id is not None else source.agent_id
        if new_agent_id is not None and await self.list_checkpoints(agent_id, limit=1):
            raise InvalidStateValueError(f"agent {agent_id!r} already exists; pick a new agent id for the fork")
        forked = dataclasses.replace(source, checkpoint_id=new_checkpoint_id(), parent_checkpoint_id=checkpoint_id,
                                     agent_id=agent_id)
        await self._call("save", forked)
        return forked

    async def get_checkpoint_tree(self, agent_id: str) -> dict[str | None, list[str]]:
        tree: dict[str | None, list[str]] = {}
        for meta in reversed(await self.list_checkpoints(agent_id)):
            tree.setdefault(meta.parent_checkpoint_id, []).append(meta.checkpoint_id)
        return tree

    async def apply_retention(self, agent_id: str, keep_last: int | None = None,
                              max_age: timedelta | float | None = None) -> list[str]:
        """Delete checkpoints beyond the newest ``keep_last`` or older than ``max_age`` (never the
        newest one, nor one another checkpoint names as its parent); returns the ids deleted."""
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
            raise InvalidStateValueError(f"keep_last must be an int >= 1, got {keep_last!r}")
        metas = await self.list_checkpoints(agent_id)
        parents = {meta.parent_checkpoint_id for meta in metas}
        cutoff = None
        if max_age is not None:
            age = max_age if isinstance(max_age, timedelta) else timedelta(seconds=float(max_age))
            cutoff = datetime.now(timezone.utc) - age
        doomed = [
            meta.checkpoint_id for index, meta in enumerate(metas)
            if index > 0 and meta.checkpoint_id not in parents
            and ((keep_last is not None and index >= keep_last) or (cutoff is not None and _utc(meta.timestamp) < cutoff))
        ]
        for checkpoint_id in doomed:
            await self._call("delete", checkpoint_id)
        return doomed

    async def cleanup_old_checkpoints(self, agent_id: str) -> int:
        if self.retention_count is None and self.max_age is None:
            return 0
        return len(await self.apply_retention(agent_id, self.retention_count, self.max_age))

    async def delete_checkpoint(self, checkpoint_id: str) -> None:
        check_id(checkpoint_id, "checkpoint_id")
        try:
            await self._call("delete", checkpoint_id)
        except (FileNotFoundError, KeyError) as exc:
            if isinstance(exc, CheckpointNotFoundError):
                raise
            raise CheckpointNotFoundError(f"checkpoint {checkpoint_id!r} is not in the storage backend") from exc

    async def delete(self, agent_id: str) -> int:
        metas = await self.list_checkpoints(agent_id)
        for meta in metas:
            await self._call("delete", meta.checkpoint_id)
        return len(metas)

    async def find_damage(self, agent_id: str) -> list[Exception]:
        damaged: list[Exception] = []
        for meta in await self.list_checkpoints(agent_id):
            try:
                await self.load_checkpoint(meta.checkpoint_id)
            except (StateFormatError, CheckpointNotFoundError) as exc:
                damaged.append(exc)
        return damaged

    async def close(self) -> None:
        if callable(getattr(self.backend, "close", None)):
            await self._call("close")

    async def _trigger(self, event: str, state: AgentState, **extra: Any) -> None:
        if self.hook_manager is None:
            return
        data = {"agent_id": state.agent_id, "step_number": state.step_number, "status": state.status,
                "timestamp": datetime.now(timezone.utc).isoformat(), **extra}
        atrigger = getattr(self.hook_manager, "atrigger", None)
        if atrigger is not None:
            await atrigger(event, data, agent_id=state.agent_id)
        else:
            self.hook_manager.trigger_sync(event, data, agent_id=state.agent_id)


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
        if isinstance(checkpoint_frequency, bool) or not isinstance(checkpoint_frequency, int) or checkpoint_frequency < 1:
            raise InvalidStateValueError(f"checkpoint_frequency must be an int >= 1, got {checkpoint_frequency!r}")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
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

    def find_damage(self, agent_id: str) -> list[Exception]:
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


def _checked(value: object, where: str) -> AgentState:
    """A validated copy (a backend returns states or their dicts; both are checked)."""
    try:
        if isinstance(value, AgentState):
            return value.validated()
        if isinstance(value, Mapping):
            return AgentState.from_dict(value)
    except StateFormatError as exc:
        raise StateFormatError(f"cannot {where} through the storage backend: {exc}") from None
    raise StateFormatError(f"the storage backend's {where} gave a {type(value).__name__}, not an AgentState")


def _metadata(item: object) -> CheckpointMetadata:
    if isinstance(item, CheckpointMetadata):
        return item
    if isinstance(item, Mapping):
        return CheckpointMetadata.from_dict(item)
    fields = ("checkpoint_id", "agent_id", "timestamp", "step_number", "status", "size_bytes")
    if all(hasattr(item, name) for name in fields):  # the original's own CheckpointMetadata class
        return CheckpointMetadata(**{name: getattr(item, name) for name in fields},
                                  parent_checkpoint_id=getattr(item, "parent_checkpoint_id", None))
    raise StateFormatError(f"the storage backend listed a {type(item).__name__}, not checkpoint metadata")


def _utc(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise InvalidStateValueError(f"before must be an ISO timestamp or datetime, got {type(value).__name__}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
