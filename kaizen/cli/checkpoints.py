"""``kaizen checkpoints``: list, show, diff and draw an agent's checkpoints (read-only)."""

from __future__ import annotations

import click
import orjson
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from kaizen.core.autonomy.state.redaction import redact_value
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import AgentState, CheckpointMetadata

from .app import main
from .errors import CliError, console, friendly, warn
from .options import STORE_OPTION
from .stores import open_manager, require_agent, resolve_checkpoint, warn_if_damaged
from .tables import approvals_table, short, when

CHECKPOINT_HELP = "CHECKPOINT is an id, a unique id prefix, an agent id (its newest) or `latest`."


@main.group()
def checkpoints() -> None:
    """List, show, diff, draw, delete and prune checkpoints."""


@checkpoints.command("list")
@click.argument("agent_id")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many (newest first).")
@STORE_OPTION
@friendly
def list_checkpoints(agent_id: str, limit: int | None, store_url: str) -> None:
    """List AGENT's checkpoints, newest first."""
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    damaged = {exc.checkpoint_id for exc in warn_if_damaged(manager, agent_id)}
    table = Table(title=f"Checkpoints of {agent_id}")
    for column in ("checkpoint", "parent", "step", "status", "saved at", "bytes"):
        table.add_column(column, overflow="fold", no_wrap=column in ("checkpoint", "parent"))
    for meta in manager.list_checkpoints(agent_id, limit=limit):
        status = "[red]DAMAGED[/red]" if meta.checkpoint_id in damaged else meta.status
        table.add_row(meta.checkpoint_id, meta.parent_checkpoint_id or "-", str(meta.step_number), status,
                      when(meta.timestamp), str(meta.size_bytes))
    console.print(table)


@checkpoints.command("show", epilog=CHECKPOINT_HELP)
@click.argument("checkpoint")
@click.option("--raw", is_flag=True, help="Do not redact secrets (tool arguments in the conversation are stored as sent).")
@STORE_OPTION
@friendly
def show_checkpoint(checkpoint: str, raw: bool, store_url: str) -> None:
    """Print one checkpoint as JSON (the spec's checkpoint data structure), secrets redacted."""
    manager = open_manager(store_url)
    meta = resolve_checkpoint(manager, checkpoint)
    warn_if_damaged(manager, meta.agent_id)
    document = manager.load_checkpoint(meta.checkpoint_id).to_dict()
    click.echo(orjson.dumps(document if raw else redact_value(document), option=orjson.OPT_INDENT_2).decode())


@checkpoints.command("diff", epilog=CHECKPOINT_HELP)
@click.argument("older")
@click.argument("newer")
@STORE_OPTION
@friendly
def diff_checkpoints(older: str, newer: str, store_url: str) -> None:
    """What changed from OLDER to NEWER (two checkpoints of one agent): approvals, counts, workflow."""
    manager = open_manager(store_url)
    first, second = resolve_checkpoint(manager, older), resolve_checkpoint(manager, newer)
    check_comparable(manager, first, second)
    warn_if_damaged(manager, first.agent_id)
    a, b = manager.load_checkpoint(first.checkpoint_id), manager.load_checkpoint(second.checkpoint_id)
    print_diff(a, b)


def check_comparable(manager: SyncStateManager, first: CheckpointMetadata, second: CheckpointMetadata) -> None:
    """Refuse two agents or a swapped order, naming the mismatch; warn about two branches."""
    if first.agent_id != second.agent_id:
        raise CliError(f"{first.checkpoint_id} belongs to agent {first.agent_id} and {second.checkpoint_id} to "
                       f"agent {second.agent_id}; diff compares two checkpoints of one agent")
    if first.checkpoint_id == second.checkpoint_id:
        return
    parents = {meta.checkpoint_id: meta.parent_checkpoint_id for meta in manager.list_checkpoints(first.agent_id)}
    if is_ancestor(parents, second.checkpoint_id, first.checkpoint_id):
        raise CliError(f"{first.checkpoint_id} (step {first.step_number}) is newer than {second.checkpoint_id} "
                       f"(step {second.step_number}): give the older one first, "
                       f"`kaizen checkpoints diff {second.checkpoint_id} {first.checkpoint_id}`")
    if not is_ancestor(parents, first.checkpoint_id, second.checkpoint_id):
        warn(f"{first.checkpoint_id} and {second.checkpoint_id} are on different branches of {first.agent_id}: "
             "the diff compares their ends, not one history")


def is_ancestor(parents: dict[str, str | None], ancestor: str, checkpoint: str) -> bool:
    seen: set[str] = set()
    current = parents.get(checkpoint)
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


def print_diff(a: AgentState, b: AgentState) -> None:
    console.print(f"step {a.step_number} -> {b.step_number}, status {a.status} -> {b.status}")
    shared = len(a.approval_history)
    if b.approval_history[:shared] != a.approval_history:
        console.print("[yellow]the approval histories differ before the newer one's additions (different branches)[/yellow]")
    added = list(b.approval_history[shared:])
    console.print(approvals_table(added, f"New approvals ({len(added)})"))
    for tool in sorted(set(a.tool_usage_counts) | set(b.tool_usage_counts)):
        before, after = a.tool_usage_counts.get(tool, 0), b.tool_usage_counts.get(tool, 0)
        if after != before:
            console.print(f"  {tool}: {before} -> {after} ({after - before:+d})")
    for key in sorted(set(a.workflow_state) | set(b.workflow_state)):
        if key == "last_updated":
            continue
        old, new = a.workflow_state.get(key, "<absent>"), b.workflow_state.get(key, "<absent>")
        if old != new:
            console.print(f"  workflow.{escape(key)}: {escape(short(old))} -> {escape(short(new))}", highlight=False)
    console.print(f"  conversation: {len(b.conversation_history) - len(a.conversation_history):+d} messages, "
                  f"completed tool calls: {len(b.completed_actions) - len(a.completed_actions):+d}")


@checkpoints.command("tree")
@click.argument("agent_id")
@STORE_OPTION
@friendly
def tree(agent_id: str, store_url: str) -> None:
    """Draw AGENT's checkpoints as a tree: forks branch off where they started."""
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    damaged = {exc.checkpoint_id for exc in warn_if_damaged(manager, agent_id)}
    metas = {meta.checkpoint_id: meta for meta in manager.list_checkpoints(agent_id)}
    children = manager.get_checkpoint_tree(agent_id)
    root = Tree(f"[bold]{escape(agent_id)}[/bold]")
    roots = [c for parent, kids in children.items() if parent is None or parent not in metas for c in kids]
    stack = [(root, checkpoint_id) for checkpoint_id in reversed(roots)]
    while stack:
        branch, checkpoint_id = stack.pop()
        meta = metas[checkpoint_id]
        mark = " [red]DAMAGED[/red]" if checkpoint_id in damaged else ""
        node = branch.add(f"{checkpoint_id}  step {meta.step_number}  {meta.status}{mark}")
        kids = children.get(checkpoint_id, [])
        # a straight history stays flat; only a fork point opens new branches
        if len(kids) == 1:
            stack.append((branch, kids[0]))
        else:
            stack.extend((node, kid) for kid in reversed(kids))
    console.print(root)
