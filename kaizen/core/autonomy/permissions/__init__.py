"""Approval policy: once / all / deny_all decisions, enforced and remembered across resumes."""

from __future__ import annotations

from .errors import ApprovalCallbackError
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
