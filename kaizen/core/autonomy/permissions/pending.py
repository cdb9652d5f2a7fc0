"""Deferred approvals: a tool call waiting in a checkpoint for a person to decide it.

With ``AutonomousConfig(approval_mode="defer")`` a call that needs a person is not sent to
a callback: the run saves the call in its checkpoint's ``pending_actions`` (marked
``"awaiting_approval"`` with an ``"approval"`` entry saying when and why it was asked) and
ends with status ``awaiting_approval``. Any process may then decide it
(``SyncStateManager.approve``/``deny``); the decision is written into the same entry (its
``"decision"``) and into the hash-chained approval history, and ``run(resume=True)``
continues from there. This module holds the shapes of that entry, so the loop, the
deciders and every reader agree on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, get_args

from .errors import PermissionError_

AWAITING = "awaiting_approval"
"""The ``state`` of a pending call, and the status of a run (and checkpoint) that waits for one."""
ApprovalMode = Literal["inline", "defer"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = get_args(ApprovalMode)
Via = Literal["api", "cli", "web", "timeout"]
VIA: tuple[Via, ...] = get_args(Via)
DEADLINE_DECIDER = "deadline"  # ``decided_by`` of a call denied because nobody decided in time


class ApprovalNotPendingError(PermissionError_, ValueError):
    """A decision on a call that is not pending: an unknown call id, a call already decided
    (the message names who decided it, when and how), a call past its deadline, or an agent
    that moved on. When two reviewers decide at once exactly one wins; the other gets this.
    Nothing stored is changed."""

    def __init__(self, agent_id: str, call_id: str, detail: str, decided_by: str | None = None,
                 decided_at: str | None = None) -> None:
        super().__init__(f"call {call_id!r} of agent {agent_id!r} is not pending: {detail}")
        self.agent_id = agent_id
        self.call_id = call_id
        self.detail = detail
        self.decided_by = decided_by
        self.decided_at = decided_at


def utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp as an aware datetime (naive text is read as UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def deadline_after(asked_at: datetime, seconds: float | None) -> str | None:
    return None if seconds is None else utc_text(asked_at + timedelta(seconds=seconds))


def _text(value: object, name: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"pending approval field {name} must be a str, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class PendingApproval:
    """One call waiting for a decision, as reviewers see it (never the raw arguments).

    ``arguments_summary`` is the redacted, length-limited text of the arguments; ``danger``
    is the tool's declared effect ("read_only", "idempotent", "side_effect"); ``reason``
    says why it needs a person; ``asked_at``/``deadline`` are ISO 8601 UTC text (after the
    deadline the call is denied on the next resume: ``expired``).
    """

    agent_id: str
    call_id: str
    tool: str
    arguments_summary: str
    danger: str
    reason: str
    asked_at: str
    deadline: str | None = None
    run_id: str | None = None
    checkpoint_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("agent_id", "call_id", "tool", "arguments_summary", "danger", "reason", "asked_at"):
            _text(getattr(self, name), name)
        for name in ("deadline", "run_id", "checkpoint_id"):
            _text(getattr(self, name), name, optional=True)
        parse_time(self.asked_at)
        if self.deadline is not None:
            parse_time(self.deadline)

    def expired_at(self, now: datetime | None = None) -> bool:
        """Whether the deadline has passed at ``now`` (default: the current time)."""
        if self.deadline is None:
            return False
        return (now or datetime.now(timezone.utc)) >= parse_time(self.deadline)

    @property
    def expired(self) -> bool:
        """True once the deadline passed: the next resume denies the call (fail closed)."""
        return self.expired_at()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, plus ``expired`` as of now."""
        return {**asdict(self), "expired": self.expired}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingApproval:
        """The inverse of ``to_dict`` (``expired`` is recomputed, not read)."""
        names = ("agent_id", "call_id", "tool", "arguments_summary", "danger", "reason", "asked_at", "deadline",
                 "run_id", "checkpoint_id")
        values: dict[str, Any] = {name: data.get(name) for name in names}
        return cls(**values)

    @classmethod
    def from_call(cls, agent_id: str, call: Mapping[str, Any], run_id: str | None = None,
                  checkpoint_id: str | None = None) -> PendingApproval:
        """The pending approval a stored ``pending_actions`` entry describes (``ValueError`` if it
        is not one awaiting a decision)."""
        if not is_awaiting(call):
            raise ValueError(f"pending action {str(call.get('call_id'))[:80]!r} is not awaiting approval")
        asked = call["approval"]
        return cls(agent_id, call["call_id"], call["name"], asked.get("summary", ""), asked.get("danger", "side_effect"),
                   asked.get("reason", ""), asked.get("asked_at"), asked.get("deadline"), run_id, checkpoint_id)


def asked_entry(summary: str, danger: str, reason: str, asked_at: datetime, deadline_seconds: float | None) -> dict[str, Any]:
    """The ``"approval"`` entry of a call that waits for a person."""
    return {"summary": summary, "danger": danger, "reason": reason, "asked_at": utc_text(asked_at),
            "deadline": deadline_after(asked_at, deadline_seconds)}


def is_awaiting(call: object) -> bool:
    """A ``pending_actions`` entry that waits for a person (decided or not)."""
    return (isinstance(call, Mapping) and call.get("state") == AWAITING and isinstance(call.get("approval"), Mapping)
            and isinstance(call.get("call_id"), str) and isinstance(call.get("name"), str))


def decision_of(call: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The deferred decision written into a waiting call, if it was decided."""
    decision = call.get("decision")
    return decision if isinstance(decision, Mapping) else None


def undecided(call: object) -> bool:
    return is_awaiting(call) and decision_of(call) is None  # type: ignore[arg-type]
