"""Verifying an agent's approval history against its hash chain.

Each stored approval record carries SHA-256(previous hash + record), and every
checkpoint stores the chain's head and how many records it covers (under the
checkpoint's checksum). Recomputing the chain finds the first record that was
changed, removed or reordered, and comparing with the newest checkpoint tells
whether records were cut off the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CheckpointCorruptError
from .storage.base import GENESIS_HASH, CheckpointStore, LineageRow
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
        lineage = lineages.get(row.lineage_id)
        if lineage is None:
            report.fail(f"checkpoint {row.checkpoint_id} belongs to missing lineage {row.lineage_id}")
            continue
        hashes, head = chain(lineage), row.heads[STREAM]
        if head.count >= len(hashes):
            report.fail(f"checkpoint {row.checkpoint_id} covers {head.count} approval records but only "
                        f"{len(hashes) - 1} verify: the history was truncated", len(hashes) - 1, row.lineage_id)
            report.truncated = True
        elif hashes[head.count] != head.head_hash:
            report.fail(f"checkpoint {row.checkpoint_id}: the first {head.count} approval records do not match "
                        "its chain head (records before it were rewritten)", None, row.lineage_id)
    return report
