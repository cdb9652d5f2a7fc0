"""``PluginCore``: the logic of checkpoints kept in a user's own ``StorageBackend``, written once as
coroutines (the protocol is async). ``plugin.py`` tells what this path keeps and what it cannot,
and holds the sync face; ``StateManager`` awaits the core directly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from kaizen.core.values import is_int

from ...bridge import in_thread, is_async_callable
from .errors import CheckpointCorruptError, CheckpointNotFoundError, InvalidStateValueError, StateFormatError
from .ids import check_id, new_checkpoint_id
from .types import AgentState, CheckpointMetadata

log = logging.getLogger("kaizen.state")


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
        if limit is not None and (not is_int(limit) or limit < 0):
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
        if keep_last is not None and (not is_int(keep_last) or keep_last < 1):
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

    async def find_damage(self, agent_id: str) -> list[CheckpointCorruptError]:
        damaged: list[CheckpointCorruptError] = []
        for meta in await self.list_checkpoints(agent_id):
            try:
                await self.load_checkpoint(meta.checkpoint_id)
            except (StateFormatError, CheckpointNotFoundError) as exc:
                damaged.append(CheckpointCorruptError(meta.checkpoint_id, str(exc)))
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
