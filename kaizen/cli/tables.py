"""How records and times are shown: the approvals table and short values."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
from rich.markup import escape
from rich.table import Table

from .errors import CliError


def when(timestamp: str | datetime) -> str:
    """A stored time (ISO text or datetime) as date, time and zone, in UTC: ``2026-01-31 12:00:00 UTC``."""
    try:
        moment = timestamp if isinstance(timestamp, datetime) else datetime.fromisoformat(timestamp)
    except ValueError:
        return str(timestamp)
    moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def approvals_table(records: list[Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("time", "tool", "decision", "action", "by", "input"):
        table.add_column(column, overflow="fold", no_wrap=column == "time")
    for record in records:
        decision = "[green]approved[/green]" if record["approved"] else "[red]denied[/red]"
        if record.get("reason"):  # a deferred decision's why (redacted when it was recorded)
            decision += ": " + escape(short(record["reason"], 60))
        by = record.get("decided_by", "-") + (f" via {record['via']}" if record.get("via") else "")
        table.add_row(escape(when(record["timestamp"])), escape(record["tool_name"]), decision,
                      escape(record["action"]), escape(by), escape(short(record["input_summary"], 60)))
    return table


def short(value: Any, limit: int = 50) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def plural(count: int, word: str) -> str:
    """``1 cycle``, ``2 cycles``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
