"""In-memory store: for tests and quick scripts. Same guarantees as the durable ones,
except that everything is gone when the process ends."""

from __future__ import annotations

import threading

import time

from ..errors import CheckpointConflictError, CheckpointNotFoundError, LeaseHeldError, StorageError
from .base import CheckpointRow, LeaseRow, LineageRow, RecordRow, SavePlan


class MemoryStorage:
    """Rows in dicts, guarded by one lock."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._lock = threading.RLock()
        self._rows: dict[str, CheckpointRow] = {}  # insertion order = save order
        self._lineages: dict[str, LineageRow] = {}
        self._records: dict[tuple[str, str], list[RecordRow]] = {}
        self._leases: dict[str, LeaseRow] = {}

    def setup(self) -> None:
        return None

    def close(self) -> None:
        return None

    # --- writes --------------------------------------------------------------------------
    def save(self, plan: SavePlan) -> None:
        row = plan.row
        with self._lock:
            if row.checkpoint_id in self._rows:
                raise StorageError(f"checkpoint {row.checkpoint_id!r} already exists")
            if plan.new_lineage is not None:
                if not plan.is_fork:
                    existing = self.latest_checkpoint(row.agent_id)
                    if existing is not None:
                        raise CheckpointConflictError(row.agent_id, None, existing.checkpoint_id)
                self._lineages[plan.new_lineage.lineage_id] = plan.new_lineage
            else:
                lineage = self._lineages.get(row.lineage_id)
                head = lineage.head_checkpoint_id if lineage else None
                if lineage is None or head != plan.expected_head:
                    raise CheckpointConflictError(row.agent_id, plan.expected_head, head)
                self._lineages[row.lineage_id] = _with_head(lineage, row.checkpoint_id)
            for record in plan.records:
                self._records.setdefault((record.lineage_id, record.stream), []).append(record)
            self._rows[row.checkpoint_id] = row

    def _first_seq(self, lineage_id: str, stream: str) -> int:
        base = self._lineages[lineage_id].base_counts
        return base.get(stream, 0)

    def import_rows(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
        with self._lock:
            for lineage in lineages:
                if lineage.lineage_id in self._lineages:
                    raise StorageError(f"lineage {lineage.lineage_id!r} already exists")
            for row in rows:
                if row.checkpoint_id in self._rows:
                    raise StorageError(f"checkpoint {row.checkpoint_id!r} already exists")
            for lineage in lineages:
                self._lineages[lineage.lineage_id] = lineage
            for record in sorted(records, key=lambda r: (r.lineage_id, r.stream, r.seq)):
                self._records.setdefault((record.lineage_id, record.stream), []).append(record)
            for row in rows:
                self._rows[row.checkpoint_id] = row

    def replace_agent(self, agent_id: str, lineages: list[LineageRow], records: list[RecordRow],
                      rows: list[CheckpointRow]) -> None:
        with self._lock:
            saved = (dict(self._rows), dict(self._lineages), dict(self._records))
            self.delete_agent(agent_id)
            try:
                self.import_rows(lineages, records, rows)
            except BaseException:
                self._rows, self._lineages, self._records = saved
                raise

    def delete_checkpoints(self, agent_id: str, checkpoint_ids: list[str]) -> int:
        with self._lock:
            doomed = [c for c in checkpoint_ids if c in self._rows and self._rows[c].agent_id == agent_id]
            for checkpoint_id in doomed:
                del self._rows[checkpoint_id]
            return len(doomed)

    def delete_agent(self, agent_id: str) -> int:
        with self._lock:
            doomed = [c for c, row in self._rows.items() if row.agent_id == agent_id]
            for checkpoint_id in doomed:
                del self._rows[checkpoint_id]
            for lineage_id in [l for l, lin in self._lineages.items() if lin.agent_id == agent_id]:
                del self._lineages[lineage_id]
                for key in [k for k in self._records if k[0] == lineage_id]:
                    del self._records[key]
            return len(doomed)

    def acquire_lease(self, agent_id: str, worker_id: str, ttl: float) -> LeaseRow:
        now = time.time()
        with self._lock:
            held = self._leases.get(agent_id)
            if held is not None and held.worker_id != worker_id and held.expires_at > now:
                raise LeaseHeldError(agent_id, held.worker_id, held.expires_at)
            lease = self._leases[agent_id] = LeaseRow(agent_id, worker_id, now + ttl)
            return lease

    def release_lease(self, agent_id: str, worker_id: str) -> bool:
        with self._lock:
            held = self._leases.get(agent_id)
            if held is None or held.worker_id != worker_id:
                return False
            del self._leases[agent_id]
            return True

    # --- reads ---------------------------------------------------------------------------
    def read_checkpoint(self, checkpoint_id: str) -> CheckpointRow:
        try:
            return self._rows[checkpoint_id]
        except KeyError:
            raise CheckpointNotFoundError(f"checkpoint {checkpoint_id!r} not found in {self.url}") from None

    def read_lineage(self, lineage_id: str) -> LineageRow:
        try:
            return self._lineages[lineage_id]
        except KeyError:
            raise CheckpointNotFoundError(f"lineage {lineage_id!r} not found in {self.url}") from None

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        with self._lock:
            stored = self._records.get((lineage_id, stream), [])
            first = self._first_seq(lineage_id, stream)
            return stored[max(start - first, 0) : max(stop - first, 0)]

    def read_stream(self, lineage_id: str, stream: str, start: int, stop: int) -> tuple[int, bytes]:
        records = self.read_records(lineage_id, stream, start, stop)
        return len(records), b",".join([r.data for r in records])

    def latest_checkpoint(self, agent_id: str) -> CheckpointRow | None:
        with self._lock:
            for row in reversed(self._rows.values()):
                if row.agent_id == agent_id:
                    return row
        return None

    def list_checkpoints(self, agent_id: str, limit: int | None = None, before: str | None = None) -> list[CheckpointRow]:
        with self._lock:
            rows = [r for r in reversed(self._rows.values()) if r.agent_id == agent_id]
        if before is not None:
            rows = [r for r in rows if r.timestamp < before]
        return rows if limit is None else rows[:limit]

    def list_lineages(self, agent_id: str) -> list[LineageRow]:
        with self._lock:
            return [lin for lin in self._lineages.values() if lin.agent_id == agent_id]

    def list_agents(self) -> list[str]:
        with self._lock:
            return sorted({row.agent_id for row in self._rows.values()})


def _with_head(lineage: LineageRow, head: str) -> LineageRow:
    from dataclasses import replace

    return replace(lineage, head_checkpoint_id=head)
