"""What the console's pages show, read through the managers (no HTML here).

The timeline is the transcript ``kaizen log`` prints (kaizen/cli/transcript.py: every stored
value redacted there), the audit page is ``kaizen audit`` plus ``audit verify``, the usage page
is ``kaizen usage`` over time. Nothing here writes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from kaizen.agents.autonomous.cost import Prices, estimate_cost
from kaizen.cli.log import lineage
from kaizen.cli.transcript import Cursor, Entry, run_prices, summary_entry, window_entries
from kaizen.core.autonomy.state.audit import AuditReport
from kaizen.core.autonomy.state.errors import CheckpointCorruptError
from kaizen.core.autonomy.state.redaction import redact_text, redact_value
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import AgentState, CheckpointMetadata

TIMELINE_CHECKPOINTS = 200  # the newest checkpoints whose windows the timeline shows
USAGE_POINTS = 60           # checkpoints sampled for the usage chart
APPROVAL_STREAM = "approval_history"


def when(moment: str | datetime | None) -> str:
    """A stored time as ``2026-01-31 12:00:00 UTC`` (unparseable text is shown as it is)."""
    if moment is None:
        return "-"
    try:
        value = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    except ValueError:
        return str(moment)
    value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def text(value: Any) -> str:
    """A redacted value as display text (JSON for structures)."""
    shown = redact_value(value)
    return shown if isinstance(shown, str) else orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode()


def quietly_load_latest(manager: SyncStateManager, agent_id: str) -> AgentState | None:
    """The newest intact checkpoint; the damage itself is shown by the audit page, not warned about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return manager.load_latest(agent_id)


# --- agents ---------------------------------------------------------------------------------------
@dataclass
class AgentRow:
    agent_id: str
    status: str
    step: int
    checkpoints: int
    last_activity: str
    cost_usd: float | None
    pending: int | None = None  # filled in by the pending-approvals reader


def agent_rows(manager: SyncStateManager) -> list[AgentRow]:
    rows = []
    for agent_id in manager.list_agents():
        listed = manager.list_checkpoints(agent_id)
        if not listed:
            continue
        newest = listed[0]
        state = quietly_load_latest(manager, agent_id)
        prices = run_prices(state) if state is not None else None
        cost = (estimate_cost(state.tool_usage_counts, state.token_usage, prices).total
                if state is not None and prices is not None else None)
        rows.append(AgentRow(agent_id, newest.status, newest.step_number, len(listed), when(newest.timestamp), cost))
    rows.sort(key=lambda row: row.last_activity, reverse=True)
    return rows


# --- timeline -------------------------------------------------------------------------------------
@dataclass
class Timeline:
    agent_id: str
    entries: list[Entry]
    summary: Entry | None
    earlier_checkpoints: int = 0       # older checkpoints of the lineage not shown
    damaged: list[str] = field(default_factory=list)  # checkpoint ids failing their checks
    forks: dict[str, list[str]] = field(default_factory=dict)  # checkpoint id -> children on other branches


def timeline(manager: SyncStateManager, agent_id: str, limit: int = TIMELINE_CHECKPOINTS) -> Timeline:
    """The newest lineage's transcript, its newest ``limit`` checkpoints, approvals with who/why."""
    chain = lineage(manager, agent_id)
    damaged = [exc.checkpoint_id for exc in manager.find_damage(agent_id)]
    shown, earlier = chain[-limit:], chain[:-limit]
    cursor = Cursor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        start = _last_intact(manager, earlier)
        if start is not None:  # begin after what the hidden checkpoints already hold
            cursor = Cursor(len(start.conversation_history), len(start.approval_history), len(start.completed_actions),
                            {model: dict(tokens) for model, tokens in start.token_usage.items()})
        first_record = cursor.approvals
        entries: list[Entry] = []
        newest: AgentState | None = None
        for meta in shown:
            try:
                state = manager.load_checkpoint(meta.checkpoint_id)
            except CheckpointCorruptError:
                entries.append({"kind": "damaged", "checkpoint_id": meta.checkpoint_id, "step": meta.step_number})
                continue
            entries.extend(window_entries(state, cursor, run_prices(state)))
            newest = state
    if newest is not None:
        _add_approval_details(entries, newest.approval_history[first_record:])
    on_chain = {meta.checkpoint_id for meta in chain}
    forks = {parent: [kid for kid in kids if kid not in on_chain]
             for parent, kids in manager.get_checkpoint_tree(agent_id).items()
             if parent in on_chain and any(kid not in on_chain for kid in kids)}
    summary = summary_entry(newest, run_prices(newest)) if newest is not None else None
    return Timeline(agent_id, entries, summary, len(earlier), damaged, {k: v for k, v in forks.items() if k})


