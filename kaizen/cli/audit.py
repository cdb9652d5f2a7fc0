"""``kaizen audit`` (who approved what, and ``audit verify``) and ``kaizen usage`` (what it cost)."""

from __future__ import annotations

import csv
import io
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import orjson
from rich.markup import escape
from rich.table import Table

from .app import main
from .errors import EXIT_TAMPERED, CliError, console, errors, friendly, warn
from .options import STORE_OPTION
from .stores import StateError, open_manager, require_agent, warn_if_damaged
from .tables import approvals_table, parse_time

CSV_COLUMNS = ["timestamp", "tool_name", "approved", "action", "decided_by", "input_summary"]


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
    Both exit with 3 when the agent's store was damaged or edited.
    """
    if agent_id == "verify" and verify_agent_id:
        return verify(verify_agent_id, store_url)
    if agent_id == "verify" and not has_agent(store_url, "verify"):
        raise click.UsageError("Missing argument 'AGENT_ID': `kaizen audit verify AGENT_ID` checks one agent "
                               "(`kaizen agents` lists them)")
    if verify_agent_id:
        raise CliError(f"unexpected argument {verify_agent_id!r}; did you mean `kaizen audit verify {verify_agent_id}`?")
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    damaged = warn_if_damaged(manager, agent_id)
    state = manager.load_latest(agent_id)
    records = [dict(record) for record in state.approval_history] if state is not None else []
    if tool:
        records = [r for r in records if r["tool_name"] == tool]
    if denied:
        records = [r for r in records if not r["approved"]]
    if since:
        cutoff = parse_time(since)
        records = [r for r in records if parse_time(r["timestamp"]) >= cutoff]
    if fmt == "jsonl":
        for record in records:
            click.echo(orjson.dumps(record).decode())
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        click.echo(buffer.getvalue(), nl=False)
    else:
        console.print(approvals_table(records, f"Approvals of {agent_id} ({len(records)})"))
    if damaged:
        sys.exit(EXIT_TAMPERED)


def has_agent(store_url: str, agent_id: str) -> bool:
    """Whether the store holds ``agent_id`` (False when it cannot be read: the usage error is more useful)."""
    try:
        return bool(open_manager(store_url).list_checkpoints(agent_id, limit=1))
    except (CliError, StateError, OSError):
        return False


def verify(agent_id: str, store_url: str) -> None:
    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    report = manager.verify_audit(agent_id)
    if report.ok:
        console.print(f"[green]ok[/green]: {report.records_checked} approval records and "
                      f"{report.checkpoints_checked} checkpoints of {agent_id} verify")
        return
    for problem in report.problems:
        errors.print(f"[red]tampered:[/red] {escape(problem)}", soft_wrap=True)
    sys.exit(EXIT_TAMPERED)


@main.command()
@click.argument("agent_id")
@click.option("--prices", "prices_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML prices: [tools] LLM = 0.01 ... and [models.NAME] input_per_million/output_per_million.")
@STORE_OPTION
@friendly
def usage(agent_id: str, prices_file: Path | None, store_url: str) -> None:
    """What AGENT's runs used and cost: calls per tool, tokens per model, estimated cost."""
    from kaizen.agents.autonomous.cost import Prices, estimate_cost

    manager = open_manager(store_url)
    require_agent(manager, agent_id)
    warn_if_damaged(manager, agent_id)
    state = manager.load_latest(agent_id)
    if state is None:
        raise CliError(f"agent {agent_id!r} has no intact checkpoint to read its usage from")
    try:
        raw = tomllib.loads(prices_file.read_text()) if prices_file else state.metadata.get("prices", {})
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"{prices_file} is not valid TOML: {exc}") from None
    prices = Prices.parse(raw)  # bad prices fail before any output
    cost = estimate_cost(state.tool_usage_counts, state.token_usage, prices)
    source = str(prices_file) if prices_file else ("the run's prices" if raw else "")
    console.print(tools_table(agent_id, state.tool_usage_counts, prices, cost.by_tool))
    if state.token_usage:
        console.print(models_table(state.token_usage, prices, cost.by_model))
    if not source:
        console.print("Estimated cost: unknown (no prices: pass --prices FILE.toml)")
        return
    unpriced = [f"tool {tool}" for tool in state.tool_usage_counts if tool not in prices.tools]
    unpriced += [f"model {model}" for model in state.token_usage if model not in prices.models]
    if unpriced:
        warn(f"{source} has no price for {', '.join(unpriced)}: counted as $0 in the estimate")
    console.print(f"Estimated cost: ${cost.total:.4f} ({source})")


def tools_table(agent_id: str, counts: dict[str, int], prices: Any, by_tool: dict[str, float]) -> Table:
    table = Table(title=f"Usage of {agent_id}")
    for column in ("tool", "calls", "per call", "cost"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for tool, count in sorted(counts.items(), key=lambda item: -item[1]):
        price = prices.tools.get(tool)
        table.add_row(tool, str(count), "-" if price is None else f"${price:.4f}",
                      "unpriced" if price is None else f"${by_tool.get(tool, 0.0):.4f}")
    return table


def models_table(token_usage: dict[str, dict[str, int]], prices: Any, by_model: dict[str, float]) -> Table:
    table = Table(title="Tokens")
    for column in ("model", "input", "output", "cost"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model, tokens in token_usage.items():
        cost = f"${by_model[model]:.4f}" if model in by_model else "unpriced"
        table.add_row(escape(model), str(tokens.get("input_tokens", 0)), str(tokens.get("output_tokens", 0)), cost)
    return table
