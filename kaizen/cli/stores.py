"""Opening stores for the commands, and the state-core names the commands rely on.

Read commands open a store read-only: they never create a file, a table or a schema,
never migrate, and refuse a database that holds no kaizen store. Commands that write
(demo, resume, import, prune, ...) open it normally.

Every name the commands need from the state core is imported here, in one place.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from kaizen.core.autonomy.state.errors import (
    CheckpointCorruptError, CheckpointNotFoundError, DamagedCheckpointError, LeaseHeldError, NotAKaizenStoreError,
    ReadOnlyStoreError, StateError, StorageError, StoreNotFoundError,
)
from kaizen.core.autonomy.state.ids import check_id
from kaizen.core.autonomy.state.storage import DEFAULT_STORE_URL, open_store
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import CheckpointMetadata

from .errors import CliError, warn

__all__ = [
    "DEFAULT_STORE_URL", "CheckpointCorruptError", "CheckpointNotFoundError", "DamagedCheckpointError",
    "LeaseHeldError", "NotAKaizenStoreError", "ReadOnlyStoreError", "StateError", "StoreNotFoundError",
    "StorageError", "open_manager", "require_agent", "resolve_checkpoint",
    "warn_if_damaged",
]


def store_path(store_url: str) -> Path | None:
    """The file or directory behind a sqlite:/file: URL (None for servers and memory)."""
    if store_url.startswith("sqlite:"):
        path = store_url[len("sqlite:///"):] if store_url.startswith("sqlite:///") else urlsplit(store_url).path
        return Path(path.split("?", 1)[0]) if path else None
    if store_url.startswith("file:"):
        return Path(store_url[len("file://"):] if store_url.startswith("file://") else store_url[len("file:"):])
    if "://" not in store_url and store_url.endswith((".db", ".sqlite", ".sqlite3")):
        return Path(store_url)
    return None


def open_manager(store_url: str, *, read_only: bool = True, must_exist: bool = True) -> SyncStateManager:
    """A manager on ``store_url``, closed when the command ends.

    ``read_only`` (every read command): nothing is created or changed, and a database
    without a kaizen store is refused. ``must_exist``: a missing sqlite/file store is an
    error that says how to make one, instead of an empty new store.
    """
    path = store_path(store_url)
    if path is not None:
        check_kind(store_url, path)
    if (must_exist or read_only) and path is not None and not path.exists():
        raise CliError(f"no store at {path}; run `kaizen demo` first or pass --store URL")
    store = open_store(store_url, read_only=read_only)
    manager = SyncStateManager(store)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(manager.close)  # connection pools and files closed when the command ends
    return manager


def check_kind(store_url: str, path: Path) -> None:
    """A SQLite store is a file and a filesystem store a directory: say so when the URL names the other."""
    if store_url.startswith("file:"):
        if path.exists() and not path.is_dir():
            raise CliError(f"{path} is a file, not a directory: a file:// store is a directory of its own "
                           f"(file:///path/to/dir); for a SQLite file use sqlite:///{path}")
    elif path.is_dir():
        raise CliError(f"{path} is a directory, not a SQLite file: name a file in it (sqlite:///{path}/state.db), "
                       f"or use file://{path.resolve()} for a filesystem store")


def require_agent(manager: SyncStateManager, agent_id: str) -> None:
    if not manager.list_checkpoints(agent_id, limit=1):
        known = manager.list_agents()
        hint = f"; agents here: {', '.join(known[:10])}" if known else "; the store has no agents"
        raise CliError(f"agent {agent_id!r} not found in {manager.storage.url}{hint}")


def warn_if_damaged(manager: SyncStateManager, agent_id: str) -> list[CheckpointCorruptError]:
    """Warn on stderr when what a read command shows of ``agent_id`` is not intact."""
    damage = manager.find_damage(agent_id)
    unreadable = unreadable_entries(manager, agent_id)
    if damage:
        quiet_fallback_warnings()
        names = ", ".join(exc.checkpoint_id for exc in damage[:5]) + (" ..." if len(damage) > 5 else "")
        warn(f"agent {agent_id} is damaged: {len(damage)} checkpoint(s) fail their checks ({names}); "
             f"what is shown comes from intact checkpoints only; `kaizen audit verify {agent_id}` says more")
    for entry in unreadable:
        warn(f"agent {agent_id} is damaged: {entry}")
    return damage


def unreadable_entries(manager: SyncStateManager, agent_id: str) -> list[str]:
    """Entries a filesystem store skips because they cannot be read at all (e.g. empty files)."""
    store: Any = manager.storage
    list_damaged = getattr(store, "list_damaged", None) or getattr(getattr(store, "inner", None), "list_damaged", None)
    return list(list_damaged(agent_id)) if list_damaged is not None else []


class _NamedAlready(logging.Filter):
    """Drops the state core's per-checkpoint "falling back" warnings: the command named the damage."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "falling back" not in record.getMessage()


def quiet_fallback_warnings() -> None:
    state_log, named = logging.getLogger("kaizen.state"), _NamedAlready()
    state_log.addFilter(named)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(lambda: state_log.removeFilter(named))


def resolve_checkpoint(manager: SyncStateManager, reference: str) -> CheckpointMetadata:
    """A checkpoint named by its id, a unique id prefix, an agent id (its newest) or ``latest``."""
    if reference != "latest":
        check_id(reference, "checkpoint")  # refuses paths and other malformed input, naming it
    everything = manager.list_checkpoints()
    if reference == "latest":
        if not everything:
            raise CliError(f"the store {manager.storage.url} has no checkpoints")
        return everything[0]
    exact = [meta for meta in everything if meta.checkpoint_id == reference]
    if exact:
        return exact[0]
    if reference in manager.list_agents():
        return manager.list_checkpoints(reference, limit=1)[0]
    matches = [meta for meta in everything if meta.checkpoint_id.startswith(reference)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(meta.checkpoint_id for meta in matches[:5])
        raise CliError(f"{reference!r} matches {len(matches)} checkpoints ({shown}); give more of the id")
    raise CliError(f"checkpoint {reference!r} not found in {manager.storage.url} "
                   "(give a checkpoint id or a unique prefix, an agent id, or `latest`)")
