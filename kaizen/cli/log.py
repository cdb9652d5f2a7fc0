"""``kaizen log``: an agent's run as a readable transcript, or JSON lines; ``--follow`` tails a live run.

Read-only: it polls the store (another process may be running the agent) and never takes the
agent's lease. Every stored value is attacker-controlled text (model output, tool output), so
it is redacted (transcript.py), stripped of terminal control characters and markup-escaped.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any

import click
import orjson
from rich.markup import escape

from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import AgentState, CheckpointMetadata

from .app import main
from .errors import EXIT_INTERRUPTED, EXIT_TAMPERED, console, errors, friendly
from .options import STORE_OPTION
from .stores import CheckpointCorruptError, open_manager, require_agent, warn_if_damaged
from .tables import short, when
from .transcript import TERMINAL_STATUSES, Cursor, Entry, run_prices, summary_entry, window_entries

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TEXT_LIMIT = 160


@main.command("log")
@click.argument("agent_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries until the run ends (or Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with a `kind` field.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True,
              help="Seconds between looks at the store with --follow.")
@STORE_OPTION
@friendly
def log(agent_id: str, follow: bool, as_json: bool, interval: float, store_url: str) -> None:
    """AGENT's run as a transcript: model turns, tool calls and results, approvals, costs, checkpoints.

    Secrets are redacted. With --follow it waits for the agent to appear, prints entries as the
    run saves them, and stops when the run has ended (completed, failed, denied,
    budget_exceeded, max_cycles).
    """
    manager = open_manager(store_url)
    show = print_json if as_json else print_text
    try:
        if follow:
            wait_for_agent(manager, agent_id, interval)
        else:
            require_agent(manager, agent_id)
        damaged = warn_if_damaged(manager, agent_id)
        newest = tail(manager, agent_id, show, follow, interval)
    except KeyboardInterrupt:  # Ctrl-C is how a reader stops following: no message
        sys.exit(EXIT_INTERRUPTED)
    if newest is not None:
        show(summary_entry(newest, run_prices(newest)))
    if damaged:
        sys.exit(EXIT_TAMPERED)


def wait_for_agent(manager: SyncStateManager, agent_id: str, interval: float) -> None:
    if manager.list_checkpoints(agent_id, limit=1):
        return
    errors.print(f"waiting for agent {escape(agent_id)} to save its first checkpoint (Ctrl-C to stop)",
                 highlight=False, soft_wrap=True)
    while not manager.list_checkpoints(agent_id, limit=1):
        time.sleep(interval)


def tail(manager: SyncStateManager, agent_id: str, show: Any, follow: bool, interval: float) -> AgentState | None:
    """Show each not-yet-shown checkpoint of the newest lineage, oldest first; with ``follow``, until the run ends."""
    cursor, shown_ids, newest = Cursor(), set[str](), None
    while True:
        for meta in lineage(manager, agent_id):
            if meta.checkpoint_id in shown_ids:
                continue
            shown_ids.add(meta.checkpoint_id)
            try:
                state = manager.load_checkpoint(meta.checkpoint_id)
            except CheckpointCorruptError:  # named by warn_if_damaged; the next intact one carries on
                continue
            for entry in window_entries(state, cursor, run_prices(state)):
                show(entry)
            newest = state
        sys.stdout.flush()
        if not follow or (newest is not None and newest.status in TERMINAL_STATUSES):
            return newest
        time.sleep(interval)


def lineage(manager: SyncStateManager, agent_id: str) -> list[CheckpointMetadata]:
    """The newest checkpoint and its ancestors, oldest first (forks elsewhere are left out).

    A deleted ancestor (``checkpoints delete``) is stepped over: the walk goes on with the next
    older checkpoint of the same lineage.
    """
    metas = manager.list_checkpoints(agent_id)  # newest first
    position = {meta.checkpoint_id: index for index, meta in enumerate(metas)}
    chain: list[CheckpointMetadata] = []
    index: int | None = 0 if metas else None
    while index is not None:
        current = metas[index]
        chain.append(current)
        parent = current.parent_checkpoint_id
        if parent is None:
            break
        following = position.get(parent)
        if following is None:
            following = next((later for later in range(index + 1, len(metas))
                              if metas[later].lineage_id == current.lineage_id), None)
        index = following if following is not None and following > index else None
    return chain[::-1]


def print_json(entry: Entry) -> None:
    click.echo(orjson.dumps(entry).decode())


def print_text(entry: Entry) -> None:
    console.print(render(entry), highlight=False, soft_wrap=True)


def render(entry: Entry) -> str:
    """One entry as one line of rich markup; every stored value escaped."""
    kind = entry["kind"]
    if kind == "turn":
        who = {"assistant": "model", "user": "user", "system": "system"}.get(entry["role"], entry["role"])
        tokens = (f" ({entry['input_tokens']} in / {entry['output_tokens']} out)"
                  if entry["input_tokens"] is not None else "")
        return f"[bold]{safe(who)}[/bold]: {safe(entry['content'])}[dim]{tokens}{money(entry['cost_usd'])}[/dim]"
    if kind == "tool_call":
        return f"  [cyan]call[/cyan] {safe(entry['tool'])} {safe(entry['call_id'])} {safe(entry['arguments'])}"
    if kind == "approval":
        decision = "[green]approved[/green]" if entry["approved"] else "[red]denied[/red]"
        return (f"  {decision} {safe(entry['tool'])} by {safe(entry['decided_by'])} ({safe(entry['action'])}): "
                f"{safe(entry['input_summary'])}")
    if kind == "tool_result":
        status = ("[green]ok[/green]" if entry["ok"] else "[red]error[/red]") if entry["ok"] is not None else "done"
        shown = entry["error"] if entry["ok"] is False and entry["error"] else entry["output"]
        return (f"  [cyan]result[/cyan] {safe(entry['tool'])} {safe(entry['call_id'])} {status}: {safe(shown)}"
                f"[dim]{money(entry['cost_usd'])}[/dim]")
    if kind == "checkpoint":
        return (f"[dim]-- checkpoint {safe(entry['checkpoint_id'])} step {entry['step']} {safe(entry['status'])} "
                f"at {safe(when(entry['time']))}[/dim]")
    cost = "unknown (the run had no prices)" if entry["cost_usd"] is None else f"${entry['cost_usd']:.4f}"
    calls = ", ".join(f"{safe(tool)} x{count}" for tool, count in entry["tool_calls"].items())
    error = f", error: {safe(entry['error'])}" if entry["error"] else ""
    return (f"[bold]{safe(entry['agent_id'])}[/bold] {safe(entry['status'])} at step {entry['step']}{error}; "
            f"tool calls: {calls or 'none'}; estimated cost: {cost}")


def safe(value: Any, limit: int = TEXT_LIMIT) -> str:
    """A stored value as one short line: no control characters, no markup."""
    text = short(value if isinstance(value, str) else orjson.dumps(value).decode(), limit)
    return escape(_CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text.replace("\n", " ")))


def money(cost: float | None) -> str:
    return "" if cost is None else f" ${cost:.4f}"
