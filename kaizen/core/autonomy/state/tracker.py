"""``StateTracker``: the live approval history, tool counts and workflow state of one agent.

Every call validates all of its input before changing anything, so a rejected
call leaves the tracked state exactly as it was. Capturing shares the immutable
history entries with the snapshot instead of copying or serializing them.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from kaizen.core.values import is_int

from .errors import InvalidStateTypeError, InvalidStateValueError
from .frozen import AppendOnlyView, FrozenDict
from .ids import utc_now
from .jsonsafe import checked_json_copy, json_copy
from .records import check_tool_name, make_approval_record
from .redaction import DEFAULT_SUMMARY_LIMIT


def check_increment(increment: object) -> int:
    if not is_int(increment):
        raise InvalidStateTypeError(f"increment must be a positive int, got {type(increment).__name__}")
    if increment <= 0:
        raise InvalidStateValueError(f"increment must be a positive int, got {increment}")
    return increment


def _optional(value: object, name: str, kind: type | tuple[type, ...]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidStateTypeError(f"{name} must be {expected} or None, got {type(value).__name__}")


class StateTracker:
    """Tracks what the state-management spec records, with copies out and checks in."""

    def __init__(self, *, summary_limit: int = DEFAULT_SUMMARY_LIMIT) -> None:
        if not is_int(summary_limit) or summary_limit < 16:
            raise InvalidStateValueError(f"summary_limit must be an int >= 16, got {summary_limit!r}")
        self.summary_limit = summary_limit
        self._lock = threading.Lock()
        self._approvals: list[FrozenDict] = []
        self._standing: dict[str, str] = {}
        self._tool_counts: dict[str, int] = {}
        self._token_usage: dict[str, dict[str, int]] = {}
        self._workflow_state: dict[str, Any] = {}
        self._workflow_nested = False  # whether a workflow value is a list or dict (else: all immutable)
        self._workflow_run_id: str | None = None

    # --- approvals -------------------------------------------------------------------------
    def record_approval(
        self,
        tool_name: str,
        approved: bool,
        action: str = "once",
        tool_input: Any = None,
        *,
        decided_by: str | None = None,
        via: str | None = None,
        reason: str | None = None,
        call_id: str | None = None,
    ) -> FrozenDict:
        record = make_approval_record(
            tool_name, approved, action, tool_input, decided_by=decided_by, summary_limit=self.summary_limit,
            via=via, reason=reason, call_id=call_id,
        )
        if record["action"] == "all" and not approved:
            raise InvalidStateValueError("action 'all' means approve every later call: approved must be True")
        if record["action"] == "deny_all" and approved:
            raise InvalidStateValueError("action 'deny_all' means deny every later call: approved must be False")
        with self._lock:
            self._approvals.append(record)
            if record["action"] != "once":
                self._standing[record["tool_name"]] = record["action"]
        return record

    def standing_decision(self, tool_name: str) -> str | None:
        """``"all"`` or ``"deny_all"`` if an earlier decision covers every call of ``tool_name``."""
        return self._standing.get(tool_name)

    def approval_history(self) -> list[dict[str, Any]]:
        return list(map(dict.copy, self._approvals))  # plain, mutable copies (FrozenDict.copy is a dict)

    # --- tool and token usage -------------------------------------------------------------
    def record_tool_usage(self, tool_name: str, increment: int = 1) -> int:
        check_tool_name(tool_name)
        check_increment(increment)
        with self._lock:
            count = self._tool_counts.get(tool_name, 0) + increment
            self._tool_counts[tool_name] = count
        return count

    def tool_usage_counts(self) -> dict[str, int]:
        return dict(self._tool_counts)

    def record_token_usage(self, model: str, input_tokens: int, output_tokens: int) -> None:
        check_tool_name(model, "model")
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if not is_int(value) or value < 0:
                raise InvalidStateValueError(f"{name} must be an int >= 0, got {value!r}")
        with self._lock:
            usage = self._token_usage.setdefault(model, {"input_tokens": 0, "output_tokens": 0})
            usage["input_tokens"] = usage.get("input_tokens", 0) + input_tokens
            usage["output_tokens"] = usage.get("output_tokens", 0) + output_tokens

    def token_usage(self) -> dict[str, dict[str, int]]:
        return {model: dict(usage) for model, usage in self._token_usage.items()}

    # --- workflow state ------------------------------------------------------------------
    def update_workflow_state(
        self,
        run_id: str | None = None,
        status: str | None = None,
        current_node: str | None = None,
        node_results: dict[str, Any] | None = None,
        execution_time: float | None = None,
        **kwargs: Any,
    ) -> None:
        # Each check only for a value given (most calls give one or two), all before any copy; the
        # values are kept in this order. A str is its own copy (the usual value: a node name, a status).
        checked: dict[str, Any] = {}
        for key, text in (("run_id", run_id), ("status", status), ("current_node", current_node)):
            if text is not None:
                if type(text) is not str:  # (an exact str passes: no call)
                    _optional(text, key, str)
                checked[key] = text
        if node_results is not None:
            _optional(node_results, "node_results", dict)
        if execution_time is not None:
            _optional(execution_time, "execution_time", (int, float))
            if not math.isfinite(execution_time) or execution_time < 0:
                raise InvalidStateValueError(f"execution_time must be a finite number >= 0, got {execution_time}")
        nested = node_results is not None  # whether a kept value is a dict or list (see snapshot)
        if node_results is not None:
            checked["node_results"] = checked_json_copy(node_results, "workflow_state['node_results']")
        if execution_time is not None:
            checked["execution_time"] = checked_json_copy(execution_time, "workflow_state['execution_time']")
        for key, value in kwargs.items():
            if type(value) is not str:
                value = checked_json_copy(value, f"workflow_state[{key!r}]")
                nested = nested or type(value) in (dict, list)
            checked[key] = value
        checked["last_updated"] = utc_now()
        with self._lock:
            self._workflow_state.update(checked)
            if nested:
                self._workflow_nested = True
            if run_id is not None:
                self._workflow_run_id = run_id

    def workflow_state(self) -> dict[str, Any]:
        copied: dict[str, Any] = json_copy(self._workflow_state)
        return copied

    @property
    def workflow_run_id(self) -> str | None:
        return self._workflow_run_id

    # --- capture and restore -------------------------------------------------------------
    def snapshot(self, *, view: bool = False) -> dict[str, Any]:
        """The tracked fields of an ``AgentState``, independent of later tracking.

        With ``view`` the approval history is an O(1) ``AppendOnlyView`` instead of a list copy
        (what a save uses: it reads only the entries its parent does not have).
        """
        with self._lock:
            return {
                "approval_history": AppendOnlyView(self._approvals) if view else list(self._approvals),
                "tool_usage_counts": dict(self._tool_counts),
                "token_usage": {model: dict(usage) for model, usage in self._token_usage.items()}
                if self._token_usage else {},
                # Only immutable values (str, numbers, None): a copy of the dict is a deep copy.
                "workflow_state": (json_copy(self._workflow_state) if self._workflow_nested
                                   else dict(self._workflow_state)),
                "workflow_run_id": self._workflow_run_id,
            }

    def restore(self, approval_history: list[FrozenDict], tool_usage_counts: dict[str, int],
                token_usage: dict[str, dict[str, int]], workflow_state: dict[str, Any],
                workflow_run_id: str | None) -> None:
        """Replace the tracked fields with already-validated values from a state."""
        standing: dict[str, str] = {}
        for record in approval_history:
            if record["action"] != "once":
                standing[record["tool_name"]] = record["action"]
        with self._lock:
            self._approvals = list(approval_history)
            self._standing = standing
            self._tool_counts = dict(tool_usage_counts)
            self._token_usage = {model: dict(usage) for model, usage in token_usage.items()}
            self._workflow_state = json_copy(workflow_state)
            self._workflow_nested = any(type(value) in (dict, list) for value in self._workflow_state.values())
            self._workflow_run_id = workflow_run_id
