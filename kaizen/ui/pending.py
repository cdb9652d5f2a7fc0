"""Pending approvals as the console lists and decides them (through the manager's public methods)."""

from __future__ import annotations

import warnings
from typing import Any

from kaizen.core.autonomy.permissions import ApprovalNotPendingError, PendingApproval
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

DECISIONS: dict[str, tuple[str, str]] = {  # form value -> (manager method, action)
    "approve": ("approve", "once"),
    "approve_all": ("approve", "all"),
    "deny": ("deny", "once"),
}
REVIEWER_LIMIT = 200
REASON_LIMIT = 1000

__all__ = ["DECISIONS", "ApprovalNotPendingError", "PendingApproval", "decide", "pending_approvals", "pending_counts"]


def pending_approvals(manager: SyncStateManager, agent_id: str | None = None) -> list[PendingApproval]:
    """Calls waiting for a person (of one agent, or of every agent), oldest request first."""
    with warnings.catch_warnings():  # a damaged agent is named by its own pages
        warnings.simplefilter("ignore", RuntimeWarning)
        found = manager.pending_approvals(agent_id)
    return sorted(found, key=lambda item: item.asked_at)


def pending_counts(manager: SyncStateManager) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in pending_approvals(manager):
        counts[item.agent_id] = counts.get(item.agent_id, 0) + 1
    return counts


def decide(manager: SyncStateManager, agent_id: str, call_id: str, decision: str, reviewer: str,
           reason: str) -> dict[str, Any]:
    """Approve or deny one pending call as ``reviewer`` (the OS user when blank), via the web;
    returns the decision record.

    ``ApprovalNotPendingError`` when it was decided already (or is unknown); ``ValueError`` for
    a decision, reviewer or reason the form should not have sent.
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision[:40]!r}; expected one of {', '.join(DECISIONS)}")
    if len(reviewer) > REVIEWER_LIMIT or len(reason) > REASON_LIMIT:
        raise ValueError(f"the reviewer name is limited to {REVIEWER_LIMIT} characters and the reason to "
                         f"{REASON_LIMIT}")
    method, action = DECISIONS[decision]
    by, why = reviewer.strip() or None, reason.strip() or None
    if method == "approve":
        record = manager.approve(agent_id, call_id, action=action, by=by, reason=why, via="web")
    else:
        record = manager.deny(agent_id, call_id, action=action, by=by, reason=why, via="web")
    return dict(record)
