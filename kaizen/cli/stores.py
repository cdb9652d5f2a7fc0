"""Opening stores for the commands, and the state-core names the commands rely on.

Read commands open a store read-only: they never create a file, a table or a schema,
never migrate, and refuse a database that holds no kaizen store. Commands that write
(demo, resume, import, prune, ...) open it normally.

Every name the commands need from the state core is imported here, in one place.
Where the core of this checkout predates a name, a small fallback (marked FALLBACK)
stands in with the same meaning; each goes away once the core provides the name.
"""

from __future__ import annotations

import inspect
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from kaizen.core.autonomy.state import errors as state_errors
from kaizen.core.autonomy.state.errors import (
    CheckpointCorruptError, CheckpointNotFoundError, LeaseHeldError, StateError, StorageError,
)
from kaizen.core.autonomy.state.ids import check_id
from kaizen.core.autonomy.state.storage import DEFAULT_STORE_URL, open_store
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import CheckpointMetadata

from .errors import EXIT_TAMPERED, CliError, warn

__all__ = [
    "DEFAULT_STORE_URL", "CheckpointCorruptError", "CheckpointNotFoundError", "DamagedCheckpointError",
    "LeaseHeldError", "NotAKaizenStoreError", "ReadOnlyStoreError", "StateError", "StoreNotFoundError",
    "StorageError", "export_agent", "find_damage", "open_manager", "require_agent", "resolve_checkpoint",
    "warn_if_damaged",
]

_FALLBACK_ERROR_BASES: dict[str, type[Exception]] = {
    "StoreNotFoundError": StorageError, "NotAKaizenStoreError": StorageError, "ReadOnlyStoreError": StorageError,
    "DamagedCheckpointError": CheckpointCorruptError,
}


def _core_error(name: str) -> Any:
    """The core's error class ``name``; FALLBACK: a stand-in subclass of the same base."""
    found = getattr(state_errors, name, None)
    return found if found is not None else type(name, (_FALLBACK_ERROR_BASES[name],), {"__module__": __name__})


StoreNotFoundError: type[StorageError] = _core_error("StoreNotFoundError")
NotAKaizenStoreError: type[StorageError] = _core_error("NotAKaizenStoreError")
ReadOnlyStoreError: type[StorageError] = _core_error("ReadOnlyStoreError")
DamagedCheckpointError: type[CheckpointCorruptError] = _core_error("DamagedCheckpointError")

_OPENS_READ_ONLY = "read_only" in inspect.signature(open_store).parameters


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
    if (must_exist or read_only) and path is not None and not path.exists():
        raise CliError(f"no store at {path}; run `kaizen demo` first or pass --store URL")
    if read_only and _OPENS_READ_ONLY:
        store = open_store(store_url, read_only=True)  # type: ignore[call-arg,unused-ignore]
    else:
        if read_only and path is not None and path.is_file():
            _refuse_foreign_sqlite(path)  # FALLBACK: until open_store(read_only=True) refuses it
        store = open_store(store_url)
    manager = SyncStateManager(store)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(manager.close)  # connection pools and files closed when the command ends
    return manager


def _refuse_foreign_sqlite(path: Path) -> None:
    """FALLBACK: look at a SQLite file read-only and refuse it if it holds no kaizen tables."""
    # in a directory we cannot write, SQLite cannot make a WAL file's shared-memory index: read it as immutable
    immutable = "" if os.access(path.parent, os.W_OK) else "&immutable=1"
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro{immutable}", uri=True)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError:
        return  # could not look inside; opening the store reports what is wrong
    except sqlite3.DatabaseError as exc:
        raise NotAKaizenStoreError(f"{path} is not a kaizen store (not a SQLite database: {exc})") from None
    finally:
        conn.close()
    if not {"checkpoints", "lineages", "records"} <= tables:
        held = f"it holds other tables ({', '.join(sorted(tables)[:5])})" if tables else "it holds no tables"
        raise NotAKaizenStoreError(f"{path} is not a kaizen store: {held}; pass the --store of a kaizen store")


def require_agent(manager: SyncStateManager, agent_id: str) -> None:
    if not manager.list_checkpoints(agent_id, limit=1):
        known = manager.list_agents()
        hint = f"; agents here: {', '.join(known[:10])}" if known else "; the store has no agents"
        raise CliError(f"agent {agent_id!r} not found in {manager.storage.url}{hint}")


def find_damage(manager: SyncStateManager, agent_id: str) -> list[CheckpointCorruptError]:
    """The damaged checkpoints of ``agent_id``, newest first (empty: intact)."""
    core = getattr(manager, "find_damage", None)
    if core is not None:
        return list(core(agent_id))
    found = []  # FALLBACK: load every checkpoint until the manager offers find_damage
    for meta in manager.list_checkpoints(agent_id):
        try:
            manager.load_checkpoint(meta.checkpoint_id)
        except CheckpointCorruptError as exc:
            found.append(exc)
    return found


def warn_if_damaged(manager: SyncStateManager, agent_id: str) -> list[CheckpointCorruptError]:
    """Warn on stderr when what a read command shows of ``agent_id`` is not intact."""
    damage = find_damage(manager, agent_id)
    if damage:
        quiet_fallback_warnings()
        names = ", ".join(exc.checkpoint_id for exc in damage[:5]) + (" ..." if len(damage) > 5 else "")
        warn(f"agent {agent_id} is damaged: {len(damage)} checkpoint(s) fail their checks ({names}); "
             f"what is shown comes from intact checkpoints only; `kaizen audit verify {agent_id}` says more")
    return damage


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


def export_agent(manager: SyncStateManager, agent_id: str, allow_damaged: bool) -> dict[str, Any]:
    """``manager.export_agent``, refusing a damaged agent unless ``allow_damaged``."""
    if "allow_damaged" in inspect.signature(manager.export_agent).parameters:
        document: dict[str, Any] = manager.export_agent(agent_id, allow_damaged=allow_damaged)  # type: ignore[call-arg,unused-ignore]
        return document
    damage = find_damage(manager, agent_id)  # FALLBACK: until export_agent takes allow_damaged
    if damage and not allow_damaged:
        raise damage[0]
    return manager.export_agent(agent_id)


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
