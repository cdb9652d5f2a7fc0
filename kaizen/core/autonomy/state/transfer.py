"""Export one agent's whole history as JSON, import it into any store, migrate stores.

The export holds rows, not states: every record once, every checkpoint's small
row, and the lineages (including the lineages a fork shares records with), so
it is as compact as the store itself. Import re-verifies every checksum and
hash chain before writing anything, and writes all rows in one transaction.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson

from .errors import StateFormatError, StorageError
from .ids import check_id, utc_now
from .storage.base import (
    GENESIS_HASH, STREAMS, CheckpointRow, CheckpointStore, LineageRow, RecordRow, heads_from_json, heads_to_json,
)
from .storage.rows import canonical, chain_step, verify_row

EXPORT_FORMAT = "kaizen-state/agent-export"
EXPORT_VERSION = 1


def _lineage_closure(store: CheckpointStore, agent_id: str) -> list[LineageRow]:
    """The agent's lineages plus the ones they were forked from, bases first."""
    ordered: list[LineageRow] = []
    seen: set[str] = set()

    def visit(lineage: LineageRow) -> None:
        if lineage.lineage_id in seen:
            return
        if lineage.base_lineage_id is not None:
            visit(store.read_lineage(lineage.base_lineage_id))
        seen.add(lineage.lineage_id)
        ordered.append(lineage)

    for lineage in store.list_lineages(agent_id):
        visit(lineage)
    return ordered


def export_agent(store: CheckpointStore, agent_id: str) -> dict[str, Any]:
    check_id(agent_id, "agent_id")
    rows = list(reversed(store.list_rows(agent_id)))
    if not rows:
        from .errors import CheckpointNotFoundError

        raise CheckpointNotFoundError(f"agent {agent_id!r} has no checkpoints in {store.url}")
    lineages = _lineage_closure(store, agent_id)
    records = []
    for lineage in lineages:
        for stream in STREAMS:
            start = lineage.base_counts.get(stream, 0)
            for record in store.read_records(lineage.lineage_id, stream, start, 2**62):
                records.append([lineage.lineage_id, stream, record.seq, orjson.loads(record.data), record.hash])
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "agent_id": agent_id,
        "exported_at": utc_now(),
        "lineages": [_lineage_doc(lineage) for lineage in lineages],
        "records": records,
        "checkpoints": [_row_doc(row) for row in rows],
    }


def _lineage_doc(lineage: LineageRow) -> dict[str, Any]:
    return {
        "lineage_id": lineage.lineage_id, "agent_id": lineage.agent_id,
        "base_lineage_id": lineage.base_lineage_id, "base_checkpoint_id": lineage.base_checkpoint_id,
        "base_counts": lineage.base_counts, "head_checkpoint_id": lineage.head_checkpoint_id,
        "created_at": lineage.created_at,
    }


def _row_doc(row: CheckpointRow) -> dict[str, Any]:
    return {
        "checkpoint_id": row.checkpoint_id, "agent_id": row.agent_id, "lineage_id": row.lineage_id,
        "parent_checkpoint_id": row.parent_checkpoint_id, "step_number": row.step_number,
        "timestamp": row.timestamp, "status": row.status,
        "heads": heads_to_json(row.heads),
        "body": base64.b64encode(row.body).decode(), "checksum": row.checksum, "size_bytes": row.size_bytes,
    }


def _parse(document: Any) -> tuple[str, list[LineageRow], list[RecordRow], list[CheckpointRow]]:
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise StateFormatError(f"not a kaizen-state export (expected format {EXPORT_FORMAT!r})")
    if document.get("version") != EXPORT_VERSION:
        raise StateFormatError(f"export version {document.get('version')!r} is not supported (expected 1)")
    try:
        agent_id = check_id(document["agent_id"], "agent_id")
        lineages = [
            LineageRow(
                check_id(d["lineage_id"], "lineage_id"), check_id(d["agent_id"], "agent_id"),
                d["base_lineage_id"], d["base_checkpoint_id"], {str(k): int(v) for k, v in d["base_counts"].items()},
                d["head_checkpoint_id"], str(d["created_at"]),
            )
            for d in document["lineages"]
        ]
        records = [
            RecordRow(check_id(lineage_id, "lineage_id"), _stream(stream), _seq(seq), canonical(data), str(digest))
            for lineage_id, stream, seq, data, digest in document["records"]
        ]
        rows = [
            CheckpointRow(
                check_id(d["checkpoint_id"], "checkpoint_id"), check_id(d["agent_id"], "agent_id"),
                check_id(d["lineage_id"], "lineage_id"), d["parent_checkpoint_id"], _seq(d["step_number"]),
                str(d["timestamp"]), str(d["status"]),
                {_stream(s): head for s, head in heads_from_json(d["heads"]).items()},
                base64.b64decode(d["body"], validate=True), str(d["checksum"]), _seq(d["size_bytes"]),
            )
            for d in document["checkpoints"]
        ]
    except StateFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFormatError(f"damaged kaizen-state export: {type(exc).__name__}: {exc}") from None
    strangers = sorted({row.agent_id for row in rows if row.agent_id != agent_id})
    if strangers or not any(lineage.agent_id == agent_id for lineage in lineages):
        raise StateFormatError(f"export says it holds agent {agent_id!r} but its checkpoints belong to "
                               f"{', '.join(strangers) or 'no lineage of it'}; it was edited or damaged")
    return agent_id, lineages, records, rows


