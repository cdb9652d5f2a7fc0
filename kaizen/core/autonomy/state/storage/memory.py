"""In-memory store: for tests and quick scripts. Same guarantees as the durable ones,
except that everything is gone when the process ends."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from ..errors import CheckpointConflictError, StorageError
from .base import (
    checkpoint_not_found,
    lineage_not_found,
    CheckpointRow, LeaseRow, LineageRow, RecordRow, SavePlan, StreamFromRecords, check_lease_free, refuse_write,
)
from .state_backend import StateBackendMixin


class MemoryStorage(StreamFromRecords, StateBackendMixin):
    """Rows in dicts, guarded by one lock. ``read_only=True`` gives an empty store that refuses writes."""

    def __init__(self, *, read_only: bool = False) -> None:
        self.url = "memory://"
        self.read_only = read_only
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
    def _writable(self, what: str) -> None:
        if self.read_only:
            raise refuse_write(self.url, what)

    def write(self, plan: SavePlan) -> None:
        row = plan.row
        self._writable(f"save checkpoint {row.checkpoint_id!r}")
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
                self._lineages[row.lineage_id] = replace(lineage, head_checkpoint_id=row.checkpoint_id)
            for record in plan.records:
                self._records.setdefault((record.lineage_id, record.stream), []).append(record)
            self._rows[row.checkpoint_id] = row

    def _first_seq(self, lineage_id: str, stream: str) -> int:
        base = self._lineages[lineage_id].base_counts
        return base.get(stream, 0)

    def import_rows(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
        self._writable(f"import {len(rows)} checkpoints")
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
        self._writable(f"rewrite agent {agent_id!r}")
        with self._lock:
            saved = (dict(self._rows), dict(self._lineages), dict(self._records))
            self.delete_agent(agent_id)
            try:
                self.import_rows(lineages, records, rows)
            except BaseException:
                self._rows, self._lineages, self._records = saved
                raise

    def delete_checkpoints(self, agent_id: str, checkpoint_ids: list[str]) -> int:
        self._writable(f"delete checkpoints of agent {agent_id!r}")
        with self._lock:
            doomed = [c for c in checkpoint_ids if c in self._rows and self._rows[c].agent_id == agent_id]
            for checkpoint_id in doomed:
                del self._rows[checkpoint_id]
            return len(doomed)

    def delete_agent(self, agent_id: str) -> int:
        self._writable(f"delete agent {agent_id!r}")
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
        self._writable(f"take the lease on agent {agent_id!r}")
        now = time.time()
        with self._lock:
            check_lease_free(agent_id, self._leases.get(agent_id), worker_id, now)
            lease = self._leases[agent_id] = LeaseRow(agent_id, worker_id, now + ttl)
            return lease

    def release_lease(self, agent_id: str, worker_id: str) -> bool:
        self._writable(f"release the lease on agent {agent_id!r}")
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
            raise checkpoint_not_found(checkpoint_id, self.url) from None

    def read_lineage(self, lineage_id: str) -> LineageRow:
        try:
            return self._lineages[lineage_id]
        except KeyError:
            raise lineage_not_found(lineage_id, self.url) from None

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        with self._lock:
            stored = self._records.get((lineage_id, stream), [])
            first = self._first_seq(lineage_id, stream)
            return stored[max(start - first, 0) : max(stop - first, 0)]

    def latest_checkpoint(self, agent_id: str) -> CheckpointRow | None:
        with self._lock:
            for row in reversed(self._rows.values()):
                if row.agent_id == agent_id:
                    return row
        return None

    def list_rows(self, agent_id: str, limit: int | None = None, before: str | None = None) -> list[CheckpointRow]:
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

