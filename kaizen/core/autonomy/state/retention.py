"""Which checkpoints retention and deletion may remove.

Never a lineage's head, never a checkpoint a fork starts from, never an agent another agent
was forked from: later checkpoints and forks share their history.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .row_cache import timestamp_text
from .storage.base import CheckpointRow, CheckpointStore


def protected_checkpoints(storage: CheckpointStore, agent_id: str) -> set[str]:
    """The agent's lineage heads and every checkpoint (of any agent's lineages) a fork starts from."""
    protected = {lin.head_checkpoint_id for lin in storage.list_lineages(agent_id) if lin.head_checkpoint_id}
    for other in storage.list_agents():
        protected.update(lin.base_checkpoint_id for lin in storage.list_lineages(other) if lin.base_checkpoint_id)
    return protected


def forked_from(storage: CheckpointStore, agent_id: str) -> list[str]:
    """The other agents whose lineages start in one of ``agent_id``'s (they share its records)."""
    own = {lin.lineage_id for lin in storage.list_lineages(agent_id)}
    return sorted({
        lin.agent_id for other in storage.list_agents() if other != agent_id
        for lin in storage.list_lineages(other) if lin.base_lineage_id in own
    })


def expired(
    rows: list[CheckpointRow], protected: set[str], keep_last: int | None, max_age: timedelta | float | None
) -> list[str]:
    """Ids among ``rows`` (newest first) beyond the newest ``keep_last`` or older than ``max_age``,
    leaving out ``protected`` ones and the newest row."""
    protected = protected | ({rows[0].checkpoint_id} if rows else set())
    cutoff = None
    if max_age is not None:
        age = max_age if isinstance(max_age, timedelta) else timedelta(seconds=float(max_age))
        cutoff = (datetime.now(timezone.utc) - age).isoformat(timespec="microseconds")
    doomed = []
    for index, row in enumerate(rows):
        if row.checkpoint_id in protected:
            continue
        too_many = keep_last is not None and index >= keep_last
        too_old = cutoff is not None and (timestamp_text(row.timestamp) or "") < cutoff
        if too_many or too_old:
            doomed.append(row.checkpoint_id)
    return doomed


class RetentionSchedule:
    """Retention every few saves, not after each one: its cost is amortized, not per save."""

    def __init__(self) -> None:
        self._saves_since: dict[str, int] = {}

    def due(self, agent_id: str, keep_last: int | None) -> bool:
        """Count a save of ``agent_id``; True when retention should run now (then call ``ran``)."""
        count = self._saves_since.get(agent_id, 0) + 1
        if count >= max(1, (keep_last or 40) // 4):
            return True
        self._saves_since[agent_id] = count
        return False

    def ran(self, agent_id: str) -> None:
        self._saves_since[agent_id] = 0
