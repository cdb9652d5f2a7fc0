"""Saving by content: which stored checkpoint a state continues.

A state is saved on top of the checkpoint its histories extend, not only the one its
``parent_checkpoint_id`` names: a state captured by the agent, built by hand or restored
with a stale or missing parent pointer still lands on the agent's latest checkpoint when it
continues it, and a writer that diverged is refused instead of overwriting history.
"""

from __future__ import annotations

import orjson

from .errors import (
    CheckpointAlreadySavedError, CheckpointConflictError, CheckpointNotFoundError, EncryptionKeyError,
    InvalidStateValueError,
)
from .history_reader import HistoryReader
from .row_cache import RowCache
from .storage.base import STREAMS, CheckpointRow, CheckpointStore, is_sealed
from .storage.rows import verify_row
from .types import AgentState


def require_readable(row: CheckpointRow) -> None:
    """A sealed row read without the key: stop before anything is loaded or written on top of it."""
    if is_sealed(row.body):
        raise EncryptionKeyError(f"checkpoint {row.checkpoint_id!r} is encrypted: set KAIZEN_ENCRYPTION_KEY (or "
                                 "encryption_key) to the key it was written with")


class Continuation:
    """Finds the checkpoint a state is saved on, reading rows through the manager's cache."""

    def __init__(self, storage: CheckpointStore, rows: RowCache, history: HistoryReader) -> None:
        self.storage = storage
        self.rows = rows
        self.history = history

    def parent_of(self, state: AgentState) -> CheckpointRow | None:
        """The checkpoint ``state`` is saved on: its parent pointer's when readable, else the
        agent's latest checkpoint if the state's histories extend it (None: a first save)."""
        parent_id = state.parent_checkpoint_id
        if parent_id is not None:
            try:
                parent = self.rows.get(parent_id)
            except CheckpointNotFoundError:
                parent = None
            if parent is not None:
                require_readable(parent)
                if parent.agent_id != state.agent_id:
                    raise InvalidStateValueError(
                        f"cannot save a state of agent {state.agent_id!r} on top of checkpoint {parent_id!r} "
                        f"of agent {parent.agent_id!r}; use fork(..., new_agent_id=...) to branch into a new agent"
                    )
                return parent
        latest = self.storage.latest_checkpoint(state.agent_id)
        if latest is None:
            return None  # a first save (or a state restored from another store): start the history
        self.rows.remember(latest)
        if self.extends(state, latest, None):
            return latest
        if parent_id is not None:
            raise CheckpointNotFoundError(
                f"cannot save {state.checkpoint_id!r}: its parent checkpoint {parent_id!r} is not in "
                f"{self.storage.url} and its histories do not continue the agent's latest checkpoint "
                f"{latest.checkpoint_id}; resume the agent from its latest checkpoint first"
            )
        raise CheckpointConflictError(state.agent_id, None, latest.checkpoint_id)

    def continued_head(
        self, state: AgentState, parent: CheckpointRow | None, conflict: CheckpointConflictError
    ) -> CheckpointRow | None:
        """After a conflict: the head that was saved meanwhile, if ``state`` continues it."""
        head_id = conflict.actual_head
        if head_id is None or head_id == (parent.checkpoint_id if parent is not None else None):
            return None
        head = self.rows.get(head_id)
        if head.agent_id != state.agent_id or (parent is not None and head.lineage_id != parent.lineage_id):
            return None
        return head if self.extends(state, head, parent) else None

    def extends(self, state: AgentState, row: CheckpointRow, anchor: CheckpointRow | None) -> bool:
        """Whether every history of ``state`` begins with exactly what ``row`` (verified) covers.

        A state re-saved under the id of a stored checkpoint never extends it: that would
        overwrite it."""
        require_readable(row)
        verify_row(row)
        if row.checkpoint_id == state.checkpoint_id:
            raise CheckpointAlreadySavedError(state.checkpoint_id, state.agent_id)
        return counters_continue(state, row) and all(
            self.history.extends(getattr(state, stream), row, stream, anchor) for stream in STREAMS)


def counters_continue(state: AgentState, row: CheckpointRow) -> bool:
    """Whether the state's counters (step, spend, tool and token counts) are at least ``row``'s: a
    writer whose counts went back did not continue ``row``, it diverged from an earlier checkpoint."""
    if state.step_number < row.step_number:
        return False
    try:
        body = orjson.loads(row.body)
        if float(state.budget_spent_usd) < float(body.get("budget_spent_usd", 0.0)):
            return False
        counts = state.tool_usage_counts
        if any(counts.get(tool, 0) < n for tool, n in body.get("tool_usage_counts", {}).items()):
            return False
        tokens = state.token_usage
        return not any(tokens.get(model, {}).get(kind, 0) < n
                       for model, usage in body.get("token_usage", {}).items() for kind, n in usage.items())
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return False
