"""How the loop settles a tool call's approval when decisions may be deferred.

The order, for every call: the policy "deny" beats everything; a deferred decision written
into the call (by ``approve``/``deny`` from any process) comes next; then standing
decisions and the policy; then a waiting call past its deadline is denied (fail closed);
then, in ``approval_mode="defer"``, the call waits for a person (the run ends with status
``awaiting_approval``), else the approval callback is asked in-process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kaizen.core.autonomy.permissions import ApprovalDecision, ApprovalRequest
from kaizen.core.autonomy.permissions.pending import (
    AWAITING, DEADLINE_DECIDER, PendingApproval, asked_entry, decision_of, is_awaiting, parse_time, undecided,
)
from kaizen.core.autonomy.state.jsonsafe import json_copy
from kaizen.core.autonomy.state.redaction import summarize_input

if TYPE_CHECKING:
    from kaizen.core.autonomy.permissions import ApprovalPolicy
    from kaizen.tools import ToolRegistry

    from .config import AutonomousConfig
    from .runtime import RunState


@dataclass(frozen=True)
class Settled:
    """A call's decision and how it came: ``recorded`` (already in the approval history: a
    deferred decision), ``record`` (extra fields of the record the loop writes: a deadline's
    denial names its call, channel and reason) and ``extra`` (for the hook payload)."""

    decision: ApprovalDecision
    recorded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)


def request_for(agent_id: str, call: Mapping[str, Any], danger: str, config: AutonomousConfig) -> ApprovalRequest:
    arguments = call["arguments"]
    return ApprovalRequest(agent_id, call["name"], json_copy(arguments), danger, call["call_id"],
                           summarize_input(arguments, config.summary_limit))


def expired(call: Mapping[str, Any], now: datetime | None = None) -> bool:
    deadline = call["approval"].get("deadline") if is_awaiting(call) else None
    return deadline is not None and (now or datetime.now(timezone.utc)) >= parse_time(deadline)


def settle(config: AutonomousConfig, approvals: ApprovalPolicy, call: Mapping[str, Any], request: ApprovalRequest,
           standing: str | None) -> Settled | None:
    """The call's decision, or None when it must wait for a person (``approval_mode="defer"``)."""
    own = decision_of(call) if is_awaiting(call) else None
    if own is not None and approvals.policy != "deny":
        decision = ApprovalDecision(bool(own["approved"]), own["action"], own["decided_by"], own.get("reason"))
        extra = {key: own[key] for key in ("via", "decided_at") if key in own}
        return Settled(decision, recorded=True, extra={**extra, "deferred": True})
    settled = approvals.decide_without_person(request, standing)
    if settled is not None:
        return Settled(settled)
    if expired(call):
        deadline = call["approval"]["deadline"]
        reason = f"nobody decided before the deadline {deadline}"
        return Settled(ApprovalDecision(False, "once", DEADLINE_DECIDER, reason),
                       extra={"via": "timeout", "deferred": True},
                       record={"via": "timeout", "call_id": call["call_id"], "reason": reason})
    if config.approval_mode == "defer":
        return None
    return Settled(approvals.decide(request, standing))


def mark_waiting(state: RunState, agent_id: str, config: AutonomousConfig, approvals: ApprovalPolicy,
                 tools: ToolRegistry, standing: Any) -> list[Mapping[str, Any]]:
    """Mark every pending call that needs a person as waiting (a call already waiting keeps when
    it was asked); returns the newly marked ones. The first pending call needs one."""
    now = datetime.now(timezone.utc)
    marked: list[Mapping[str, Any]] = []
    calls: list[Any] = []
    for index, call in enumerate(state.pending_actions):
        if index and (call.get("state") != "planned" or call["name"] not in tools):
            calls.append(call)
            continue
        tool = tools.get(call["name"]) if call["name"] in tools else None
        danger = tool.danger if tool is not None else "side_effect"
        request = request_for(agent_id, call, danger, config)
        if index and approvals.decide_without_person(request, standing(call["name"])) is not None:
            calls.append(call)
            continue
        if not is_awaiting(call):
            call = {**call, "state": AWAITING, "approval": asked_entry(
                request.input_summary, danger, approvals.why_asked(request), now, config.approval_deadline_seconds)}
            marked.append(call)
        calls.append(call)
    state.pending_actions = calls
    return marked


def still_waiting(state: RunState, agent_id: str, config: AutonomousConfig, approvals: ApprovalPolicy,
                  tools: ToolRegistry, standing: Any) -> bool:
    """A resumed run whose next call still waits for a person: nothing to do and nothing to save."""
    if config.approval_mode != "defer" or not state.pending_actions:
        return False
    call = state.pending_actions[0]
    if not undecided(call) or expired(call) or call["name"] not in tools:
        return False
    request = request_for(agent_id, call, tools.get(call["name"]).danger, config)
    return approvals.decide_without_person(request, standing(call["name"])) is None


def waiting_calls(state: RunState, agent_id: str, standing: Any) -> list[PendingApproval]:
    """The calls of a run that wait for a decision, as ``RunResult.pending_approvals`` lists them."""
    run = state.run
    return [PendingApproval.from_call(agent_id, call, run.get("id"), state.last_checkpoint_id)
            for call in state.pending_actions if undecided(call) and standing(call["name"]) is None]
