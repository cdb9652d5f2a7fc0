"""Approval policy: once / all / deny_all decisions, enforced and remembered across resumes, asked
inline (a callback) or deferred (a pending call any process decides later)."""

from __future__ import annotations

from .errors import ApprovalCallbackError
from .pending import APPROVAL_MODES, AWAITING, ApprovalMode, ApprovalNotPendingError, PendingApproval
from .policy import (
    APPROVE,
    APPROVE_ALL,
    DENY,
    DENY_ALL,
    POLICIES,
    Action,
    ApprovalCallback,
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    Policy,
    as_decision,
    console_approver,
)

__all__ = [
    "APPROVAL_MODES",
    "AWAITING",
    "ApprovalMode",
    "ApprovalNotPendingError",
    "PendingApproval",
    "APPROVE",
    "APPROVE_ALL",
    "DENY",
    "DENY_ALL",
    "POLICIES",
    "Action",
    "ApprovalCallback",
    "ApprovalCallbackError",
    "ApprovalDecision",
    "ApprovalPolicy",
    "ApprovalRequest",
    "Policy",
    "as_decision",
    "console_approver",
]
