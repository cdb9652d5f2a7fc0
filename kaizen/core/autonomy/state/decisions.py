"""Deciding deferred approvals from any process, with nothing but the store.

A run in ``approval_mode="defer"`` ends with its waiting calls in the head checkpoint
(``permissions/pending.py``). ``decide`` writes a person's answer as a new checkpoint on
top of that head: the decision goes into the waiting call's entry and into the
hash-chained approval history (who, when, via what, why, which call). Two rules make it
safe with many reviewers and workers:

* the write is a compare-and-set on the lineage head (every store's ``write`` refuses a
  plan whose parent is no longer the head), so of two reviewers deciding at once exactly
  one wins; the other re-reads, finds the call decided and gets ``ApprovalNotPendingError``;
* a decision lands only on a head whose status is ``awaiting_approval``: a resume under way
  has saved a "running" checkpoint before any tool runs, so a decision never lands under a
  running agent (it is refused until the run waits again), and a resume that loaded the head
  before a decision landed fails its first save instead of overwriting it;
* the decider holds the agent's lease while it reads and writes (a few milliseconds): while a
  worker holds the lease the decision is refused with ``LeaseHeldError`` (after waiting briefly
  for a worker that only polls).
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import socket
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from ..permissions.pending import (
    AWAITING, ApprovalNotPendingError, PendingApproval, decision_of, is_awaiting, parse_time, undecided,
)
from .errors import CheckpointConflictError, InvalidStateValueError, LeaseHeldError, StorageError
from .frozen import FrozenDict
from .ids import check_id, new_checkpoint_id
from .lease import claim
from .records import check_tool_name, make_approval_record
from .storage.rows import plan_save
from .types import AgentState

if TYPE_CHECKING:
    from .sync_manager import SyncStateManager

log = logging.getLogger("kaizen.state")

PersonVia = Literal["api", "cli", "web"]
DECIDER_PREFIX = "approval-decision:"  # the worker id a decider's brief lease carries
_LEASE_TTL = 30.0  # seconds; released as soon as the decision is written
_WAIT_FOR_DECIDER = 10.0  # how long to wait for another reviewer's decision to be written
_WAIT_FOR_WORKER = 2.0  # a worker polling a waiting agent holds the lease for milliseconds
_ATTEMPTS = 20


def default_decider() -> str:
    """``user@host`` of this process: who decided when ``by`` is not given."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def pending_approvals(manager: SyncStateManager, agent_id: str | None = None) -> list[PendingApproval]:
    """Calls waiting for a decision, oldest first: of ``agent_id``, or of every agent in the store.

    Expired calls are listed too (``expired`` is True: the next resume denies them). A call an
    earlier "approve all"/"deny all" covers is not listed: the resume settles it on its own.
    """
    _require_own_store(manager)
    agents = [check_id(agent_id, "agent_id")] if agent_id is not None else manager.list_agents()
    found: list[PendingApproval] = []
    for agent in agents:
        latest = manager.storage.latest_checkpoint(agent)
        if latest is None or latest.status != AWAITING:  # cheap: only waiting agents are loaded
            continue
        state = manager.load_latest(agent)
        if state is not None:
            found.extend(waiting_in(state))
    return sorted(found, key=lambda pending: (parse_time(pending.asked_at), pending.agent_id, pending.call_id))


def waiting_in(state: AgentState) -> list[PendingApproval]:
    """The undecided calls of one loaded state that a standing decision does not cover (an entry
    that does not read as a waiting call is skipped with a warning naming it)."""
    standing = standing_decisions(state.approval_history)
    run = state.metadata.get("run")
    run_id = run.get("id") if isinstance(run, Mapping) and isinstance(run.get("id"), str) else None
    found = []
    for call in state.pending_actions:
        if not undecided(call) or call["name"] in standing:
            continue
        try:
            found.append(PendingApproval.from_call(state.agent_id, call, run_id, state.checkpoint_id))
        except ValueError as exc:
            log.warning("agent %s, checkpoint %s: a waiting call cannot be read (%s); not listed",
                        state.agent_id, state.checkpoint_id, exc)
    return found


def standing_decisions(history: list[Any]) -> dict[str, Mapping[str, Any]]:
    """Tool name -> the latest record whose "all"/"deny_all" covers it."""
    standing: dict[str, Mapping[str, Any]] = {}
    for record in history:
        if record.get("action") in ("all", "deny_all"):
            standing[record["tool_name"]] = record
    return standing


def decide(manager: SyncStateManager, agent_id: str, call_id: str, approved: bool, action: str,
           by: str | None = None, reason: str | None = None, via: str = "api") -> dict[str, Any]:
    """Write a person's decision on a waiting call; returns the decision record (with ``agent_id``,
    ``decided_at`` and the new ``checkpoint_id``). ``ApprovalNotPendingError`` if the call is not
    waiting (nothing is written then); ``LeaseHeldError`` while a worker runs the agent."""
    _require_own_store(manager)
    check_id(agent_id, "agent_id")
    check_tool_name(call_id, "call_id")
    allowed = ("once", "all") if approved else ("once", "deny_all")
    if action not in allowed:
        verb = "approve" if approved else "deny"
        raise InvalidStateValueError(f"{verb} takes action {' or '.join(map(repr, allowed))}, got {str(action)[:40]!r}")
    if via not in ("api", "cli", "web"):
        raise InvalidStateValueError(f"via must be 'api', 'cli' or 'web', got {str(via)[:40]!r}")
    decided_by = check_tool_name(by if by is not None else default_decider(), "by")
    if reason is not None and not isinstance(reason, str):
        raise InvalidStateValueError(f"reason must be a str or None, got {type(reason).__name__}")
    for _ in range(_ATTEMPTS):
        lease = _decider_lease(manager, agent_id, decided_by)
        try:
            state = manager.resume_from_latest(agent_id)
            if state is None:
                raise ApprovalNotPendingError(agent_id, call_id, "the agent has no checkpoint in "
                                              f"{manager.storage.url}")
            call = _waiting_call(state, call_id)
            record = make_approval_record(
                call["name"], approved, action, decided_by=decided_by, summary_limit=1, via=via, reason=reason,
                call_id=call_id, input_summary=call["approval"].get("summary", ""))
            decided = _with_decision(state, call_id, record)
            parent = manager.rows.get(state.checkpoint_id)
            try:
                manager.storage.write(plan_save(decided, parent, parent.lineage_id))
            except CheckpointConflictError:
                continue  # the agent moved (another reviewer, a worker): read it again and re-check
            return {**record, "decided_at": record["timestamp"], "agent_id": agent_id,
                    "checkpoint_id": decided.checkpoint_id}
        finally:
            lease.release()
    raise StorageError(f"agent {agent_id!r} keeps changing while deciding call {call_id!r}; try again")


