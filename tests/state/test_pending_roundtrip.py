"""What parses in deferred approvals, checked with generated input: PendingApproval's dict form,
a waiting call saved in a real checkpoint and read back, decision records, and arbitrary
pending entries (a foreign or damaged entry is refused with ValueError, never anything else)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.core.autonomy.permissions.pending import (
    AWAITING, PendingApproval, asked_entry, is_awaiting, undecided,
)
from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.decisions import waiting_in
from kaizen.core.autonomy.state.errors import InvalidStateValueError
from kaizen.core.autonomy.state.records import check_approval_record, make_approval_record
from kaizen.core.autonomy.state.redaction import summarize_input
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

text = st.text(max_size=40)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,30}", fullmatch=True)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(timezone.utc))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)


@st.composite
def pendings(draw) -> PendingApproval:
    asked = draw(moments)
    deadline = draw(st.none() | st.floats(0.001, 1e7))
    return PendingApproval(
        draw(ids), draw(ids), draw(ids), draw(text), draw(st.sampled_from(["read_only", "idempotent", "side_effect"])),
        draw(text), asked.isoformat(), None if deadline is None else (asked + timedelta(seconds=deadline)).isoformat(),
        draw(st.none() | ids), draw(st.none() | ids))


@given(pendings())
def test_dict_form_round_trips(pending):
    data = pending.to_dict()
    assert PendingApproval.from_dict(data) == pending
    assert data["expired"] == pending.expired


@given(pendings(), moments)
def test_expiry_is_the_deadline(pending, now):
    if pending.deadline is None:
        assert not pending.expired_at(now)
    else:
        assert pending.expired_at(now) == (now >= datetime.fromisoformat(pending.deadline))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=5),
       secret=st.from_regex(r"[A-Za-z0-9]{12,24}", fullmatch=True),
       deadline=st.none() | st.floats(1, 1e6))
def test_a_waiting_call_saved_in_a_checkpoint_reads_back_the_same(tmp_path, arguments, secret, deadline):
    arguments = {**arguments, "password": secret}
    summary = summarize_input(arguments, 300)
    call = {"call_id": "c1", "name": "deploy", "arguments": arguments, "state": AWAITING,
            "approval": asked_entry(summary, "side_effect", "side_effect tool, policy ask",
                                    datetime.now(timezone.utc), deadline)}
    state = AgentState(agent_id="a1", status="awaiting_approval", pending_actions=[call],
                       metadata={"run": {"id": "run_1", "status": "awaiting_approval"}})
    with SyncStateManager(f"sqlite:///{tmp_path}/s.db") as manager:
        state = dataclasses.replace(state, agent_id=f"a{abs(hash(secret)) % 10**9}")
        manager.save_checkpoint(state)
        loaded = manager.load_latest(state.agent_id)
        [pending] = waiting_in(loaded)
        assert pending == PendingApproval.from_call(state.agent_id, call, "run_1", state.checkpoint_id)
        assert pending in manager.pending_approvals(state.agent_id)
    assert secret not in pending.arguments_summary and secret not in str(pending.to_dict())


@given(st.dictionaries(st.sampled_from(["call_id", "name", "state", "approval", "decision", "arguments"]),
                       json_values | st.just(AWAITING) | st.fixed_dictionaries({}, optional={
                           "summary": json_values, "danger": json_values, "reason": json_values,
                           "asked_at": json_values | st.just("2026-01-01T00:00:00+00:00"),
                           "deadline": json_values})))
def test_any_pending_entry_is_read_or_refused_with_value_error(entry):
    assert isinstance(is_awaiting(entry), bool) and isinstance(undecided(entry), bool)
    try:
        pending = PendingApproval.from_call("a1", entry)
    except ValueError:
        return
    assert is_awaiting(entry) and PendingApproval.from_dict(pending.to_dict()) == pending


@given(via=st.sampled_from(["api", "cli", "web", "timeout"]), reason=st.none() | st.text(max_size=200),
       call_id=st.none() | ids, by=ids)
def test_decision_records_pass_the_stored_record_check(via, reason, call_id, by):
    record = make_approval_record("deploy", True, "once", {"x": 1}, decided_by=by, summary_limit=100, via=via,
                                  reason=reason, call_id=call_id)
    assert check_approval_record(dict(record), "record") == record


@pytest.mark.parametrize("field,value", [("via", "email"), ("reason", 7), ("call_id", ""), ("via", None)])
def test_a_stored_record_with_a_bad_decision_field_is_refused(field, value):
    record = dict(make_approval_record("deploy", True, summary_limit=100, via="cli", call_id="c1"))
    record[field] = value
    with pytest.raises((InvalidStateValueError, TypeError), match=field):
        check_approval_record(record, "record")


def test_an_unreadable_waiting_entry_is_skipped_not_fatal(tmp_path, caplog):
    good = {"call_id": "c2", "name": "deploy", "arguments": {}, "state": AWAITING,
            "approval": asked_entry("{}", "side_effect", "why", datetime.now(timezone.utc), None)}
    bad = {**good, "call_id": "c1", "approval": {"asked_at": "not a time"}}
    with SyncStateManager(f"sqlite:///{tmp_path}/s.db") as manager:
        manager.save_checkpoint(AgentState(agent_id="a1", status="awaiting_approval", pending_actions=[bad, good]))
        assert [p.call_id for p in manager.pending_approvals()] == ["c2"]
    assert "a waiting call cannot be read" in caplog.text
