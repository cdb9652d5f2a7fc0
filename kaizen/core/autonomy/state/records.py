"""Approval records: the audit trail's unit, built and checked in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidStateTypeError, InvalidStateValueError
from .frozen import FrozenDict
from .ids import check_timestamp, utc_now
from .redaction import redact_text, summarize_input

APPROVAL_ACTIONS = ("once", "all", "deny_all")
REQUIRED_RECORD_FIELDS = ("tool_name", "approved", "action", "timestamp", "input_summary")
# A deferred decision (decided later, by another process) also says how, why and which call.
OPTIONAL_RECORD_FIELDS = ("decided_by", "via", "reason", "call_id")
DECISION_CHANNELS = ("api", "cli", "web", "timeout")
MAX_TOOL_NAME = 256
MAX_REASON = 1000


def check_tool_name(tool_name: object, name: str = "tool_name") -> str:
    if not isinstance(tool_name, str):
        raise InvalidStateTypeError(f"{name} must be a str, got {type(tool_name).__name__}")
    if not tool_name.strip():
        raise InvalidStateValueError(f"{name} must not be empty")
    if len(tool_name) > MAX_TOOL_NAME:
        raise InvalidStateValueError(f"{name} is {len(tool_name)} characters; the limit is {MAX_TOOL_NAME}")
    return tool_name


def check_action(action: object) -> str:
    if not isinstance(action, str):
        raise InvalidStateTypeError(f"action must be a str, got {type(action).__name__}")
    if action not in APPROVAL_ACTIONS:
        raise InvalidStateValueError(
            f"action {action[:40]!r} is not one of {', '.join(repr(a) for a in APPROVAL_ACTIONS)}"
        )
    return action


def check_approved(approved: object) -> bool:
    if not isinstance(approved, bool):
        raise InvalidStateTypeError(f"approved must be True or False, got {type(approved).__name__}")
    return approved


def check_via(via: object) -> str:
    if via not in DECISION_CHANNELS:
        raise InvalidStateValueError(f"via {str(via)[:40]!r} is not one of {', '.join(DECISION_CHANNELS)}")
    return str(via)


def check_reason(reason: object) -> str:
    if not isinstance(reason, str):
        raise InvalidStateTypeError(f"reason must be a str, got {type(reason).__name__}")
    if len(reason) > MAX_REASON:
        raise InvalidStateValueError(f"reason is {len(reason)} characters; the limit is {MAX_REASON}")
    return reason


def make_approval_record(
    tool_name: object,
    approved: object,
    action: object = "once",
    tool_input: Any = None,
    *,
    decided_by: object = None,
    summary_limit: int,
    via: object = None,
    reason: object = None,
    call_id: object = None,
    input_summary: str | None = None,
) -> FrozenDict:
    """Validate a decision and build its immutable record (all checks before anything is built).

    ``via``/``reason``/``call_id`` are set by deferred decisions; ``reason`` is redacted like an
    input. ``input_summary`` (already redacted) replaces summarising ``tool_input``."""
    record = {  # (a bool, and a listed action as an exact str, are taken as the checks would return them)
        "tool_name": check_tool_name(tool_name),
        "approved": approved if approved is True or approved is False else check_approved(approved),
        "action": action if type(action) is str and action in APPROVAL_ACTIONS else check_action(action),
        "timestamp": utc_now(),
        "input_summary": summarize_input(tool_input, summary_limit) if input_summary is None else input_summary,
    }
    if decided_by is not None:
        record["decided_by"] = check_tool_name(decided_by, "decided_by")
    if via is not None:
        record["via"] = check_via(via)
    if reason is not None:
        record["reason"] = redact_text(check_reason(reason))
    if call_id is not None:
        record["call_id"] = check_tool_name(call_id, "call_id")
    return FrozenDict(record)


def check_approval_record(raw: object, where: str) -> FrozenDict:
    """Validate a stored record (from a checkpoint or export) and return it frozen."""
    if not isinstance(raw, Mapping):
        raise InvalidStateTypeError(f"{where} must be an object, got {type(raw).__name__}")
    missing = [key for key in REQUIRED_RECORD_FIELDS if key not in raw]
    if missing:
        raise InvalidStateValueError(f"{where} lacks {', '.join(missing)}")
    unknown = [str(key) for key in raw if key not in REQUIRED_RECORD_FIELDS and key not in OPTIONAL_RECORD_FIELDS]
    if unknown:
        raise InvalidStateValueError(f"{where} has unknown field(s) {', '.join(sorted(unknown))[:200]}")
    try:
        check_tool_name(raw["tool_name"])
        check_approved(raw["approved"])
        check_action(raw["action"])
        check_timestamp(raw["timestamp"], "timestamp")
        if not isinstance(raw["input_summary"], str):
            raise InvalidStateTypeError("input_summary must be a str")
        if "decided_by" in raw:
            check_tool_name(raw["decided_by"], "decided_by")
        if "via" in raw:
            check_via(raw["via"])
        if "reason" in raw:
            check_reason(raw["reason"])
        if "call_id" in raw:
            check_tool_name(raw["call_id"], "call_id")
    except (InvalidStateTypeError, InvalidStateValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return raw if isinstance(raw, FrozenDict) else FrozenDict(raw)
