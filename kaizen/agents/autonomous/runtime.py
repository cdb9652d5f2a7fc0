"""``RunState``: everything an agent's checkpoint holds, in one typed place.

The agent owns one ``RunState``; the loop changes it through these public fields and
methods, so neither module reaches into the other's private members. ``capture`` and
``restore`` are the two directions between a ``RunState`` and an ``AgentState``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from kaizen.core.autonomy.state import AgentState, StateTracker
from kaizen.core.autonomy.state.errors import StateError
from kaizen.core.autonomy.state.frozen import AppendOnlyView, FrozenDict, freeze
from kaizen.core.autonomy.state.ids import new_checkpoint_id, utc_moment
from kaizen.core.autonomy.state.jsonsafe import checked_json_copy, json_copy
from kaizen.core.autonomy.state.types import FIELD_CHECKS, CapturedState

# The checks of the RunState's free-form JSON fields (mutable dicts and lists handed out to the
# loop and users): "memory_contents", "pending_actions", "tool_results_cache", "metadata".
_check_object = FIELD_CHECKS["memory_contents"]
_check_list = FIELD_CHECKS["pending_actions"]
assert FIELD_CHECKS["tool_results_cache"] is _check_object and FIELD_CHECKS["metadata"] is _check_object


@dataclass
class RunState:
    """The mutable state of one agent: what a checkpoint saves and a resume restores.

    ``conversation`` and ``completed_actions`` are append-only streams of immutable entries
    (a save writes only the entries its parent checkpoint does not have); use the
    ``append_*`` methods, which check that an entry is JSON before it is kept.
    """

    tracker: StateTracker
    step_number: int = 0
    status: str = "running"
    conversation: list[FrozenDict] = field(default_factory=list)
    completed_actions: list[FrozenDict] = field(default_factory=list)
    pending_actions: list[Any] = field(default_factory=list)
    memory_contents: dict[str, Any] = field(default_factory=dict)
    tool_results_cache: dict[str, Any] = field(default_factory=dict)
    budget_spent_usd: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)
    last_checkpoint_id: str | None = None

    @property
    def run(self) -> dict[str, Any]:
        """The current run's bookkeeping (``metadata["run"]``: id, inputs, cycle, status, ...)."""
        run: dict[str, Any] = self.metadata.setdefault("run", {})
        return run

    def append_conversation(self, entry: Mapping[str, Any]) -> None:
        self.conversation.append(freeze(checked_json_copy(dict(entry), "conversation entry")))

    def append_completed_action(self, entry: Mapping[str, Any]) -> None:
        self.completed_actions.append(freeze(checked_json_copy(dict(entry), "completed action")))

    def capture(self, agent_id: str, model: str, *, for_save: bool = False) -> AgentState:
        """A snapshot of everything needed to resume; later changes do not affect it.

        ``for_save`` gives the ``CapturedState`` a save takes: the append-only streams shared as
        O(1) views (a save reads only the new entries) instead of copied into lists, and the
        free-form JSON fields checked as they are copied, so the save does not walk them again.
        """
        if for_save:
            return self._capture_for_save(agent_id, model)
        return AgentState(
            agent_id=agent_id,
            model=model,
            step_number=self.step_number,
            status=self.status,
            parent_checkpoint_id=self.last_checkpoint_id,
            conversation_history=list(self.conversation),
            memory_contents=json_copy(self.memory_contents),
            pending_actions=json_copy(self.pending_actions),
            completed_actions=list(self.completed_actions),
            budget_spent_usd=self.budget_spent_usd,
            tool_results_cache=json_copy(self.tool_results_cache),
            metadata=json_copy(self.metadata),
            **self.tracker.snapshot(),
        )

    def _capture_for_save(self, agent_id: str, model: str) -> CapturedState:
        checkpoint_id = new_checkpoint_id()
        try:
            # Anyone may have changed these in place since the last save: this is their one check
            # (and copy). An empty one's copy is a new empty one, made here without the call.
            memory_contents = self.memory_contents
            memory_contents = {} if type(memory_contents) is dict and not memory_contents else _check_object(
                memory_contents, "memory_contents")
            pending_actions = self.pending_actions
            pending_actions = [] if type(pending_actions) is list and not pending_actions else _check_list(
                pending_actions, "pending_actions")
            tool_results_cache = self.tool_results_cache
            tool_results_cache = {} if type(tool_results_cache) is dict and not tool_results_cache else _check_object(
                tool_results_cache, "tool_results_cache")
            metadata = self.metadata
            metadata = {} if type(metadata) is dict and not metadata else _check_object(metadata, "metadata")
        except StateError as exc:
            raise type(exc)(f"cannot save checkpoint {checkpoint_id!r}: {exc}") from None
        now, text = utc_moment()
        tracked = self.tracker.snapshot(view=True)
        return CapturedState.of({  # every field, in declaration order
            "checkpoint_id": checkpoint_id,
            "agent_id": agent_id,
            "model": model,
            "timestamp": now,
            "updated_at": now,
            "step_number": self.step_number,
            "conversation_history": AppendOnlyView(self.conversation),
            "memory_contents": memory_contents,
            "pending_actions": pending_actions,
            "completed_actions": AppendOnlyView(self.completed_actions),
            "budget_spent_usd": self.budget_spent_usd,
            "approval_history": tracked["approval_history"],
            "tool_usage_counts": tracked["tool_usage_counts"],
            "tool_results_cache": tool_results_cache,
            "active_specialists": [],
            "specialist_invocations": [],
            "workflow_run_id": tracked["workflow_run_id"],
            "workflow_state": tracked["workflow_state"],
            "control_protocol_state": {},
            "registered_hooks": [],
            "hook_event_history": [],
            "parent_checkpoint_id": self.last_checkpoint_id,
            "status": self.status,
            "metadata": metadata,
            "token_usage": tracked["token_usage"],
        }, (now, text))

    def restore(self, state: AgentState | Mapping[str, Any]) -> AgentState:
        """Replace everything with a checkpoint's state (validated first: an invalid one raises
        and changes nothing); returns the validated state."""
        from kaizen.core.autonomy.state.errors import InvalidStateTypeError

        if isinstance(state, AgentState):
            checked = state.validated()
        elif isinstance(state, Mapping):
            checked = AgentState.from_dict(state)
        else:
            raise InvalidStateTypeError(f"state must be an AgentState or a dict, got {type(state).__name__}")
        self.tracker.restore(
            cast("list[FrozenDict]", checked.approval_history),
            checked.tool_usage_counts,
            checked.token_usage,
            checked.workflow_state,
            checked.workflow_run_id,
        )
        self.step_number = checked.step_number
        self.status = checked.status
        self.conversation = list(cast("list[FrozenDict]", checked.conversation_history))
        self.completed_actions = list(cast("list[FrozenDict]", checked.completed_actions))
        self.pending_actions = checked.pending_actions
        self.memory_contents = checked.memory_contents
        self.tool_results_cache = checked.tool_results_cache
        self.budget_spent_usd = checked.budget_spent_usd
        self.metadata = checked.metadata
        self.last_checkpoint_id = checked.checkpoint_id
        return checked
