"""Export one agent's whole history as JSON, import it into any store, migrate stores.

The export holds rows, not states: every record once, every checkpoint's small
row, and the lineages (including the lineages a fork shares records with), so
it is as compact as the store itself. Version 2 adds what lets an import notice a
document that lost data: each lineage's head checkpoint and its counts, the ids of
checkpoints that were already damaged when exported (only with ``allow_damaged``),
and a SHA-256 digest of the canonical JSON of everything else. The digest detects
edits and truncation; it is not a signature (whoever edits can recompute it), which
is why the heads, counts, checksums and hash chains are checked as well. Import
checks everything before writing anything, and writes all rows in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import CheckpointCorruptError, CheckpointNotFoundError, StateFormatError, StorageError
from .ids import check_id, utc_now
from .storage.base import (
    GENESIS_HASH, STREAMS, CheckpointRow, CheckpointStore, LineageRow, RecordRow, heads_from_json, heads_to_json,
)
from .storage.rows import canonical, chain_step, verify_row

EXPORT_FORMAT = "kaizen-state/agent-export"
EXPORT_VERSION = 2
READABLE_VERSIONS = (1, 2)


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


def export_agent(
    store: CheckpointStore, agent_id: str, allow_damaged: bool = False,
    require_readable: Callable[[CheckpointRow], None] | None = None,
) -> dict[str, Any]:
    """The agent's whole history as a JSON-ready document.

    A damaged agent raises ``CheckpointCorruptError`` unless ``allow_damaged`` (then the
    document lists the damaged checkpoints under ``"damaged"``, and importing it needs
    ``allow_damaged`` too).
    """
    from .audit import find_damage

    check_id(agent_id, "agent_id")
    damage = find_damage(store, agent_id, require_readable)
    if damage and not allow_damaged:
        named = "; ".join(str(exc) for exc in damage[:5])
        raise CheckpointCorruptError(
            damage[0].checkpoint_id,
            f"agent {agent_id!r} has {len(damage)} damaged checkpoint(s) ({named}); the export was refused. "
            "Export anyway with allow_damaged=True (`kaizen export --allow-damaged`): the document then names "
            "them and importing it needs allow_damaged too",
        )
    rows = list(reversed(store.list_rows(agent_id)))
    if not rows:
        raise CheckpointNotFoundError(f"agent {agent_id!r} has no checkpoints in {store.url}")
    lineages = _lineage_closure(store, agent_id)
    records = []
    for lineage in lineages:
        for stream in STREAMS:
            start = lineage.base_counts.get(stream, 0)
            for record in store.read_records(lineage.lineage_id, stream, start, 2**62):
                records.append([lineage.lineage_id, stream, record.seq, orjson.loads(record.data), record.hash])
    document = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "agent_id": agent_id,
        "exported_at": utc_now(),
        "lineages": [_lineage_doc(lineage) for lineage in lineages],
        "records": records,
        "checkpoints": [_row_doc(row) for row in rows],
        "heads": _heads_doc(agent_id, lineages, rows),
        "damaged": [exc.checkpoint_id for exc in damage],
    }
    document["digest"] = document_digest(document)
    return document


def document_digest(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of every field of an export but ``digest`` itself."""
    return hashlib.sha256(canonical({k: v for k, v in document.items() if k != "digest"})).hexdigest()


def _heads_doc(agent_id: str, lineages: list[LineageRow], rows: list[CheckpointRow]) -> dict[str, Any]:
    """Per lineage of the agent: its head checkpoint, that head's stream counts, how many checkpoints."""
    by_id = {row.checkpoint_id: row for row in rows}
    heads: dict[str, Any] = {}
    for lineage in lineages:
        if lineage.agent_id != agent_id or lineage.head_checkpoint_id is None:
            continue
        head = by_id.get(lineage.head_checkpoint_id)
        heads[lineage.lineage_id] = {
            "checkpoint_id": lineage.head_checkpoint_id,
            "counts": {stream: h.count for stream, h in head.heads.items()} if head is not None else None,
            "checkpoints": sum(1 for row in rows if row.lineage_id == lineage.lineage_id),
        }
    return heads


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


@dataclass(frozen=True)
class _Export:
    agent_id: str
    lineages: list[LineageRow]
    records: list[RecordRow]
    rows: list[CheckpointRow]
    heads: dict[str, dict[str, Any]]
    damaged: set[str]