def _last_intact(manager: SyncStateManager, metas: list[CheckpointMetadata]) -> AgentState | None:
    for meta in reversed(metas):
        try:
            return manager.load_checkpoint(meta.checkpoint_id)
        except CheckpointCorruptError:
            continue
    return None


def _add_approval_details(entries: list[Entry], records: list[dict[str, Any]]) -> None:
    """Approval entries come in record order: add each record's why, how and when (redacted)."""
    approvals = (entry for entry in entries if entry["kind"] == "approval")
    for entry, record in zip(approvals, records):
        entry["reason"] = redact_text(str(record["reason"])) if record.get("reason") else ""
        entry["via"] = str(record.get("via") or "")
        entry["decided_at"] = when(record.get("decided_at") or record.get("timestamp"))
        entry["call_id"] = str(record.get("call_id") or "")


# --- audit ----------------------------------------------------------------------------------------
@dataclass
class AuditRow:
    record: dict[str, Any]
    verdict: str  # "verified" | "tampered" | "unverified" (stored after a tampered record)


@dataclass
class AuditView:
    agent_id: str
    report: AuditReport
    rows: list[AuditRow]


def audit(manager: SyncStateManager, agent_id: str) -> AuditView:
    """The approval history of the newest intact checkpoint, then what is stored after it, flagged.

    Reading keeps only the verified part of a history; the records that failed verification
    are read as stored so the page can show them, marked, instead of hiding them.
    """
    report = manager.verify_audit(agent_id)
    state = quietly_load_latest(manager, agent_id)
    records = [dict(record) for record in state.approval_history] if state is not None else []
    rows = [AuditRow(_shown_record(record), "verified") for record in records]
    if not report.ok and report.lineage_id is not None and report.first_bad_record is not None:
        stored = manager.storage.read_records(report.lineage_id, APPROVAL_STREAM, len(records), 2**62)
        for row in stored:
            try:
                record = orjson.loads(row.data)
            except orjson.JSONDecodeError:
                record = {"input_summary": "(not valid JSON)"}
            verdict = "tampered" if row.seq == report.first_bad_record else "unverified"
            rows.append(AuditRow(_shown_record(record if isinstance(record, dict) else {}), verdict))
    return AuditView(agent_id, report, rows)


def _shown_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"time": when(record.get("decided_at") or record.get("timestamp")),
            "tool": str(record.get("tool_name", "")), "approved": bool(record.get("approved")),
            "action": str(record.get("action", "")), "by": str(record.get("decided_by") or "-"),
            "via": str(record.get("via") or ""),
            "reason": redact_text(str(record.get("reason") or "")),
            "input": redact_text(str(record.get("input_summary", "")))}


# --- usage ----------------------------------------------------------------------------------------
@dataclass
class UsagePoint:
    moment: datetime
    step: int
    cost_usd: float | None
    tokens: int
    calls: int


@dataclass
class UsageView:
    agent_id: str
    points: list[UsagePoint]
    tools: list[tuple[str, int, float | None]]           # tool, calls, cost (None: unpriced)
    models: list[tuple[str, int, int, float | None]]     # model, input, output, cost
    total_usd: float | None


def usage(manager: SyncStateManager, agent_id: str, samples: int = USAGE_POINTS) -> UsageView:
    """Cumulative cost, tokens and calls at (up to ``samples``) checkpoints of the newest lineage."""
    chain = lineage(manager, agent_id)
    step = max(1, -(-len(chain) // samples))
    picked = chain[::-1][::step][::-1]  # always includes the newest
    points: list[UsagePoint] = []
    newest: AgentState | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for meta in picked:
            try:
                state = manager.load_checkpoint(meta.checkpoint_id)
            except CheckpointCorruptError:
                continue
            prices = run_prices(state)
            cost = estimate_cost(state.tool_usage_counts, state.token_usage, prices).total if prices else None
            tokens = sum(int(t.get("input_tokens", 0)) + int(t.get("output_tokens", 0))
                         for t in state.token_usage.values())
            points.append(UsagePoint(meta.timestamp, meta.step_number, cost, tokens,
                                     sum(state.tool_usage_counts.values())))
            newest = state
    if newest is None:
        return UsageView(agent_id, points, [], [], None)
    prices = run_prices(newest) or Prices()
    estimate = estimate_cost(newest.tool_usage_counts, newest.token_usage, prices)
    tools = [(tool, count, estimate.by_tool.get(tool) if tool in prices.tools else None)
             for tool, count in sorted(newest.tool_usage_counts.items(), key=lambda item: -item[1])]
    models = [(model, int(t.get("input_tokens", 0)), int(t.get("output_tokens", 0)), estimate.by_model.get(model))
              for model, t in newest.token_usage.items()]
    return UsageView(agent_id, points, tools, models, estimate.total if run_prices(newest) else None)
