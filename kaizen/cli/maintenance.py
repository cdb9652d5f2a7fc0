"""Keeping a store in shape: ``kaizen agents``, ``checkpoints delete``/``prune`` and ``vacuum``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from kaizen.core.autonomy.state.sync_manager import SyncStateManager

from .app import main
from .checkpoints import checkpoints
from .errors import CliError, console, friendly
from .options import STORE_OPTION, shown
from .stores import open_manager, require_agent, store_path
from .tables import plural, when


@main.command()
@STORE_OPTION
@friendly
def agents(store_url: str) -> None:
    """List the store's agents: status, step and last activity of each."""
    manager = open_manager(store_url)
    if not manager.list_agents():
        console.print(f"no agents in {escape(shown(store_url))}")
        return
    table = Table(title=f"Agents in {shown(store_url)}")
    for column in ("agent", "status", "step", "checkpoints", "last activity"):
        table.add_column(column, overflow="fold", no_wrap=column in ("agent", "last activity"))
    for agent_id in manager.list_agents():
        listed = manager.list_checkpoints(agent_id)
        if listed:
            newest = listed[0]
            table.add_row(agent_id, newest.status, str(newest.step_number), str(len(listed)), when(newest.timestamp))
    console.print(table)


@checkpoints.command("delete")
@click.argument("checkpoint_id", required=False)
@click.option("--agent", "agent_id", help="Delete this whole agent instead (every checkpoint and record).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation when deleting an agent.")
@STORE_OPTION
@friendly
def delete_checkpoints(checkpoint_id: str | None, agent_id: str | None, yes: bool, store_url: str) -> None:
    """Delete one checkpoint, or a whole agent with --agent."""
    if checkpoint_id and agent_id:  # which one was meant? deleting the whole agent would be the costly guess
        raise CliError("give a CHECKPOINT_ID or --agent AGENT_ID, not both")
    manager = open_manager(store_url, read_only=False)
    if agent_id:
        require_agent(manager, agent_id)
        if not yes:
            click.confirm(f"Delete agent {agent_id} and its whole history?", abort=True)
        console.print(f"deleted {manager.delete(agent_id)} checkpoints of {agent_id}")
    elif checkpoint_id:
        manager.delete_checkpoint(checkpoint_id)
        console.print(f"deleted {checkpoint_id}")
    else:
        raise CliError("give a CHECKPOINT_ID, or --agent AGENT_ID")


@checkpoints.command("prune")
@click.argument("agent_id")
@click.option("--keep-last", type=click.IntRange(min=1), required=True, help="Keep this many newest checkpoints.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@STORE_OPTION
@friendly
def prune(agent_id: str, keep_last: int, dry_run: bool, store_url: str) -> None:
    """Delete all but the newest N checkpoints (never a lineage head or a fork point), then
    shrink a SQLite file."""
    manager = open_manager(store_url, read_only=dry_run)
    require_agent(manager, agent_id)
    if dry_run:
        doomed = would_prune(manager, agent_id, keep_last)
        for checkpoint_id in doomed:
            console.print(f"  {checkpoint_id}")
        console.print(f"would delete {plural(len(doomed), 'checkpoint')} of {agent_id} (--dry-run: nothing deleted)")
        return
    deleted = manager.apply_retention(agent_id, keep_last=keep_last)
    console.print(f"deleted {plural(len(deleted), 'checkpoint')} of {agent_id}; history records are kept")
    if deleted:
        report_vacuum(store_url)


def would_prune(manager: SyncStateManager, agent_id: str, keep_last: int) -> list[str]:
    """What ``apply_retention(agent_id, keep_last)`` deletes: beyond the newest ``keep_last``,
    except lineage heads and the checkpoints forks start from."""
    listed = manager.list_checkpoints(agent_id)
    protected = {listed[0].checkpoint_id} if listed else set()
    for agent in manager.list_agents():
        for lineage in manager.storage.list_lineages(agent):
            protected.update(filter(None, (lineage.head_checkpoint_id, lineage.base_checkpoint_id)))
    return [meta.checkpoint_id for index, meta in enumerate(listed)
            if index >= keep_last and meta.checkpoint_id not in protected]


@main.command()
@STORE_OPTION
@friendly
def vacuum(store_url: str) -> None:
    """Give the space of deleted checkpoints back to the file system, and pack long histories so
    they load faster (SQLite stores)."""
    open_manager(store_url)  # refuses a missing or foreign store before anything is written
    pack_histories(store_url)
    report_vacuum(store_url, always=True)


def pack_histories(store_url: str) -> None:
    """Make the record packs a SQLite store lacks (written before packs, or cut short by a crash)."""
    path = store_path(store_url)
    if path is None or not path.is_file():
        return
    manager = open_manager(store_url, read_only=False)
    try:
        fill = getattr(manager.storage, "fill_packs", None)
        packed = int(fill()) if fill is not None else 0
    finally:
        manager.close()
    if packed:
        console.print(f"{path}: packed {plural(packed, 'block')} of 256 history entries (faster loads)")


def report_vacuum(store_url: str, always: bool = False) -> None:
    path = store_path(store_url)
    if path is None or not path.is_file():
        if always:
            console.print(f"nothing to do: {shown(store_url)} reclaims space on its own")
        return
    before, after = vacuum_sqlite(path)
    console.print(f"{path}: {before:,} -> {after:,} bytes")


def vacuum_sqlite(path: Path) -> tuple[int, int]:
    """Rewrite the SQLite file without its free pages; returns its size before and after."""
    before = path.stat().st_size
    conn = sqlite3.connect(path)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:
        raise CliError(f"cannot shrink {path}: {exc} (vacuum needs a writable store nobody else is writing)") from None
    finally:
        conn.close()
    return before, path.stat().st_size
