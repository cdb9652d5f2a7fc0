"""Checkpoint rows as the manager reads them: a small cache, listing entries, comparable timestamps.

Saving, loading and forking look up the same few rows again and again (a parent, a lineage
head); the cache keeps the last few hundred so those lookups cost no store round trip.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timezone

from .errors import InvalidStateValueError
from .ids import check_id
from .storage.base import CheckpointRow, CheckpointStore
from .types import CheckpointMetadata

CACHE_SIZE = 256


class RowCache:
    """The most recently used checkpoint rows of one store, read through on a miss."""

    def __init__(self, storage: CheckpointStore, size: int = CACHE_SIZE) -> None:
        self.storage = storage
        self.size = size
        self._rows: OrderedDict[str, CheckpointRow] = OrderedDict()

    def get(self, checkpoint_id: str) -> CheckpointRow:
        """The row of ``checkpoint_id`` (``CheckpointNotFoundError`` if the store has none)."""
        row = self._rows.get(checkpoint_id)
        if row is None:
            row = self.storage.read_checkpoint(check_id(checkpoint_id, "checkpoint_id"))
            self.remember(row)
        return row

    def remember(self, row: CheckpointRow) -> None:
        rows = self._rows
        checkpoint_id = row.checkpoint_id
        if checkpoint_id in rows:
            rows.move_to_end(checkpoint_id)  # (a new key is already the newest)
        rows[checkpoint_id] = row
        while len(rows) > self.size:
            rows.popitem(last=False)

    def drop(self, checkpoint_ids: list[str]) -> None:
        for checkpoint_id in checkpoint_ids:
            self._rows.pop(checkpoint_id, None)

    def forget_agent(self, agent_id: str) -> None:
        self.drop([c for c, row in self._rows.items() if row.agent_id == agent_id])


def row_metadata(row: CheckpointRow) -> CheckpointMetadata:
    """The listing entry of a stored row."""
    return CheckpointMetadata(
        checkpoint_id=row.checkpoint_id,
        agent_id=row.agent_id,
        timestamp=datetime.fromisoformat(row.timestamp),
        step_number=row.step_number,
        status=row.status,
        size_bytes=row.size_bytes,
        parent_checkpoint_id=row.parent_checkpoint_id,
        lineage_id=row.lineage_id,
    )


def timestamp_text(value: str | datetime | None) -> str | None:
    """ISO text in UTC, so stored timestamps compare correctly as text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidStateValueError(f"before {str(value)[:60]!r} is not an ISO 8601 timestamp") from None
    if not isinstance(value, datetime):
        raise InvalidStateValueError(f"before must be an ISO timestamp or datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
