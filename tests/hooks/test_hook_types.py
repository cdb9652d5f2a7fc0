"""Value types of the hooks system: events, priorities, context, results."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from kaizen.core.autonomy.hooks import (
    HookContext,
    HookEvent,
    HookOutcome,
    HookPriority,
    HookResult,
    InvalidHookEventError,
)

EXPECTED_EVENTS = {
    "pre_tool_use", "post_tool_use", "pre_agent_loop", "post_agent_loop", "pre_cycle", "post_cycle",
    "pre_permission_check", "post_permission_check", "approval_decided", "pre_checkpoint_save",
    "approval_requested",  # ours: a call waits for a deferred decision
    "post_checkpoint_save", "pre_interrupt", "post_interrupt", "error", "pre_model_call", "post_model_call",
    # the original's specialist, planning and memory pairs, offered for migrating code
    "pre_specialist_invoke", "post_specialist_invoke", "pre_plan_generation", "post_plan_generation",
    "pre_memory_save", "post_memory_save", "pre_memory_load", "post_memory_load",
}


def test_event_values_are_the_kailash_names():
    assert {event.value for event in HookEvent} == EXPECTED_EVENTS
    assert HookEvent.PRE_TOOL_USE == "pre_tool_use"  # str enum: compares equal to its string


@pytest.mark.parametrize("given", ["pre_tool_use", "PRE_TOOL_USE", HookEvent.PRE_TOOL_USE])
def test_event_coerce_accepts_value_name_and_member(given):
    assert HookEvent.coerce(given) is HookEvent.PRE_TOOL_USE


@pytest.mark.parametrize("given", ["pre_tool", "", 3, None])
def test_unknown_event_is_a_value_error_listing_valid_events(given):
    with pytest.raises(ValueError) as info:
        HookEvent.coerce(given)
    assert isinstance(info.value, InvalidHookEventError)
    message = str(info.value)
    assert repr(given) in message
    assert all(name in message for name in EXPECTED_EVENTS)


def test_priorities_run_lower_first():
    assert [p.value for p in (HookPriority.CRITICAL, HookPriority.HIGH, HookPriority.NORMAL, HookPriority.LOW)] == [0, 1, 2, 3]
    assert HookPriority.coerce(1) is HookPriority.HIGH
    assert HookPriority.coerce("low") is HookPriority.LOW
    with pytest.raises(ValueError, match="valid priorities"):
        HookPriority.coerce(7)


def test_context_defaults_and_event_alias():
    context = HookContext(event_type="post_tool_use", agent_id="a1", data={"tool_name": "Read"})
    assert context.event is HookEvent.POST_TOOL_USE is context.event_type
    assert context.data.get("tool_name") == "Read"
    assert context.metadata == {}
    assert context.trace_id and isinstance(context.trace_id, str)
    assert isinstance(context.timestamp, float) and abs(context.timestamp - time.time()) < 60
    stamp = datetime.fromisoformat(context.timestamp_iso)
    assert stamp.tzinfo is not None and stamp.utcoffset() == timezone.utc.utcoffset(None)
    assert abs(stamp.timestamp() - context.timestamp) < 1e-3


def test_context_rejects_bad_event_and_data():
    with pytest.raises(ValueError, match="valid events"):
        HookContext(event_type="nope")
    with pytest.raises(ValueError, match="data"):
        HookContext(event_type="error", data=[1, 2])  # type: ignore[arg-type]


def test_result_constructors():
    assert HookResult() == HookResult.ok()
    assert HookResult.ok({"x": 1}).data == {"x": 1}
    blocked = HookResult.block("too dangerous")
    assert blocked.blocked and blocked.success and blocked.reason == "too dangerous"


def test_unsuccessful_result_needs_an_error():
    with pytest.raises(ValueError, match="error"):
        HookResult(success=False)
    assert HookResult(success=False, error="boom").error == "boom"


def test_block_needs_a_reason():
    with pytest.raises(ValueError, match="reason"):
        HookResult.block("  ")
    with pytest.raises(ValueError, match="reason"):
        HookResult(blocked=True)


def test_outcome_reports_first_block():
    context = HookContext(event_type="pre_tool_use")
    outcome = HookOutcome(
        context=context,
        results=[HookResult.ok(), HookResult.block("first"), HookResult.fail("x"), HookResult.block("second")],
        hook_names=["a", "b", "c", "d"],
    )
    assert outcome.blocked and outcome.reason == "first" and outcome.blocked_by == "b"
    assert not outcome.success and outcome.errors == ["x"]
    empty = HookOutcome(context=context)
    assert not empty.blocked and empty.reason is None and empty.success
