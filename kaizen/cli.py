"""The ``kaizen`` command: run the demo, and inspect, audit, cost, resume and move agents.

Every command takes ``--store URL`` (default: the embedded SQLite file, or the
``KAIZEN_STORE`` environment variable). Errors are one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
import warnings
import tomllib
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kaizen.core.autonomy.state.errors import StateError
from kaizen.core.autonomy.state.redaction import redact_text, redact_value
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.storage import DEFAULT_STORE_URL, open_store

console = Console()
errors = Console(stderr=True)
STORE_OPTION = click.option(
    "--store", "store_url", envvar="KAIZEN_STORE", default=DEFAULT_STORE_URL, show_default=True,
    help="Store URL: sqlite:///file.db, file:///dir, postgresql://user@host/db, memory://",
)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors (and common ones) into one line on stderr and exit 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (CliError, StateError, ValueError, OSError, tomllib.TOMLDecodeError) as exc:
            errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except KeyboardInterrupt:
            errors.print("[yellow]interrupted[/yellow]")
            sys.exit(130)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug of ours: still one line, with what to report
            errors.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} "
                         "(please report it with the command you ran)", soft_wrap=True)
            sys.exit(70)

    return wrapper


def open_manager(store_url: str, *, must_exist: bool = True) -> SyncStateManager:
    store = open_store(store_url)
    path = getattr(getattr(store, "inner", store), "path", None) or getattr(store, "base_dir", None)
    if must_exist and path is not None and not Path(path).exists():
        raise CliError(f"no store at {path}; run `kaizen demo` first or pass --store URL")
    manager = SyncStateManager(store)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(manager.close)  # connection pools and files closed when the command ends
    return manager


def shown(store_url: str) -> str:
    """A store URL fit to print: any password in it replaced."""
    return redact_text(store_url)


def require_agent(manager: SyncStateManager, agent_id: str) -> None:
    if not manager.list_checkpoints(agent_id, limit=1):
        known = manager.list_agents()
        hint = f"; agents here: {', '.join(known[:10])}" if known else "; the store has no agents"
        raise CliError(f"agent {agent_id!r} not found in {manager.storage.url}{hint}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kaizen-state", prog_name="kaizen")
def main() -> None:
    """Durable, auditable state for autonomous agents.

    Start with `kaizen demo --yes`, then inspect what it stored with
    `kaizen checkpoints list AGENT`, `kaizen audit AGENT` and `kaizen usage AGENT`.
    """
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)  # libraries may lower their own loggers' levels; ours stays
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.WARNING)
    logging.getLogger("kailash").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", RuntimeWarning)  # the same warnings reach the log, once


# --- demo and resume -----------------------------------------------------------------------
@main.command()
@click.option("--yes", "-y", is_flag=True, help="Approve every tool call without asking.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Workspace (default: a new temp dir).")
@click.option("--agent-id", help="Agent id (default: demo-<random>).")
@click.option("--no-workflow", is_flag=True, help="Skip the Kailash workflow step.")
@STORE_OPTION
@friendly
def demo(yes: bool, workdir: Path | None, agent_id: str | None, no_workflow: bool, store_url: str) -> None:
    """Run a small autonomous agent offline (scripted model) on the embedded store."""
    from kaizen.core.autonomy.permissions import console_approver
    from kaizen.demo import auto_approver, build_demo_agent, has_kailash

    callback = auto_approver() if yes else console_approver()
    agent = build_demo_agent(store_url, workdir, agent_id, callback, with_workflow=has_kailash() and not no_workflow)
    click.get_current_context().call_on_close(lambda: agent._state_manager and agent._state_manager.close())
    console.print(f"[bold]kaizen demo[/bold] agent [cyan]{agent.agent_id}[/cyan]  store {escape(shown(store_url))}  "
                  f"workspace {escape(agent.metadata['cli']['workdir'])}")
    if not has_kailash():
        console.print("[dim](Kailash is not installed, so the workflow step is skipped: "
                      + escape("pip install 'kaizen-state[kailash]'") + ")[/dim]")
    _run_with_progress(agent, lambda: agent.run(task="checkpoints and approvals"), store_url)


@main.command()
@click.argument("agent_id")
@click.option("--yes", "-y", is_flag=True, help="Approve every tool call without asking.")
@STORE_OPTION
@friendly
def resume(agent_id: str, yes: bool, store_url: str) -> None:
    """Continue an interrupted run of AGENT from its latest checkpoint."""
    from kaizen.core.autonomy.permissions import console_approver
    from kaizen.demo import auto_approver, build_demo_agent

    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    state = manager.load_latest(agent_id)
    cli = state.metadata.get("cli", {}) if state else {}
    if cli.get("kind") != "demo":
        raise CliError(f"agent {agent_id!r} was not started by `kaizen demo`; resume it from Python with "
                       "BaseAutonomousAgent.resume(agent_id, config=..., signature=...) and run(resume=True)")
    run = state.metadata.get("run", {})
    if run.get("status") in ("completed", "denied"):  # interrupted, failed, ... runs continue
        console.print(f"agent {agent_id} already ended with status [bold]{run.get('status')}[/bold]; nothing to resume")
        return
    callback = auto_approver() if yes else console_approver()
    agent = build_demo_agent(store_url, Path(cli["workdir"]), agent_id, callback, cli.get("with_workflow", False))
    agent._state_manager = manager
    manager.hook_manager = agent.hooks
    console.print(f"resuming [cyan]{agent_id}[/cyan] from checkpoint {state.checkpoint_id} (step {state.step_number})")
    _run_with_progress(agent, lambda: agent.run(resume=True), store_url)


def _run_with_progress(agent: Any, start: Callable[[], Any], store_url: str) -> None:
    saves = {"count": 0}

    def on_tool(context: Any) -> None:
        data = context.data
        mark = "[green]ok[/green]" if data.get("ok") else f"[red]error[/red] {data.get('error')}"
        console.print(f"    {data.get('tool_name')} {mark}", highlight=False)

    def on_decision(context: Any) -> None:
        data = context.data
        verdict = "[green]approved[/green]" if data["approved"] else "[red]denied[/red]"
        console.print(f"  {data['tool_name']}: {verdict} ({data['action']}, by {data['decided_by']})", highlight=False)

    def on_cycle(context: Any) -> None:
        console.print(f"[bold]cycle {context.data['cycle']}[/bold]")

    def on_save(context: Any) -> None:
        saves["count"] += 1

    agent.hooks.register("pre_cycle", on_cycle)
    agent.hooks.register("approval_decided", on_decision)
    agent.hooks.register("post_tool_use", on_tool)
    agent.hooks.register("post_checkpoint_save", on_save)
    result = start()
    _print_summary(agent, result, saves["count"], store_url)


def _print_summary(agent: Any, result: Any, saves: int, store_url: str) -> None:
    console.print()
    color = "green" if result.status == "completed" else "yellow"
    console.print(f"[bold {color}]{result.status}[/bold {color}] after {result.cycles} cycles: "
                  f"{next(iter(result.outputs.values()), '') if result.outputs else result.error}")
    console.print(_approvals_table(agent._get_approval_history(), "Approvals"))
    counts = agent._get_tool_usage_counts()
    console.print("Tool usage: " + ", ".join(f"{tool} x{count}" for tool, count in counts.items()))
    cost = agent.estimate_cost()
    console.print(f"Estimated cost: ${cost.total:.4f} (demo prices)")
    console.print(f"Checkpoints written: {saves} (latest {result.checkpoint_id})")
    console.print("\nInspect it:")
    store = "" if store_url == DEFAULT_STORE_URL else f" --store '{shown(store_url)}'"
    for line in (f"kaizen checkpoints list {agent.agent_id}", f"kaizen audit {agent.agent_id}",
                 f"kaizen usage {agent.agent_id}"):
        console.print(f"  [cyan]{escape(line + store)}[/cyan]")


# --- checkpoints ---------------------------------------------------------------------------
@main.group()
def checkpoints() -> None:
    """List, show, diff, delete and prune checkpoints."""


@checkpoints.command("list")
@click.argument("agent_id")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many (newest first).")
@STORE_OPTION
@friendly
def list_checkpoints(agent_id: str, limit: int | None, store_url: str) -> None:
    """List AGENT's checkpoints, newest first."""
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    table = Table(title=f"Checkpoints of {agent_id}")
    for column in ("checkpoint", "parent", "step", "status", "saved at (UTC)", "bytes"):
        table.add_column(column, overflow="fold", no_wrap=column in ("checkpoint", "parent"))
    for meta in manager.list_checkpoints(agent_id, limit=limit):
        table.add_row(meta.checkpoint_id, meta.parent_checkpoint_id or "-", str(meta.step_number), meta.status,
                      meta.timestamp.isoformat()[5:19].replace("T", " "), str(meta.size_bytes))
    console.print(table)


