"""Moving agents: ``kaizen export``, ``import`` and ``migrate``."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson
from rich.markup import escape

from .app import main
from .errors import EXIT_TAMPERED, CliError, console, friendly
from .options import STORE_OPTION, shown
from .stores import CheckpointCorruptError, open_manager, require_agent, warn_if_damaged


@main.command("export")
@click.argument("agent_id")
@click.option("--allow-damaged", is_flag=True,
              help="Export a damaged agent anyway: what is intact, with the damaged checkpoints listed.")
@STORE_OPTION
@friendly
def export_command(agent_id: str, allow_damaged: bool, store_url: str) -> None:
    """Write AGENT's full history as JSON to stdout (kaizen export AGENT > file.json)."""
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    if allow_damaged:
        warn_if_damaged(manager, agent_id)
    try:
        document = manager.export_agent(agent_id, allow_damaged=allow_damaged)
    except CheckpointCorruptError as exc:
        raise CliError(f"agent {agent_id!r} is not exported: {exc}; `kaizen audit verify {agent_id}` says more, "
                       "--allow-damaged exports what is intact and lists the damage", EXIT_TAMPERED) from None
    sys.stdout.write(orjson.dumps(document).decode() + "\n")


@main.command("import")
@click.argument("file", type=click.File("rb"))
@STORE_OPTION
@friendly
def import_command(file: Any, store_url: str) -> None:
    """Import an export made by `kaizen export` (verified before anything is written)."""
    try:
        document = orjson.loads(file.read())
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{file.name} is not JSON: {exc}") from None
    agent_id = open_manager(store_url, read_only=False, must_exist=False).import_agent(document)
    console.print(f"imported agent {agent_id} into {escape(shown(store_url))}")


@main.command()
@click.argument("source_url")
@click.argument("target_url")
@friendly
def migrate(source_url: str, target_url: str) -> None:
    """Copy every agent from SOURCE_URL to TARGET_URL, verifying each one."""
    from kaizen.core.autonomy.state.transfer import migrate as copy_all

    source = open_manager(source_url)
    target = open_manager(target_url, read_only=False, must_exist=False)
    present = sorted(set(source.list_agents()) & set(target.list_agents()))
    if present:  # refused before the first copy, rather than stopping half way
        names = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
        which = f"agent {names}" if len(present) == 1 else f"each of {len(present)} agents ({names})"
        raise CliError(f"{which} already exists in {shown(target_url)}; nothing was copied. Delete "
                       f"{'it' if len(present) == 1 else 'them'} there (`kaizen checkpoints delete --agent AGENT`) "
                       "or migrate into another store")
    copied = copy_all(source.storage, target.storage,
                      progress=lambda agent, i, n: console.print(f"[{i}/{n}] {agent}"))
    console.print(f"copied {len(copied)} agents")
