"""An agent's run as transcript entries, built from what its checkpoints hold (pure, no I/O).

The transcript is read checkpoint by checkpoint along one lineage. Each checkpoint adds a
window: the conversation messages, approval records and completed tool calls appended since
the previous one, and the tokens used since then. A ``Cursor`` counts what was already shown
of each history, so ``kaizen log --follow`` prints only what is new.

Entries are plain JSON objects with a ``kind`` (turn, tool_call, approval, tool_result,
checkpoint, summary) and a fixed set of keys per kind (docs/cli.md lists them). Every value
taken from the store is redacted here (tool arguments and outputs are stored as sent), so no
caller can show a secret in clear by forgetting to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaizen.agents.autonomous.cost import Prices, estimate_cost
from kaizen.core.autonomy.state.redaction import redact_text, redact_value
from kaizen.core.autonomy.state.types import AgentState

TERMINAL_STATUSES = frozenset({"completed", "failed", "denied", "budget_exceeded", "max_cycles"})
Entry = dict[str, Any]
Usage = dict[str, dict[str, int]]


@dataclass
class Cursor:
    """How much of each history has been turned into entries already."""

    conversation: int = 0
    approvals: int = 0
    completed: int = 0
    token_usage: Usage = field(default_factory=dict)  # cumulative, as of the last window
    early_decisions: list[tuple[str, bool]] = field(default_factory=list)  # approvals shown before their result


def window_entries(state: AgentState, cursor: Cursor, prices: Prices | None) -> list[Entry]:
    """The entries ``state`` adds to what ``cursor`` has seen (``cursor`` is advanced), then its checkpoint.

    Costs are None without ``prices`` (the run had none).
    """
    conversation = state.conversation_history[cursor.conversation:]
    delta = _token_delta(cursor.token_usage, state.token_usage)
    model_turns = sum(1 for message in conversation if message.get("role") == "assistant")
    entries: list[Entry] = []
    for message in conversation:
        role = str(message.get("role", ""))
        if role == "tool":
            entries.extend(_tool_result(state, cursor, message, prices))
        else:
            entries.append(_turn(message, role, delta if model_turns == 1 else None, prices))
            entries.extend(_tool_call(call) for call in message.get("tool_calls") or ())
    for record in state.approval_history[cursor.approvals:]:  # decided, tool not finished yet (write-ahead)
        entries.append(_approval(record))
        cursor.early_decisions.append((str(record.get("tool_name")), bool(record.get("approved"))))
    cursor.conversation = len(state.conversation_history)
    cursor.approvals = len(state.approval_history)
    cursor.token_usage = {model: dict(tokens) for model, tokens in state.token_usage.items()}
    entries.append(checkpoint_entry(state))
    return entries


def checkpoint_entry(state: AgentState) -> Entry:
    return {"kind": "checkpoint", "checkpoint_id": state.checkpoint_id, "step": state.step_number,
            "status": state.status, "time": state.timestamp.isoformat()}


def summary_entry(state: AgentState, prices: Prices | None) -> Entry:
    """How the run stands: status, calls per tool, tokens per model, estimated cost (None without prices)."""
    run = state.metadata.get("run") if isinstance(state.metadata.get("run"), Mapping) else {}
    error = run.get("error") if isinstance(run, Mapping) else None
    cost = estimate_cost(state.tool_usage_counts, state.token_usage, prices).total if prices else None
    return {"kind": "summary", "agent_id": state.agent_id, "status": state.status, "step": state.step_number,
            "checkpoint_id": state.checkpoint_id, "tool_calls": dict(state.tool_usage_counts),
            "token_usage": {model: dict(tokens) for model, tokens in state.token_usage.items()},
            "cost_usd": cost, "error": None if error is None else redact_text(str(error))}


def run_prices(state: AgentState) -> Prices | None:
    """The prices the run was configured with; None when it had none (bad ones count as none)."""
    raw = state.metadata.get("prices")
    try:
        prices = Prices.parse(raw if isinstance(raw, Mapping) else None)
    except ValueError:
        return None
    return prices if prices.tools or prices.models else None


def _turn(message: Mapping[str, Any], role: str, delta: Usage | None, prices: Prices | None) -> Entry:
    input_tokens = output_tokens = None
    cost: float | None = None
    if role == "assistant" and delta is not None:
        input_tokens = sum(tokens.get("input_tokens", 0) for tokens in delta.values())
        output_tokens = sum(tokens.get("output_tokens", 0) for tokens in delta.values())
    if role == "assistant" and prices is not None:
        call_price = prices.tools.get("LLM", 0.0)
        if delta is not None:
            cost = call_price + estimate_cost({}, delta, prices).total
        elif not prices.models:  # tokens unknown, and they cost nothing anyway
            cost = call_price
    content = message.get("content")
    return {"kind": "turn", "role": role, "content": redact_value(content) if content is not None else "",
            "tool_calls": len(message.get("tool_calls") or ()), "input_tokens": input_tokens,
            "output_tokens": output_tokens, "cost_usd": cost}


def _tool_call(call: Mapping[str, Any]) -> Entry:
    return {"kind": "tool_call", "call_id": str(call.get("id", "")), "tool": str(call.get("name", "")),
            "arguments": redact_value(call.get("arguments"))}


def _approval(record: Mapping[str, Any]) -> Entry:
    return {"kind": "approval", "tool": str(record.get("tool_name", "")), "approved": bool(record.get("approved")),
            "action": str(record.get("action", "")), "decided_by": str(record.get("decided_by", "")),
            "input_summary": redact_text(str(record.get("input_summary", ""))),
            "time": str(record.get("timestamp", ""))}


def _tool_result(state: AgentState, cursor: Cursor, message: Mapping[str, Any],
                 prices: Prices | None) -> list[Entry]:
    call_id, tool = str(message.get("tool_call_id", "")), str(message.get("name", ""))
    entries: list[Entry] = []
    approved: bool | None = None
    pending = state.approval_history[cursor.approvals:]
    if pending and pending[0].get("tool_name") == tool:
        entries.append(_approval(pending[0]))
        approved = bool(pending[0].get("approved"))
        cursor.approvals += 1
    else:
        for index, (early_tool, decision) in enumerate(cursor.early_decisions):
            if early_tool == tool:
                approved = decision
                del cursor.early_decisions[index]
                break
    action = _completed_action(state, cursor, call_id, tool)
    ok = bool(action.get("ok")) if action is not None else None
    output = action.get("output") if action is not None else message.get("content")
    error = action.get("error") if action is not None else None
    cost = None if prices is None else prices.tools.get(tool, 0.0) if approved else 0.0  # charged when approved
    entries.append({"kind": "tool_result", "call_id": call_id, "tool": tool, "ok": ok,
                    "output": redact_value(output), "error": None if error is None else redact_text(str(error)),
                    "cost_usd": cost})
    return entries


def _completed_action(state: AgentState, cursor: Cursor, call_id: str, tool: str) -> Mapping[str, Any] | None:
    for index in range(cursor.completed, len(state.completed_actions)):
        action = state.completed_actions[index]
        if action.get("call_id") == call_id and action.get("tool") == tool:
            cursor.completed = index + 1
            return action
    return None


def _token_delta(before: Usage, after: Mapping[str, Mapping[str, int]]) -> Usage:
    delta: Usage = {}
    for model, tokens in after.items():
        old = before.get(model, {})
        used = {key: int(tokens.get(key, 0)) - int(old.get(key, 0)) for key in ("input_tokens", "output_tokens")}
        if any(used.values()):
            delta[model] = used
    return delta