@checkpoints.command("show")
@click.argument("checkpoint_id")
@click.option("--raw", is_flag=True, help="Do not redact secrets (tool arguments in the conversation are stored as sent).")
@STORE_OPTION
@friendly
def show_checkpoint(checkpoint_id: str, raw: bool, store_url: str) -> None:
    """Print one checkpoint as JSON (the spec's checkpoint data structure), secrets redacted."""
    state = open_manager(store_url).load_checkpoint(checkpoint_id)
    document = state.to_dict()
    click.echo(orjson.dumps(document if raw else redact_value(document), option=orjson.OPT_INDENT_2).decode())


@checkpoints.command("diff")
@click.argument("older")
@click.argument("newer")
@STORE_OPTION
@friendly
def diff_checkpoints(older: str, newer: str, store_url: str) -> None:
    """What changed from OLDER to NEWER: new approvals, count deltas, workflow fields."""
    manager = open_manager(store_url)
    a, b = manager.load_checkpoint(older), manager.load_checkpoint(newer)
    console.print(f"step {a.step_number} -> {b.step_number}, status {a.status} -> {b.status}")
    shared = len(a.approval_history)
    if b.approval_history[:shared] != a.approval_history:
        console.print("[yellow]the approval histories differ before the newer one's additions (different branches)[/yellow]")
    console.print(_approvals_table(b.approval_history[shared:], f"New approvals ({len(b.approval_history) - shared})"))
    for tool in sorted(set(a.tool_usage_counts) | set(b.tool_usage_counts)):
        delta = b.tool_usage_counts.get(tool, 0) - a.tool_usage_counts.get(tool, 0)
        if delta:
            console.print(f"  {tool}: {a.tool_usage_counts.get(tool, 0)} -> {b.tool_usage_counts.get(tool, 0)} ({delta:+d})")
    for key in sorted(set(a.workflow_state) | set(b.workflow_state)):
        if key == "last_updated":
            continue
        before, after = a.workflow_state.get(key, "<absent>"), b.workflow_state.get(key, "<absent>")
        if before != after:
            console.print(f"  workflow.{escape(key)}: {escape(_short(before))} -> {escape(_short(after))}",
                          highlight=False)
    added = len(b.conversation_history) - len(a.conversation_history)
    console.print(f"  conversation: {added:+d} messages, completed tool calls: "
                  f"{len(b.completed_actions) - len(a.completed_actions):+d}")


