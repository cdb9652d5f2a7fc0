"""``kaizen approvals`` / ``approve`` / ``deny``: decide the tool calls agents left waiting.

An agent run with ``approval_mode="defer"`` (``kaizen demo --defer``) does not ask at a
terminal: a call that needs a person ends the run with status ``awaiting_approval``, and
anyone with the store decides it here; ``kaizen resume`` (or a worker's
``run(resume=True)``) then continues exactly there. A decision on a call that is not
waiting (decided by someone else, past its deadline, or the agent moved on) is refused
with one line and exit code 4; nothing is written then.
"""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.markup import escape
from rich.table import Table

from kaizen.core.autonomy.permissions.pending import ApprovalNotPendingError, PendingApproval

from .app import main
from .errors import EXIT_NOT_PENDING, CliError, console, friendly
from .options import STORE_OPTION, store_suffix
from .stores import open_manager, require_agent
from .tables import short, when

REASON_OPTION = click.option("--reason", metavar="TEXT", help="Why (kept in the audit trail; secrets are redacted).")
BY_OPTION = click.option("--by", "decided_by", metavar="NAME", envvar="KAIZEN_APPROVER", show_envvar=True,
                         help="Who decides, as the audit trail names it (default: USER@HOST).")


def pending_table(pending: list[PendingApproval], title: str = "Pending approvals") -> Table:
    """One row per waiting call; the arguments get the room, the deadline a column only when one is set."""
    with_deadline = any(item.deadline is not None for item in pending)
    table = Table(title=title)
    for column in ("agent", "call", "tool"):
        table.add_column(column, overflow="fold")
    table.add_column("arguments", overflow="fold")
    table.add_column("why", overflow="fold")
    table.add_column("asked at", overflow="fold")
    if with_deadline:
        table.add_column("deadline", overflow="fold")
    for item in pending:
        row = [escape(item.agent_id), escape(item.call_id), escape(item.tool),
               escape(short(item.arguments_summary, 120)), escape(item.reason), when(item.asked_at)]
        if with_deadline:
            deadline = "-" if item.deadline is None else when(item.deadline)
            row.append("[red]expired[/red]: denied on resume" if item.expired else deadline)
        table.add_row(*row)
    return table


def how_to_decide(agent_id: str, store_url: str) -> str:
    suffix = escape(store_suffix(store_url))
    return (f"decide with: [cyan]kaizen approve {escape(agent_id)} CALL{suffix}[/cyan] or "
            f"[cyan]kaizen deny {escape(agent_id)} CALL{suffix}[/cyan] (--all: every later call of that tool too)")


def print_waiting(result: Any, store_url: str) -> None:
    """What ``kaizen resume``/``demo`` print for a run that waits: the calls and how to decide them."""
    console.print(pending_table(list(result.pending_approvals), f"{result.agent_id} is waiting for approval"))
    console.print(how_to_decide(result.agent_id, store_url), soft_wrap=True)
    console.print(f"then continue it with: [cyan]kaizen resume {escape(result.agent_id)}"
                  f"{escape(store_suffix(store_url))}[/cyan]", soft_wrap=True)


@main.command("approvals", epilog="Example: kaizen approvals demo-1 --store sqlite:///.kaizen/state.db")
@click.argument("agent_id", metavar="[AGENT]", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON list (PendingApproval fields, plus `expired`).")
@STORE_OPTION
@friendly
def approvals(agent_id: str | None, as_json: bool, store_url: str) -> None:
    """List the tool calls waiting for a decision (of AGENT, or of every agent).

    Each row says who asked (the agent), what (the tool and its arguments, secrets redacted),
    why it needs a person and since when; a call past its deadline shows as expired.
    """
    manager = open_manager(store_url)
    if agent_id is not None:
        require_agent(manager, agent_id)
    pending = manager.pending_approvals(agent_id)
    if as_json:
        click.echo(orjson.dumps([item.to_dict() for item in pending], option=orjson.OPT_INDENT_2).decode())
        return
    if not pending:
        console.print("no pending approvals" + (f" for {escape(agent_id)}" if agent_id else ""))
        return
    console.print(pending_table(pending))
    agents = {item.agent_id for item in pending}
    console.print(how_to_decide(agents.pop() if len(agents) == 1 else "AGENT", store_url), soft_wrap=True)


def decide(agent_id: str, call_id: str, approve: bool, every: bool, reason: str | None, decided_by: str | None,
           store_url: str) -> None:
    manager = open_manager(store_url, read_only=False)
    require_agent(manager, agent_id)
    action = ("all" if approve else "deny_all") if every else "once"
    try:
        if approve:
            record = manager.approve(agent_id, call_id, action, decided_by, reason, via="cli")
        else:
            record = manager.deny(agent_id, call_id, action, decided_by, reason, via="cli")
    except ApprovalNotPendingError as exc:
        raise CliError(str(exc), EXIT_NOT_PENDING) from None
    verdict = "[green]approved[/green]" if approve else "[red]denied[/red]"
    covers = f" and every later {escape(record['tool_name'])} call" if every else ""
    console.print(f"{verdict} {escape(record['tool_name'])} call {escape(call_id)} of {escape(agent_id)}{covers} "
                  f"(by {escape(record['decided_by'])}, checkpoint {record['checkpoint_id']})", soft_wrap=True)
    state = manager.load_checkpoint(record["checkpoint_id"])
    if state.metadata.get("cli", {}).get("kind") == "demo":
        how = f"[cyan]kaizen resume {escape(agent_id)}{escape(store_suffix(store_url))}[/cyan]"
    else:
        how = "run(resume=True) on the agent (a worker that polls picks it up)"
    console.print(f"the agent continues on its next resume: {how}", soft_wrap=True)


@main.command("approve", epilog="Example: kaizen approve demo-1 call_1 --all --reason 'reviewed the diff'")
@click.argument("agent_id", metavar="AGENT")
@click.argument("call_id", metavar="CALL")
@click.option("--all", "every", is_flag=True, help="Approve every later call of this tool too (approve all).")
@REASON_OPTION
@BY_OPTION
@STORE_OPTION
@friendly
def approve(agent_id: str, call_id: str, every: bool, reason: str | None, decided_by: str | None,
            store_url: str) -> None:
    """Approve AGENT's waiting tool call CALL (see `kaizen approvals`).

    The decision is saved at once (hash-chained in the audit trail, with who, when and why);
    the agent runs the call when it resumes. A call that is no longer waiting is refused
    (exit code 4); while a worker runs the agent, exit code 75.
    """
    decide(agent_id, call_id, True, every, reason, decided_by, store_url)


@main.command("deny", epilog="Example: kaizen deny demo-1 call_4 --reason 'no shell on this host'")
@click.argument("agent_id", metavar="AGENT")
@click.argument("call_id", metavar="CALL")
@click.option("--all", "every", is_flag=True, help="Deny every later call of this tool too (deny all).")
@REASON_OPTION
@BY_OPTION
@STORE_OPTION
@friendly
def deny(agent_id: str, call_id: str, every: bool, reason: str | None, decided_by: str | None,
         store_url: str) -> None:
    """Deny AGENT's waiting tool call CALL (see `kaizen approvals`).

    The agent is told the call was denied when it resumes (and stops, unless it was configured
    with on_denial="continue"). A call that is no longer waiting is refused (exit code 4).
    """
    decide(agent_id, call_id, False, every, reason, decided_by, store_url)