def _require_own_store(manager: SyncStateManager) -> None:
    if not callable(getattr(manager.storage, "acquire_lease", None)):
        raise StorageError("deferred approvals need one of kaizen's stores (sqlite, file, postgresql, memory); "
                           f"{type(manager.storage).__name__} offers no atomic head update")


def _decider_lease(manager: SyncStateManager, agent_id: str, decided_by: str) -> Any:
    """Hold the agent's lease while deciding. Another reviewer's decision is waited for; a worker
    briefly (one that polls holds the lease for milliseconds), then ``LeaseHeldError``: it runs."""
    worker = (DECIDER_PREFIX + decided_by + "/" + str(time.monotonic_ns()))[:200]
    started = time.monotonic()
    while True:
        try:
            return claim(manager.storage, agent_id, worker, _LEASE_TTL, keepalive=False)
        except LeaseHeldError as exc:
            patience = _WAIT_FOR_DECIDER if exc.holder.startswith(DECIDER_PREFIX) else _WAIT_FOR_WORKER
            if time.monotonic() - started > patience:
                raise LeaseHeldError(agent_id, exc.holder, exc.expires_at) from None
            time.sleep(0.02)


def _waiting_call(state: AgentState, call_id: str) -> Mapping[str, Any]:
    """The undecided waiting call ``call_id`` of ``state``, else why it is not pending."""
    agent_id = state.agent_id
    call = next((c for c in state.pending_actions if isinstance(c, Mapping) and c.get("call_id") == call_id), None)
    if call is not None and is_awaiting(call):
        decision = decision_of(call)
        if decision is not None:
            raise _already(agent_id, call_id, decision)
        deadline = call["approval"].get("deadline")
        if deadline is not None and datetime.now(timezone.utc) >= parse_time(deadline):
            raise ApprovalNotPendingError(agent_id, call_id, f"its deadline passed at {deadline}; it is denied "
                                          "(fail closed) when the agent resumes")
        if state.status != AWAITING:  # a resume is under way (or died mid-run): not now
            raise ApprovalNotPendingError(
                agent_id, call_id, f"the agent is running (its newest checkpoint {state.checkpoint_id} is "
                f"{state.status!r}); decide it once the run waits again (a resume brings it back there)")
        covering = standing_decisions(state.approval_history).get(call["name"])
        if covering is not None:
            raise ApprovalNotPendingError(
                agent_id, call_id, f"an earlier {covering['action']!r} on {call['name']} by "
                f"{covering.get('decided_by', 'user')} at {covering['timestamp']} covers it; the resume settles it",
                covering.get("decided_by"), covering["timestamp"])
        return call
    for record in reversed(state.approval_history):
        if record.get("call_id") == call_id:
            raise _already(agent_id, call_id, {**record, "decided_at": record["timestamp"]})
    if any(entry.get("call_id") == call_id for entry in state.completed_actions):
        raise ApprovalNotPendingError(agent_id, call_id, "the agent moved on: the call already ran or was settled")
    waiting = [c["call_id"] for c in state.pending_actions if undecided(c)]
    listed = f"calls waiting: {', '.join(waiting)}" if waiting else "no call of this agent is waiting"
    raise ApprovalNotPendingError(agent_id, call_id, f"no such call is waiting for a decision ({listed})")


def _already(agent_id: str, call_id: str, decision: Mapping[str, Any]) -> ApprovalNotPendingError:
    verdict = "approved" if decision.get("approved") else "denied"
    by, at = decision.get("decided_by"), decision.get("decided_at")
    via = f" via {decision['via']}" if decision.get("via") else ""
    return ApprovalNotPendingError(agent_id, call_id, f"already {verdict} ({decision.get('action')}) by {by} at "
                                   f"{at}{via}", by, at)


def _with_decision(state: AgentState, call_id: str, record: FrozenDict) -> AgentState:
    """A new checkpoint of ``state``: the call's entry carries the decision, the history its record."""
    decision = {key: record[key] for key in ("approved", "action", "decided_by", "via") if key in record}
    decision["decided_at"] = record["timestamp"]
    if "reason" in record:
        decision["reason"] = record["reason"]
    pending = [{**call, "decision": decision} if isinstance(call, Mapping) and call.get("call_id") == call_id
               else call for call in state.pending_actions]
    now = datetime.now(timezone.utc)
    return dataclasses.replace(
        state, checkpoint_id=new_checkpoint_id(), parent_checkpoint_id=state.checkpoint_id, timestamp=now,
        updated_at=now, pending_actions=pending, approval_history=[*state.approval_history, record])
