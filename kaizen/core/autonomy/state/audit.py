"""Verifying an agent's history: the approval audit trail, and every checkpoint for damage.

Each stored approval record carries SHA-256(previous hash + record), and every
checkpoint stores the chain's head and how many records it covers (under the
checkpoint's checksum). Recomputing the chain finds the first record that was
changed, removed or reordered, and comparing with the newest checkpoint tells
whether records were cut off the end. ``find_damage`` checks every checkpoint of an
agent the same way for all its streams (checksum, counts, CRC-32 and chain heads),
reading each stored record once, so read commands can say when what they show is
not intact.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import CheckpointCorruptError, StateError
from .storage.base import GENESIS_HASH, STREAMS, CheckpointRow, CheckpointStore, LineageRow
from .storage.rows import chain_step, verify_row

STREAM = "approval_history"


@dataclass
class AuditReport:
    """The outcome of ``verify_audit``: ``ok`` or the first problem found, with where it is."""

    agent_id: str
    ok: bool = True
    records_checked: int = 0
    checkpoints_checked: int = 0
    first_bad_record: int | None = None  # position (seq) in its lineage's history
    lineage_id: str | None = None
    truncated: bool = False
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str, seq: int | None = None, lineage_id: str | None = None) -> None:
        if self.ok:
            self.first_bad_record, self.lineage_id = seq, lineage_id
        self.ok = False
        self.problems.append(problem)


def verify_audit(store: CheckpointStore, agent_id: str) -> AuditReport:
    """Recompute the approval chain of every lineage of ``agent_id`` and check every checkpoint."""
    report = AuditReport(agent_id)
    lineages = {lineage.lineage_id: lineage for lineage in store.list_lineages(agent_id)}
    chains: dict[str, list[str]] = {}

    def chain(lineage: LineageRow) -> list[str]:
        """Hashes after each record: chain[n] covers the first n records."""
        if lineage.lineage_id in chains:
            return chains[lineage.lineage_id]
        base_count = lineage.base_counts.get(STREAM, 0)
        if lineage.base_lineage_id is None:
            hashes = [GENESIS_HASH]
        else:
            base = lineages.get(lineage.base_lineage_id) or store.read_lineage(lineage.base_lineage_id)
            hashes = chain(base)[: base_count + 1]
        records = store.read_records(lineage.lineage_id, STREAM, base_count, 2**62)
        for record in records:
            expected_seq = len(hashes) - 1
            if record.seq != expected_seq:
                report.fail(f"record {expected_seq} of lineage {lineage.lineage_id} is missing "
                            f"(next stored is {record.seq})", expected_seq, lineage.lineage_id)
                break
            digest = chain_step(hashes[-1], record.data)
            if digest != record.hash:
                report.fail(f"record {record.seq} of lineage {lineage.lineage_id} was changed, removed or "
                            "reordered (its hash does not follow from the records before it)",
                            record.seq, lineage.lineage_id)
                digest = record.hash  # go on from the stored chain, so only the damaged record is named
            hashes.append(digest)
            report.records_checked += 1
        chains[lineage.lineage_id] = hashes
        return hashes

    rows = store.list_rows(agent_id)
    for lineage in lineages.values():
        chain(lineage)
    for row in rows:
        report.checkpoints_checked += 1
        try:
            verify_row(row)
        except CheckpointCorruptError as exc:
            report.fail(str(exc))
            continue
        own = lineages.get(row.lineage_id)
        if own is None:
            report.fail(f"checkpoint {row.checkpoint_id} belongs to missing lineage {row.lineage_id}")
            continue
        hashes, head = chain(own), row.heads[STREAM]
        if head.count >= len(hashes):
            report.fail(f"checkpoint {row.checkpoint_id} covers {head.count} approval records but only "
                        f"{len(hashes) - 1} verify: the history was truncated", len(hashes) - 1, row.lineage_id)
            report.truncated = True
        elif hashes[head.count] != head.head_hash:
            report.fail(f"checkpoint {row.checkpoint_id}: the first {head.count} approval records do not match "
                        "its chain head (records before it were rewritten)", None, row.lineage_id)
    return report


class _StreamPositions:
    """(chain hash, CRC-32) after each entry of each (lineage, stream), recomputed from the stored
    records along the lineage's forks; a gap ends the list, so what follows counts as missing."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self._lineages: dict[str, LineageRow] = {}
        self._positions: dict[tuple[str, str], list[tuple[bytes, int]]] = {}

    def lineage(self, lineage_id: str) -> LineageRow:
        if lineage_id not in self._lineages:
            self._lineages[lineage_id] = self.store.read_lineage(lineage_id)
        return self._lineages[lineage_id]

    def positions(self, lineage_id: str, stream: str) -> list[tuple[bytes, int]]:
        key = (lineage_id, stream)
        if key in self._positions:
            return self._positions[key]
        lineage = self.lineage(lineage_id)
        start = lineage.base_counts.get(stream, 0)
        if lineage.base_lineage_id is None:
            positions = [(bytes.fromhex(GENESIS_HASH), 0)]
        else:
            positions = self.positions(lineage.base_lineage_id, stream)[: start + 1]
        if len(positions) == start + 1:
            digest, crc = positions[-1]
            for record in self.store.read_records(lineage_id, stream, start, 2**62):
                if record.seq != len(positions) - 1:
                    break
                digest = hashlib.sha256(digest + record.data).digest()
                crc = zlib.crc32(record.data, zlib.crc32(b",", crc) if record.seq else crc)
                positions.append((digest, crc))
        self._positions[key] = positions
        return positions

    def check(self, row: CheckpointRow) -> None:
        """Raise ``CheckpointCorruptError`` unless ``row`` and the entries it covers are intact."""
        verify_row(row)
        for stream in STREAMS:
            head = row.heads[stream]
            try:
                positions = self.positions(row.lineage_id, stream)
            except StateError as exc:
                raise CheckpointCorruptError(row.checkpoint_id, f"its lineage cannot be read ({exc})") from None
            if head.count >= len(positions):
                raise CheckpointCorruptError(row.checkpoint_id, f"it covers {head.count} {stream} entries but "
                                             f"only {len(positions) - 1} are stored in order")
            digest, crc = positions[head.count]
            if digest.hex() != head.head_hash or crc != head.crc:
                raise CheckpointCorruptError(row.checkpoint_id, f"{stream} entries do not match the checkpoint's "
                                             "hash chain (stored entries were changed or removed)")


def find_damage(
    store: CheckpointStore, agent_id: str, require_readable: Callable[[CheckpointRow], None] | None = None,
) -> list[CheckpointCorruptError]:
    """Every damaged checkpoint of ``agent_id`` (empty: all intact): lineage heads that cannot be
    read at all (a listing skips them) first, then the listed ones newest first.

    ``require_readable`` may raise for rows this reader cannot check (sealed, no key).
    """
    rows = store.list_rows(agent_id)
    listed = {row.checkpoint_id for row in rows}
    damage: list[CheckpointCorruptError] = []
    for lineage in store.list_lineages(agent_id):
        head_id = lineage.head_checkpoint_id
        if head_id is None or head_id in listed:
            continue
        try:
            rows.append(store.read_checkpoint(head_id))
        except (StateError, ValueError) as exc:
            damage.append(CheckpointCorruptError(head_id, f"the head of lineage {lineage.lineage_id} cannot be "
                                                 f"read ({exc})"))
    positions = _StreamPositions(store)
    for row in rows:
        if require_readable is not None:
            require_readable(row)
        try:
            positions.check(row)
        except CheckpointCorruptError as exc:
            damage.append(exc)
    return damage
