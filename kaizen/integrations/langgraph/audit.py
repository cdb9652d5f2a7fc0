"""Human answers to ``interrupt()`` as approval records in the thread's hash-chained history.

Where they appear: when a node resumes, LangGraph hands the saver the task's
``__resume__`` write, the list of every answer that task has received so far
(an upsert, so each call repeats the earlier answers). Answers beyond the list
already stored for that task are new decisions; each is recorded for the agent
whose id is the thread id, paired with the question from the task's stored
``__interrupt__`` write. ``kaizen audit verify THREAD`` then checks the chain.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.base import WRITES_IDX_MAP
from langgraph.checkpoint.serde.types import INTERRUPT, RESUME

from kaizen.core.autonomy.state import AgentState, StateError, StateTracker, new_checkpoint_id
from kaizen.core.autonomy.state.sync_manager import SyncStateManager as _Mgr
from kaizen.core.autonomy.state.storage import CheckpointStore

from .encoding import checked_loads
from .errors import AuditRecordError

if TYPE_CHECKING:
    from .saver import KaizenSaver

# The task id LangGraph gives writes made by the caller (Command input), not by a node.
NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
_DENIALS = frozenset({"no", "n", "deny", "denied", "reject", "rejected", "decline", "declined", "false", "cancel"})
_NAME_KEYS = ("tool_name", "tool", "action", "name")
_WHO_KEYS = ("decided_by", "user", "reviewer")


class DecisionLog:
    """Writes approval records through the state manager of the saver's own store."""

    def __init__(self, store: CheckpointStore) -> None:
        self._manager = _Mgr(storage=store)
        self._lock = threading.Lock()

    def record_answers(self, saver: KaizenSaver, thread_id: str, ns: str, checkpoint_id: str, task_id: str,
                       task_path: str, writes: Sequence[tuple[str, Any]]) -> None:
        answers = next((value for channel, value in writes if channel == RESUME), None)
        if task_id == NULL_TASK_ID or not isinstance(answers, list) or not answers:
            return
        tables = saver.tables
        previous = tables.get_write(thread_id, ns, checkpoint_id, task_id, WRITES_IDX_MAP[RESUME])
        known = len(checked_loads(saver.serde, previous.type, previous.value)) if previous is not None else 0
        if len(answers) <= known:
            return
        asked = tables.get_write(thread_id, ns, checkpoint_id, task_id, WRITES_IDX_MAP[INTERRUPT])
        question = _question(checked_loads(saver.serde, asked.type, asked.value)) if asked is not None else None
        node = _node(task_path)
        for position in range(known, len(answers)):
            # The stored interrupt is the one the newest answer replies to.
            this_question = question if position == len(answers) - 1 else None
            self.record(thread_id, node, this_question, answers[position],
                        {"checkpoint_ns": ns, "checkpoint_id": checkpoint_id, "task_id": task_id})

    def record(self, thread_id: str, node: str | None, question: Any, answer: Any, where: dict[str, str]) -> None:
        try:
            record = StateTracker().record_approval(
                _tool_name(question, node), _approved(answer), "once",
                {"node": node, "question": question, "answer": answer}, decided_by=_who(answer),
            )
            with self._lock:
                state = self._manager.load_latest(thread_id)
                if state is None:
                    state = AgentState(agent_id=thread_id, model="langgraph", status="running")
                else:
                    state.parent_checkpoint_id = state.checkpoint_id
                    state.checkpoint_id = new_checkpoint_id()
                    state.step_number += 1
                    state.timestamp = state.updated_at = datetime.now(timezone.utc)
                state.approval_history = [*state.approval_history, record]
                state.workflow_state = {"langgraph": where}
                self._manager.save_checkpoint(state)
        except StateError as exc:
            raise AuditRecordError(
                f"cannot record the answer to interrupt() of thread {thread_id!r} in its approval history: {exc}; "
                "use a thread id of 1-128 letters, digits and _ . : @ - (it is the audit trail's agent id), "
                "or open the saver with audit=False"
            ) from exc


def _question(interrupts: Any) -> Any:
    """The value of the task's (newest) interrupt."""
    if isinstance(interrupts, (list, tuple)) and interrupts:
        interrupts = interrupts[-1]
    return getattr(interrupts, "value", interrupts)


def _node(task_path: str) -> str | None:
    parts = [part.strip(" ~()") for part in task_path.split(",")]
    names = [part for part in parts if part and not part.startswith("__pregel")]
    return names[-1] if names else None


def _text(mapping: Any, keys: tuple[str, ...]) -> str | None:
    if isinstance(mapping, Mapping):
        for key in keys:
            value = mapping.get(key)
            if isinstance(value, str) and value.strip() and len(value) <= 256:
                return value
    return None


def _tool_name(question: Any, node: str | None) -> str:
    name = _text(question, _NAME_KEYS) or node or "interrupt"
    return name[:256]


def _who(answer: Any) -> str | None:
    return _text(answer, _WHO_KEYS)


def _approved(answer: Any) -> bool:
    """False only for an explicit no: ``False``, ``{"approved": False}``, or a word of refusal."""
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, Mapping):
        for key in ("approved", "approve", "accept", "allowed"):
            if isinstance(answer.get(key), bool):
                return bool(answer[key])
        for key in ("decision", "action", "type", "response"):
            if isinstance(answer.get(key), str):
                return _approved(answer[key])
        return True
    if isinstance(answer, str):
        word = answer.strip().lower()
        return word not in _DENIALS
    return True