def _upgrade(document: Any) -> dict[str, Any]:
    """Any readable export version as a version-2 document (its digest checked where it has one)."""
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise StateFormatError(f"not a kaizen-state export (expected format {EXPORT_FORMAT!r})")
    version = document.get("version")
    if version not in READABLE_VERSIONS:
        raise StateFormatError(f"export version {version!r} is not supported (this kaizen-state reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))}); upgrade kaizen-state to import it")
    if version == 1:  # no digest, no heads section: the lineage rows name their heads
        lineages = document.get("lineages")
        heads = {
            d["lineage_id"]: {"checkpoint_id": d["head_checkpoint_id"], "counts": None, "checkpoints": None}
            for d in lineages if isinstance(d, dict) and d.get("agent_id") == document.get("agent_id")
            and d.get("head_checkpoint_id") is not None and isinstance(d.get("lineage_id"), str)
        } if isinstance(lineages, list) else {}
        return {**document, "version": EXPORT_VERSION, "heads": heads, "damaged": []}
    return document


def _check_digest(document: dict[str, Any]) -> None:
    """Checked after the detailed checks, so a document they refuse gets their more precise message."""
    if document.get("version") == 1:
        return
    digest = document.get("digest")
    try:
        matches = isinstance(digest, str) and digest == document_digest(document)
    except (TypeError, ValueError):  # values JSON cannot hold
        matches = False
    if not matches:
        raise StateFormatError("the export's digest does not match its contents: it was edited, truncated or "
                               "damaged after it was exported; export the agent again from its store")


def _parse(document: Any) -> _Export:
    document = _upgrade(document)
    try:
        agent_id = check_id(document["agent_id"], "agent_id")
        lineages = [
            LineageRow(
                check_id(d["lineage_id"], "lineage_id"), check_id(d["agent_id"], "agent_id"),
                _optional_id(d["base_lineage_id"], "base_lineage_id"),
                _optional_id(d["base_checkpoint_id"], "base_checkpoint_id"),
                {_stream(k): _seq(v) for k, v in d["base_counts"].items()},
                _optional_id(d["head_checkpoint_id"], "head_checkpoint_id"), str(d["created_at"]),
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
                check_id(d["lineage_id"], "lineage_id"), _optional_id(d["parent_checkpoint_id"], "parent_checkpoint_id"),
                _seq(d["step_number"]),
                str(d["timestamp"]), str(d["status"]),
                {_stream(s): head for s, head in heads_from_json(d["heads"]).items()},
                base64.b64decode(d["body"], validate=True), str(d["checksum"]), _seq(d["size_bytes"]),
            )
            for d in document["checkpoints"]
        ]
        heads = {check_id(lineage_id, "lineage_id"): _head_doc(head) for lineage_id, head in document["heads"].items()}
        damaged = {check_id(checkpoint_id, "checkpoint_id") for checkpoint_id in document["damaged"]}
    except StateFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFormatError(f"damaged kaizen-state export: {type(exc).__name__}: {exc}") from None
    strangers = sorted({row.agent_id for row in rows if row.agent_id != agent_id})
    if strangers or not any(lineage.agent_id == agent_id for lineage in lineages):
        raise StateFormatError(f"export says it holds agent {agent_id!r} but its checkpoints belong to "
                               f"{', '.join(strangers) or 'no lineage of it'}; it was edited or damaged")
    return _Export(agent_id, lineages, records, rows, heads, damaged)


def _head_doc(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"a lineage head must be an object, got {type(value).__name__}")
    counts = value["counts"]
    return {
        "checkpoint_id": check_id(value["checkpoint_id"], "checkpoint_id"),
        "counts": None if counts is None else {_stream(s): _seq(n) for s, n in counts.items()},
        "checkpoints": None if value["checkpoints"] is None else _seq(value["checkpoints"]),
    }


