"""Approval records: the audit trail's unit, built and checked in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidStateTypeError, InvalidStateValueError
from .frozen import FrozenDict
from .ids import check_timestamp, utc_now
from .redaction import summarize_input

APPROVAL_ACTIONS = ("once", "all", "deny_all")
REQUIRED_RECORD_FIELDS = ("tool_name", "approved", "action", "timestamp", "input_summary")
OPTIONAL_RECORD_FIELDS = ("decided_by",)
MAX_TOOL_NAME = 256


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


def make_approval_record(
    tool_name: object,
    approved: object,
    action: object = "once",
    tool_input: Any = None,
    *,
    decided_by: object = None,
    summary_limit: int,
) -> FrozenDict:
    """Validate a decision and build its immutable record (all checks before anything is built)."""
    record = {
        "tool_name": check_tool_name(tool_name),
        "approved": check_approved(approved),
        "action": check_action(action),
        "timestamp": utc_now(),
        "input_summary": summarize_input(tool_input, summary_limit),
    }
    if decided_by is not None:
        record["decided_by"] = check_tool_name(decided_by, "decided_by")
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
    except (InvalidStateTypeError, InvalidStateValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return raw if isinstance(raw, FrozenDict) else FrozenDict(raw)