@checkpoints.command("delete")
@click.argument("checkpoint_id", required=False)
@click.option("--agent", "agent_id", help="Delete this whole agent instead (every checkpoint and record).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation when deleting an agent.")
@STORE_OPTION
@friendly
def delete_checkpoints(checkpoint_id: str | None, agent_id: str | None, yes: bool, store_url: str) -> None:
    """Delete one checkpoint, or a whole agent with --agent."""
    manager = open_manager(store_url)
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
@STORE_OPTION
@friendly
def prune(agent_id: str, keep_last: int, store_url: str) -> None:
    """Delete all but the newest N checkpoints (never a lineage head or a fork point)."""
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    deleted = manager.apply_retention(agent_id, keep_last=keep_last)
    console.print(f"deleted {len(deleted)} checkpoints of {agent_id}; history records are kept")


# --- audit and usage -------------------------------------------------------------------------
@main.command()
@click.argument("agent_id")
@click.argument("verify_agent_id", required=False, metavar="")
@click.option("--tool", help="Only this tool.")
@click.option("--denied", is_flag=True, help="Only denied calls.")
@click.option("--since", help="Only decisions at or after this ISO 8601 time.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table", show_default=True)
@STORE_OPTION
@friendly
def audit(agent_id: str, verify_agent_id: str | None, tool: str | None, denied: bool, since: str | None, fmt: str,
          store_url: str) -> None:
    """Who approved what: AGENT_ID's approval history (secrets already redacted).

    `kaizen audit verify AGENT_ID` checks the history against its hash chain instead: it names
    the first record that was changed, removed or reordered, and says if records were cut off.
    """
    if agent_id == "verify" and verify_agent_id:
        return _verify(verify_agent_id, store_url)
    if verify_agent_id:
        raise CliError(f"unexpected argument {verify_agent_id!r}; did you mean `kaizen audit verify {verify_agent_id}`?")
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    state = manager.load_latest(agent_id)
    records = [dict(r) for r in state.approval_history]
    if tool:
        records = [r for r in records if r["tool_name"] == tool]
    if denied:
        records = [r for r in records if not r["approved"]]
    if since:
        cutoff = _parse_time(since)
        records = [r for r in records if _parse_time(r["timestamp"]) >= cutoff]
    if fmt == "jsonl":
        for record in records:
            click.echo(orjson.dumps(record).decode())
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["timestamp", "tool_name", "approved", "action", "decided_by", "input_summary"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        click.echo(buffer.getvalue(), nl=False)
    else:
        console.print(_approvals_table(records, f"Approvals of {agent_id} ({len(records)})"))


def _verify(agent_id: str, store_url: str) -> None:
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    report = manager.verify_audit(agent_id)
    if report.ok:
        console.print(f"[green]ok[/green]: {report.records_checked} approval records and "
                      f"{report.checkpoints_checked} checkpoints of {agent_id} verify")
        return
    for problem in report.problems:
        errors.print(f"[red]tampered:[/red] {escape(problem)}", soft_wrap=True)
    sys.exit(2)


@main.command()
@click.argument("agent_id")
@click.option("--prices", "prices_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML prices: [tools] LLM = 0.01 ... and [models.NAME] input_per_million/output_per_million.")
@STORE_OPTION
@friendly
def usage(agent_id: str, prices_file: Path | None, store_url: str) -> None:
    """What AGENT's runs used and cost: tool counts, tokens, estimated cost."""
    from kaizen.agents.autonomous.cost import estimate_cost

    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    state = manager.load_latest(agent_id)
    try:
        prices = tomllib.loads(prices_file.read_text()) if prices_file else state.metadata.get("prices", {})
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{prices_file} is not valid TOML: {exc}") from None
    cost = estimate_cost(state.tool_usage_counts, state.token_usage, prices)  # bad prices fail before output
    table = Table(title=f"Usage of {agent_id}")
    table.add_column("tool")
    table.add_column("calls", justify="right")
    for tool, count in sorted(state.tool_usage_counts.items(), key=lambda kv: -kv[1]):
        table.add_row(tool, str(count))
    console.print(table)
    for model, tokens in state.token_usage.items():
        console.print(f"tokens ({escape(model)}): {tokens.get('input_tokens', 0)} in, "
                      f"{tokens.get('output_tokens', 0)} out")
    source = prices_file or ("the run's prices" if prices else "no prices (pass --prices FILE.toml)")
    console.print(f"Estimated cost: ${cost.total:.4f} ({source})")


# --- moving agents ---------------------------------------------------------------------------
@main.command("export")
@click.argument("agent_id")
@STORE_OPTION
@friendly
def export_agent(agent_id: str, store_url: str) -> None:
    """Write AGENT's full history as JSON to stdout (kaizen export AGENT > file.json)."""
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    sys.stdout.write(orjson.dumps(manager.export_agent(agent_id)).decode() + "\n")


@main.command("import")
@click.argument("file", type=click.File("rb"))
@STORE_OPTION
@friendly
def import_agent(file: Any, store_url: str) -> None:
    """Import an export made by `kaizen export` (verified before anything is written)."""
    try:
        document = orjson.loads(file.read())
    except orjson.JSONDecodeError as exc:
        raise CliError(f"{file.name} is not JSON: {exc}") from None
    agent_id = open_manager(store_url, must_exist=False).import_agent(document)
    console.print(f"imported agent {agent_id} into {escape(shown(store_url))}")


@main.command()
@click.argument("source_url")
@click.argument("target_url")
@friendly
def migrate(source_url: str, target_url: str) -> None:
    """Copy every agent from SOURCE_URL to TARGET_URL, verifying each one."""
    from kaizen.core.autonomy.state.transfer import migrate as copy_all

    source, target = open_manager(source_url), open_manager(target_url, must_exist=False)
    copied = copy_all(source.storage, target.storage,
                      progress=lambda agent, i, n: console.print(f"[{i}/{n}] {agent}"))
    console.print(f"copied {len(copied)} agents")


# --- encryption keys ---------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """Encryption keys for stores encrypted at rest (KAIZEN_ENCRYPTION_KEY)."""


@keys.command("generate")
def generate_key_command() -> None:
    """Print a new random key (export it as KAIZEN_ENCRYPTION_KEY; keep it out of the store)."""
    from kaizen.core.autonomy.state.storage.encrypted import generate_key

    click.echo(generate_key())


@keys.command("rotate")
@click.argument("agent_id")
@click.option("--old-key-env", default="KAIZEN_ENCRYPTION_KEY", show_default=True,
              help="Environment variable holding the current key (unset or empty: the history is unencrypted).")
@click.option("--new-key-env", default="KAIZEN_NEW_ENCRYPTION_KEY", show_default=True,
              help="Environment variable holding the new key.")
@STORE_OPTION
@friendly
def rotate_key_command(agent_id: str, old_key_env: str, new_key_env: str, store_url: str) -> None:
    """Re-encrypt AGENT_ID's whole history with a new key, in one transaction.

    Keys are read from environment variables, never from the command line (shell history).
    """
    import os

    from kaizen.core.autonomy.state.storage.encrypted import rotate_key

    new_key = os.environ.get(new_key_env)
    if not new_key:
        raise CliError(f"set {new_key_env} to the new key (make one with `kaizen keys generate`)")
    manager = open_manager(store_url)
    inner = getattr(manager.storage, "inner", manager.storage)
    require_agent(SyncStateManager(inner), agent_id)
    count = rotate_key(inner, agent_id, os.environ.get(old_key_env) or None, new_key)
    console.print(f"re-encrypted {count} records of {agent_id}; use {new_key_env}'s key from now on")


# --- helpers -----------------------------------------------------------------------------------
def _approvals_table(records: list[Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("time", "tool", "decision", "action", "by", "input"):
        table.add_column(column, overflow="fold")
    for record in records:
        decision = "[green]approved[/green]" if record["approved"] else "[red]denied[/red]"
        table.add_row(escape(record["timestamp"][11:19]), escape(record["tool_name"]), decision,
                      escape(record["action"]), escape(record.get("decided_by", "-")),
                      escape(_short(record["input_summary"], 60)))
    return table


def _short(value: Any, limit: int = 50) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


if __name__ == "__main__":
    main()
