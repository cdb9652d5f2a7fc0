"""Approval policy: who decides whether a tool call runs, and how that decision is enforced.

Decisions follow the original's prompt: Approve (once), Approve All ("all"),
Deny (once) and Deny All ("deny_all"). "all" and "deny_all" are *standing*
decisions: they answer every later call of that tool without asking. They are
read from the approval history, so an agent restored from a checkpoint keeps
them and does not ask again.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TextIO, get_args

from ...bridge import resolve
from .errors import ApprovalCallbackError

Policy = Literal["ask", "allow_safe", "allow_all", "deny"]
"""Who decides tool calls: see ``ApprovalPolicy``."""
Action = Literal["once", "all", "deny_all"]
POLICIES: tuple[Policy, ...] = get_args(Policy)
READ_ONLY = ("read_only", "safe")  # "safe": the earlier name of read_only


@dataclass(frozen=True)
class ApprovalRequest:
    """What an approver is shown: the tool, its input and what running it does to the world
    (``danger``: "read_only", "idempotent" or "side_effect", as the tool declares)."""

    agent_id: str
    tool_name: str
    tool_input: dict[str, Any]
    danger: str = "side_effect"
    call_id: str | None = None
    input_summary: str = ""


@dataclass(frozen=True)
class ApprovalDecision:
    """An approver's answer, in the spec's terms (``action``: once / all / deny_all)."""

    approved: bool
    action: Action = "once"
    decided_by: str = "user"
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("once", "all", "deny_all"):
            raise ApprovalCallbackError(f"decision action {self.action!r} is not once, all or deny_all")
        if (self.action == "all" and not self.approved) or (self.action == "deny_all" and self.approved):
            raise ApprovalCallbackError(f"decision approved={self.approved} contradicts action {self.action!r}")


APPROVE = ApprovalDecision(True, "once")
APPROVE_ALL = ApprovalDecision(True, "all")
DENY = ApprovalDecision(False, "once")
DENY_ALL = ApprovalDecision(False, "deny_all")
_WORDS = {
    "approve": APPROVE, "once": APPROVE, "yes": APPROVE, "y": APPROVE, "a": APPROVE,
    "all": APPROVE_ALL, "approve_all": APPROVE_ALL, "A": APPROVE_ALL,
    "deny": DENY, "no": DENY, "n": DENY, "d": DENY,
    "deny_all": DENY_ALL, "D": DENY_ALL,
}

ApprovalCallback = Callable[[ApprovalRequest], "ApprovalDecision | bool | str | Awaitable[Any]"]


def as_decision(answer: Any) -> ApprovalDecision:
    """Accept what a callback may return: a decision, a bool, or a word (approve/all/deny/deny_all)."""
    if isinstance(answer, ApprovalDecision):
        return answer
    if isinstance(answer, bool):
        return APPROVE if answer else DENY
    if isinstance(answer, str) and (answer in _WORDS or answer.lower() in _WORDS):
        return _WORDS.get(answer, _WORDS.get(answer.lower()))  # type: ignore[return-value]
    raise ApprovalCallbackError(
        f"approval callback returned {answer!r}; return an ApprovalDecision, a bool, or one of "
        "'approve', 'all', 'deny', 'deny_all'"
    )


def _call(callback: ApprovalCallback, request: ApprovalRequest) -> Any:
    """Run a sync or async callback from sync code (async ones on the one bridge loop)."""
    return resolve(callback(request))


class ApprovalPolicy:
    """Decides tool calls: standing decisions first, then the policy, then the approver.

    ``policy``: "ask" (ask the callback for every call not covered by a standing
    decision), "allow_safe" (read-only tools run without asking; every other one is
    asked), "allow_all" (everything runs; still recorded), "deny" (nothing runs).
    Without a callback, "ask" denies with a reason rather than blocking forever.
    A sync callback is called directly; an async one runs on the sync/async bridge.
    """

    def __init__(self, policy: Policy = "ask", callback: ApprovalCallback | None = None) -> None:
        if policy not in POLICIES:
            raise ValueError(f"approval policy {policy!r} is not one of {', '.join(POLICIES)}")
        self.policy: Policy = policy
        self.callback = callback

    def decide(self, request: ApprovalRequest, standing: str | None) -> ApprovalDecision:
        settled = self.decide_without_person(request, standing)
        if settled is not None:
            return settled
        if self.callback is None:
            return ApprovalDecision(False, "once", "policy", "no approver is configured for a tool that needs one")
        return as_decision(_call(self.callback, request))


    def decide_without_person(self, request: ApprovalRequest, standing: str | None) -> ApprovalDecision | None:
        """The decision the policy and standing decisions make on their own; None when the call
        needs a person (the callback, or a deferred decision)."""
        if self.policy == "deny":  # the operator's "nothing runs" beats any earlier "approve all"
            return ApprovalDecision(False, "once", "policy", "policy deny")
        if standing == "all":
            return ApprovalDecision(True, "all", "standing", "an earlier 'approve all' covers this tool")
        if standing == "deny_all":
            return ApprovalDecision(False, "deny_all", "standing", "an earlier 'deny all' covers this tool")
        if self.policy == "allow_all" or (self.policy == "allow_safe" and request.danger in READ_ONLY):
            return ApprovalDecision(True, "once", "policy", f"policy {self.policy}")
        return None

    def why_asked(self, request: ApprovalRequest) -> str:
        """Why a call needs a person, in words a reviewer reads."""
        return f"{request.danger} tool, policy {self.policy}"


def _shown(danger: str) -> str:
    """How the prompt names a danger level: a tool with side effects is "dangerous" to a person."""
    return {"read_only": "read-only", "safe": "read-only", "side_effect": "dangerous"}.get(danger, danger)


def console_approver(stream_in: TextIO | None = None, stream_out: TextIO | None = None) -> ApprovalCallback:
    """The interactive prompt: [a]pprove once, approve [A]ll, [d]eny, [D]eny all."""

    def ask(request: ApprovalRequest) -> ApprovalDecision:
        source = stream_in or sys.stdin
        out = stream_out or sys.stderr
        out.write(f"\nAgent {request.agent_id} wants to run {request.tool_name} ({_shown(request.danger)}):\n")
        out.write(f"  {request.input_summary}\n")
        while True:
            out.write("  [a]pprove once, approve [A]ll, [d]eny, [D]eny all > ")
            out.flush()
            line = source.readline()
            if not line:
                return ApprovalDecision(False, "once", "user", "no answer (end of input)")
            answer = line.strip()
            if answer in ("a", "A", "d", "D"):
                return as_decision(answer)
            out.write("  please type a, A, d or D\n")

    return ask