def _check_heads(export: _Export, allow_damaged: bool) -> None:
    """Refuse a document that lost checkpoints: every lineage of the agent has its head, with the
    counts and number of checkpoints the heads section gives."""
    agent_id, rows = export.agent_id, export.rows
    if not rows:
        raise StateFormatError(f"the export of agent {agent_id!r} holds no checkpoints; nothing to import")
    if export.damaged and not allow_damaged:
        raise StateFormatError(
            f"the export of agent {agent_id!r} holds checkpoints that were damaged when it was exported "
            f"({', '.join(sorted(export.damaged)[:5])}); import it with allow_damaged=True "
            "(`kaizen import --allow-damaged`) to keep them as they are"
        )
    by_id = {row.checkpoint_id: row for row in rows}
    own = {lineage.lineage_id: lineage for lineage in export.lineages if lineage.agent_id == agent_id}
    for lineage_id in sorted(set(own) ^ set(export.heads)):
        where = "has no entry in the export's heads" if lineage_id in own else "is not among its lineages"
        raise StateFormatError(f"export of agent {agent_id!r}: lineage {lineage_id} {where}; it was edited or "
                               "damaged")
    for lineage_id, head in export.heads.items():
        head_id = head["checkpoint_id"]
        if own[lineage_id].head_checkpoint_id != head_id:
            raise StateFormatError(f"export: lineage {lineage_id} says its head is "
                                   f"{own[lineage_id].head_checkpoint_id}, the heads section says {head_id}")
        row = by_id.get(head_id)
        if row is None:
            if head_id in export.damaged:
                continue
            raise StateFormatError(f"export of agent {agent_id!r} lacks checkpoint {head_id}, the newest of lineage "
                                   f"{lineage_id}: checkpoints were removed from it")
        if row.lineage_id != lineage_id:
            raise StateFormatError(f"export: checkpoint {head_id} is named head of lineage {lineage_id} "
                                   f"but belongs to lineage {row.lineage_id}")
        counts = {stream: h.count for stream, h in row.heads.items()}
        if head["counts"] is not None and head["counts"] != counts:
            raise StateFormatError(f"export: checkpoint {head_id} covers {counts}, the heads section says "
                                   f"{head['counts']}")
        held = sum(1 for r in rows if r.lineage_id == lineage_id)
        if head["checkpoints"] is not None and head["checkpoints"] != held:
            raise StateFormatError(f"export: lineage {lineage_id} should hold {head['checkpoints']} checkpoints, "
                                   f"the document holds {held}: checkpoints were removed or added")


def _optional_id(value: Any, name: str) -> str | None:
    return None if value is None else check_id(value, name)


def _stream(value: Any) -> str:
    if value not in STREAMS:
        raise ValueError(f"unknown stream {value!r}")
    return str(value)


def _seq(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected an int >= 0, got {value!r}")
    return value


def _verify(export: _Export, tolerate: set[str] | None = None) -> None:
    """Recompute every chain once per lineage and check each checkpoint's row and heads against it.

    ``tolerate``: checkpoints declared damaged by the exporter (import with ``allow_damaged``):
    they may fail, and the records they cover may break their chain; every other one must verify.
    """
    by_id = {lineage.lineage_id: lineage for lineage in export.lineages}
    chains: dict[tuple[str, str], list[str]] = {}  # (lineage, stream) -> hash after entry i (index = seq + 1)
    lenient = bool(tolerate)

    def chain(lineage_id: str, stream: str) -> list[str]:
        key = (lineage_id, stream)
        if key in chains:
            return chains[key]
        lineage = by_id.get(lineage_id)
        if lineage is None:
            raise StateFormatError(f"export refers to lineage {lineage_id!r} that it does not contain")
        base_count = lineage.base_counts.get(stream, 0)
        hashes = [GENESIS_HASH] if lineage.base_lineage_id is None else chain(lineage.base_lineage_id, stream)[: base_count + 1]
        if len(hashes) != base_count + 1 and not lenient:
            raise StateFormatError(f"lineage {lineage_id!r}: its base lacks {stream} entries")
        own = sorted((r for r in export.records if r.lineage_id == lineage_id and r.stream == stream),
                     key=lambda r: r.seq)
        for record in own if len(hashes) == base_count + 1 else ():
            if record.seq != len(hashes) - 1:
                if lenient:
                    break
                raise StateFormatError(f"lineage {lineage_id!r}: {stream} entry {len(hashes) - 1} is missing")
            digest = chain_step(hashes[-1], record.data)
            if digest != record.hash and not lenient:
                raise StateFormatError(f"lineage {lineage_id!r}: {stream} entry {record.seq} fails its hash")
            hashes.append(digest)
        chains[key] = hashes
        return hashes

    for row in export.rows:
        try:
            verify_row(row)
            for stream, head in row.heads.items():
                hashes = chain(row.lineage_id, stream)
                if head.count >= len(hashes) or hashes[head.count] != head.head_hash:
                    raise StateFormatError(f"export: checkpoint {row.checkpoint_id!r} does not match its {stream} "
                                           "(its records are missing or changed)")
        except (CheckpointCorruptError, StateFormatError) as exc:
            if tolerate and row.checkpoint_id in tolerate:
                continue
            raise StateFormatError(f"export: {exc}" if isinstance(exc, CheckpointCorruptError) else str(exc)) from None


def import_agent(store: CheckpointStore, document: Any, allow_damaged: bool = False) -> str:
    """Verify and write an export; returns the agent id. Lineages the store already has are reused.

    Everything is checked before anything is written (digest, lineage heads and counts,
    checksums, hash chains), and the rows are written in one transaction. A document that
    lists damaged checkpoints is refused unless ``allow_damaged``.
    """
    export = _parse(document)
    _check_heads(export, allow_damaged)
    _verify(export, export.damaged if allow_damaged else None)
    _check_digest(document)
    agent_id, lineages, records, rows = export.agent_id, export.lineages, export.records, export.rows
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