def _stream(value: Any) -> str:
    if value not in STREAMS:
        raise ValueError(f"unknown stream {value!r}")
    return str(value)


def _seq(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected an int >= 0, got {value!r}")
    return value


def _verify(lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
    """Recompute every chain once per lineage and check each checkpoint's heads against it."""
    by_id = {lineage.lineage_id: lineage for lineage in lineages}
    chains: dict[tuple[str, str], list[str]] = {}  # (lineage, stream) -> hash after entry i (index = seq + 1)

    def chain(lineage_id: str, stream: str) -> list[str]:
        key = (lineage_id, stream)
        if key in chains:
            return chains[key]
        lineage = by_id.get(lineage_id)
        if lineage is None:
            raise StateFormatError(f"export refers to lineage {lineage_id!r} that it does not contain")
        base_count = lineage.base_counts.get(stream, 0)
        hashes = [GENESIS_HASH] if lineage.base_lineage_id is None else chain(lineage.base_lineage_id, stream)[: base_count + 1]
        if len(hashes) != base_count + 1:
            raise StateFormatError(f"lineage {lineage_id!r}: its base lacks {stream} entries")
        own = sorted((r for r in records if r.lineage_id == lineage_id and r.stream == stream), key=lambda r: r.seq)
        for record in own:
            if record.seq != len(hashes) - 1:
                raise StateFormatError(f"lineage {lineage_id!r}: {stream} entry {len(hashes) - 1} is missing")
            digest = chain_step(hashes[-1], record.data)
            if digest != record.hash:
                raise StateFormatError(f"lineage {lineage_id!r}: {stream} entry {record.seq} fails its hash")
            hashes.append(digest)
        chains[key] = hashes
        return hashes

    for row in rows:
        try:
            verify_row(row)
        except Exception as exc:
            raise StateFormatError(f"export: {exc}") from None
        for stream, head in row.heads.items():
            hashes = chain(row.lineage_id, stream)
            if head.count >= len(hashes) or hashes[head.count] != head.head_hash:
                raise StateFormatError(f"export: checkpoint {row.checkpoint_id!r} does not match its {stream}")


def import_agent(store: CheckpointStore, document: Any) -> str:
    """Verify and write an export; returns the agent id. Lineages the store already has are reused."""
    agent_id, lineages, records, rows = _parse(document)
    _verify(lineages, records, rows)
    if store.latest_checkpoint(agent_id) is not None:
        raise StorageError(f"agent {agent_id!r} already exists in {store.url}; delete it first or import elsewhere")
    new_lineages = []
    for lineage in lineages:
        try:
            store.read_lineage(lineage.lineage_id)
        except StorageError:
            new_lineages.append(lineage)
            continue
        _check_reused(store, lineage, records)
    new_ids = {lineage.lineage_id for lineage in new_lineages}
    store.import_rows(new_lineages, [r for r in records if r.lineage_id in new_ids], rows)
    return agent_id


def _check_reused(store: CheckpointStore, lineage: LineageRow, records: list[RecordRow]) -> None:
    """A lineage the target already has (shared with a fork imported earlier) is reused only if
    the target holds at least the export's records of it, the same ones: else refuse, nothing written."""
    for stream in STREAMS:
        mine = [r for r in records if r.lineage_id == lineage.lineage_id and r.stream == stream]
        if not mine:
            continue
        last = max(mine, key=lambda r: r.seq)
        stored = store.read_records(lineage.lineage_id, stream, last.seq, last.seq + 1)
        if not stored or stored[0].hash != last.hash:
            raise StorageError(
                f"lineage {lineage.lineage_id} already exists in {store.url} with a different or shorter "
                f"{stream}; import the agent it was forked from first, or import into an empty store"
            )


def migrate(
    source: CheckpointStore, target: CheckpointStore, agent_ids: list[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[str]:
    """Copy agents (all by default) from one store to another, verified; returns the ids copied."""
    agents = agent_ids if agent_ids is not None else source.list_agents()
    for index, agent_id in enumerate(agents, 1):
        import_agent(target, export_agent(source, agent_id))
        if progress is not None:
            progress(agent_id, index, len(agents))
    return list(agents)
